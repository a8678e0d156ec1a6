"""``[strategy] warm_start``: start a new study from the architectures a zero-cost proxy likes."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import optuna

from nas_hpo.study._checks import SpecError
from nas_hpo.study._evaluate import ProxyScorer
from nas_hpo.study._plan import Plan

__all__ = ["warm_start"]

_log = logging.getLogger("nas_hpo")


def warm_start(plan: Plan, study: optuna.Study) -> list[dict[str, Any]]:
    """``[strategy] warm_start = N``: on a study without trials, score N random architectures
    with the proxy ``warm_start_by`` and enqueue the best ``warm_start_top`` (default N/10) as
    the first trials, best first. Returns the enqueued configs."""
    spec = plan.spec
    if not spec.warm_start or study.get_trials(deepcopy=False):
        return []
    if not plan.space.can_build:
        raise SpecError(f"{spec.where('strategy', 'warm_start')}: the space "
                        f"{plan.space.name!r} builds no network for a proxy to score")
    score = ProxyScorer(plan.space, plan.objective, (spec.warm_start_by,), spec.seed)
    seen: dict[str, tuple[float, dict[str, Any]]] = {}
    for i in range(spec.warm_start * 4):  # duplicates of a small space are drawn again
        if len(seen) >= spec.warm_start:
            break
        seed = int(np.random.SeedSequence([spec.seed, 0x3A57, i]).generate_state(1)[0])
        config = plan.space.sample(seed=seed)
        key = plan.space.arch_key(config)
        if key not in seen:
            seen[key] = (score(config)[spec.warm_start_by], config)
    top = spec.warm_start_top or max(1, spec.warm_start // 10)
    best = sorted(seen.values(), key=lambda sc: -sc[0])[:top]
    for value, config in best:
        study.enqueue_trial(config, user_attrs={
            "warm_start": {"by": spec.warm_start_by, "score": value, "of": len(seen)}})
    _log.info("warm start: enqueued the %d best of %d architectures by %s", len(best),
              len(seen), spec.warm_start_by)
    return [c for _, c in best]
