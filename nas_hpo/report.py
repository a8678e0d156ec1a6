"""Text summaries of a study (what ``nas-hpo run`` prints at the end)."""

from __future__ import annotations

import optuna

__all__ = ["summary"]

_STATES = ("COMPLETE", "PRUNED", "FAIL")


def _value(t: optuna.trial.FrozenTrial) -> str:
    return ", ".join(f"{v:.4f}" for v in t.values) if t.values else "-"


def _num(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "-" if v is None else str(v)


def summary(study: optuna.Study, *, top: int = 10) -> str:
    """The best architecture(s) and a table of the ``top`` trials."""
    trials = study.get_trials(deepcopy=False)
    counts = {s: sum(t.state.name == s for t in trials) for s in _STATES}
    lines = [
        f"study {study.study_name!r}: {len(trials)} trials "
        f"({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed)"
    ]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        lines.append("no completed trial yet")
        return "\n".join(lines)
    multi = len(study.directions) > 1
    if multi:
        best = study.best_trials
        lines.append(f"Pareto front: {len(best)} trial(s)")
    else:
        best = [study.best_trial]
        t = best[0]
        lines.append(f"best trial #{t.number}: value {_value(t)}")
        lines.append(f"  arch: {t.user_attrs.get('arch', t.params)}")
        for key in ("params", "test_accuracy", "flops", "latency_ms"):
            if key in t.user_attrs:
                lines.append(f"  {key}: {_num(t.user_attrs[key])}")
    sign = [1 if d == optuna.study.StudyDirection.MAXIMIZE else -1 for d in study.directions]
    ranked = sorted(best if multi else complete,
                    key=lambda t: tuple(-s * v for s, v in zip(sign, t.values, strict=True)))[:top]
    header = f"{'trial':>6}  {'value':>16}  {'params':>11}  {'test_acc':>8}  arch"
    lines += ["", header, "-" * len(header)]
    for t in ranked:
        lines.append(
            f"{t.number:>6}  {_value(t):>16}  {_num(t.user_attrs.get('params')):>11}  "
            f"{_num(t.user_attrs.get('test_accuracy')):>8}  {t.user_attrs.get('arch', '')}"
        )
    return "\n".join(lines)
