"""Checks shared by the study description's sections: value types against type hints, a
component's options against its factory's signature, and ``module:function`` references.

Every failure is a ``SpecError`` whose message names the place (file, section, key) and what
is allowed.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Union

from nas_hpo._options import Allowed, allowed_in, type_ok, type_text


class SpecError(ValueError):
    """A study description that cannot run, with the place of the mistake in its message."""


def where(source: str, section: str, key: str | None = None) -> str:
    """``file: [section] key``, the prefix of every message about a study description."""
    return f"{source}: [{section}]" + (f" {key}" if key else "")


def check_options(fn: Callable[..., Any], options: Mapping[str, Any], place: str,
                  skip: int = 0) -> None:
    """Check ``options`` against ``fn``'s keyword parameters: unknown keys and wrong types are
    ``SpecError``s naming the key and what is allowed. ``skip`` leading positional parameters
    are the ones the framework passes."""
    target = fn.__init__ if inspect.isclass(fn) else fn  # type: ignore[misc]
    sig = inspect.signature(target)
    params = list(sig.parameters.values())
    if inspect.isclass(fn):
        params = params[1:]  # self
    params = params[skip:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    allowed = {p.name: p for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable annotations: check names only
        hints = {}
    for key, value in options.items():
        if key not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise SpecError(f"{place} {key}: unknown key; allowed: {names}")
        hint = hints.get(key, allowed[key].annotation)
        if isinstance(hint, str):
            continue
        if not type_ok(value, hint):
            raise SpecError(f"{place} {key}: expected {type_text(hint)}, got {value!r}")
        for rule in _matching_allowed(hint, value):
            problem = rule.issue(value)
            if problem:
                raise SpecError(f"{place} {key}: {problem}")


def _matching_allowed(hint: Any, value: Any) -> list[Allowed]:
    """The ``Allowed`` of the member of ``hint`` that ``value`` is (``int | "auto"``: the
    range applies to numbers only)."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        for member in typing.get_args(hint):
            if type_ok(value, member):
                return _matching_allowed(member, value)
        return []
    return allowed_in(hint)


def import_callable(ref: str, place: str) -> Callable[..., Any]:
    """``"package.module:function"`` → the function. As with ``uvicorn main:app``, modules in
    the current directory are importable (a console script's ``sys.path`` lacks it)."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise SpecError(f"{place}: {ref!r} is not a 'package.module:function' reference "
                        "(module and function names are both needed)")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise SpecError(f"{place}: cannot import {module_name!r} ({e})") from None
    except Exception as e:  # the module itself raised while it was imported
        raise SpecError(f"{place}: importing {module_name!r} failed: "
                        f"{type(e).__name__}: {e}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SpecError(f"{place}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SpecError(f"{place}: {ref!r} is not callable")
    return obj
