"""Differentiable one-shot search: the continuous relaxation of a space's categorical
parameters (``Relaxed``, ``mixed``: what supernets call at each choice) and the search
algorithms that learn the relaxation's weights (``OneShotSearch``: DARTS first and second
order, GDAS, PC-DARTS, β-DARTS)."""

from __future__ import annotations

from nas_hpo.oneshot._relax import Relaxed, is_relaxed, is_zero, mixed, weight_of

__all__ = ["METHODS", "Epoch", "OneShotSearch", "Relaxed", "is_relaxed", "is_zero", "mixed",
           "weight_of"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # The search loads the space model, which the catalogue's supernets (importing the
    # relaxation above) must not wait for.
    if name in ("METHODS", "Epoch", "OneShotSearch"):
        from nas_hpo.oneshot import _search

        return getattr(_search, name)
    raise AttributeError(name)
