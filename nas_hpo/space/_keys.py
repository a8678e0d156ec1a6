"""Architecture keys: one canonical text per configuration, whatever the dict's order and
however its values were read back (a choice object, its JSON value, 2 for 2.0).

The key is ``json.dumps(canonical config, sort_keys=True, separators=(",", ":"))``, written
a parameter at a time so that choice objects reuse their text: the engine computes it on every
trial, and the dict's dump cost more than a cheap sampler's draw.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from nas_hpo.space._params import Categorical, Float, Hyperparameter, Integer, _plain

_TEXT_CACHE = 4_096  # cached texts per Integer parameter, cached name orders


def _text(name: str, value: Any) -> str:
    """``"name":value``, as json.dumps writes it in a dict."""
    return f"{json.dumps(name)}:{json.dumps(value, separators=(',', ':'))}"


class ArchKeys:
    """The key writer of a space's parameters, with its caches.

    A value that *is* one of its parameter's choice objects (what Optuna and ``sample()``
    hand back) is already canonical: its text is found by object id. Object ids mean nothing
    in another process, so a pickled space builds a new writer. A plain str or int (a choice
    read back from a database's JSON, an Integer's value) is found by value: equal values
    share the canonical text (``canonical`` maps an equal value to the choice itself), and a
    bool never takes this path."""

    def __init__(self, params: Mapping[str, Hyperparameter]) -> None:
        self.params = params
        self._fragments: dict[str, dict[int, str]] = {
            n: {id(c): _text(n, c) for c in p.choices}
            for n, p in params.items() if isinstance(p, Categorical)
        }
        # Integer texts are filled as values come, up to _TEXT_CACHE each.
        self._value_text: dict[str, dict[Any, str]] = {
            n: ({c: _text(n, c) for c in p.choices if type(c) in (str, int, float)}
                if isinstance(p, Categorical) else {})
            for n, p in params.items() if isinstance(p, (Categorical, Integer))
        }
        self._fill_value_text = {n for n, p in params.items() if isinstance(p, Integer)}
        # Each set of active names, in sorted order.
        self._sorted_names: dict[tuple[str, ...], list[str]] = {}

    def __call__(self, config: Mapping[str, Any]) -> str:
        fragments, by_value, parts = self._fragments, self._value_text, []
        names = tuple(config)
        order = self._sorted_names.get(names)
        if order is None:
            order = sorted(names)
            if len(self._sorted_names) < _TEXT_CACHE:
                self._sorted_names[names] = order
        for k in order:
            v = config[k]
            kind = type(v)
            if kind is str or kind is int:
                known = by_value.get(k)
                text = None if known is None else known.get(v)
                if (text is None and known is not None and kind is int
                        and k in self._fill_value_text and len(known) < _TEXT_CACHE):
                    text = known[v] = f"{json.dumps(k)}:{v}"  # an Integer's own value
            else:
                known = fragments.get(k)
                text = None if known is None else known.get(id(v))
            if text is None:
                text = _text(k, self.canonical(k, v))
            parts.append(text)
        return "{" + ",".join(parts) + "}"

    def canonical(self, name: str, value: Any) -> Any:
        """``value`` as the domain of ``name`` spells it. Equal configs must share a key, yet
        2 == 2.0 while JSON writes them apart (and a ConfigSpace round trip turns the choice 2
        of [2, 2.5] into 2.0)."""
        value = _plain(value)
        param = self.params.get(name)
        if isinstance(param, Categorical):
            if param.contains(value):
                return param.choices[param.index(value)]
        if isinstance(param, Integer) and isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(param, Float) and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
