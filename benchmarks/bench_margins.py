"""How far each strategy of a finished benchmark is from a baseline, in units of the seeds'
spread, and whether one strategy's spread differs from the others'.

For every strategy of a ``nas-hpo bench`` file whose runs are in its storage, at the end of the
budget: the mean over seeds of the incumbent's searched value (what the study optimizes, e.g.
validation accuracy) and of its report (``[bench] report``, e.g. test accuracy); the margin over
the baseline's mean, that margin divided by the baseline's std over seeds ("margin / spread":
above 1 is "beats the baseline by more than the seed spread"), and a one-sided Mann-Whitney U
test that the strategy's values are larger (SciPy). ``--spread LABEL`` adds, for that strategy
against each other one, the ratio of the two stds and the Brown-Forsythe test (SciPy's
``levene`` with ``center="median"``) of equal spread: with 20 seeds a std is itself uncertain
by ~16%, so a ratio of 1.4 can be chance. ``--climbs LABEL`` (a ``local_search`` strategy)
says where that spread comes from: each run's walk is its first climb and one more per restart
(the trials' ``nas_hpo:ls:role``), and a run ends at the best value any run of the benchmark
reached only once a climb ends there; counted up to each run's first such trial, the share of
climbs that do.

    python benchmarks/bench_margins.py studies/bench_nb201_digits.toml --spread local_search
    python benchmarks/bench_margins.py studies/bench_nb201_digits.toml --climbs local_search
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import optuna
from scipy.stats import levene, mannwhitneyu

from nas_hpo.benchmarking import (
    at_evaluations,
    load_bench,
    load_runs,
    open_bench_storage,
    searched_at,
)


def finals(path: str, storage: str | None) -> tuple[dict[str, dict[str, np.ndarray]], int]:
    """Per strategy, the incumbent's final searched value and report over its seeds."""
    spec = load_bench(path, **({"storage": storage} if storage else {}))
    runs, _ = load_runs(spec, open_bench_storage(spec))
    if not runs:
        raise SystemExit(f"{spec.storage} holds no complete run of benchmark {spec.name!r}")
    n = int(spec.template.get("budget", {}).get("n_trials", 10**9))
    out: dict[str, dict[str, list[float]]] = {}
    for run in sorted(runs, key=lambda r: (r.label, r.seed)):
        got = out.setdefault(run.label, {"value": [], "report": []})
        got["value"].append(searched_at(run, n))
        got["report"].append(at_evaluations(run, n))
    order = list(spec.strategies)
    return ({label: {m: np.asarray(v) for m, v in out[label].items()}
             for label in order if label in out}, len(spec.seeds))


def margins(data: dict[str, dict[str, np.ndarray]], baseline: str) -> list[str]:
    base = data[baseline]
    lines = ["| strategy | value | margin / spread | p (U) | report | margin / spread | p (U) |",
             "|---|---|---|---|---|---|---|"]
    for label, got in data.items():
        cells = [label]
        for metric in ("value", "report"):
            ours, theirs = got[metric], base[metric]
            margin = ours.mean() - theirs.mean()
            ratio = margin / theirs.std(ddof=1)
            p = (math.nan if label == baseline
                 else mannwhitneyu(ours, theirs, alternative="greater").pvalue)
            cells += [f"{ours.mean():.4f} ± {ours.std(ddof=1):.4f}", f"{ratio:+.2f}",
                      "–" if math.isnan(p) else f"{p:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def spreads(data: dict[str, dict[str, np.ndarray]], label: str) -> list[str]:
    ours = data[label]
    lines = [f"| {label} against | std ratio (value) | p (Brown-Forsythe) | std ratio (report) | "
             "p (Brown-Forsythe) |", "|---|---|---|---|---|"]
    for other, got in data.items():
        if other == label:
            continue
        cells = [other]
        for metric in ("value", "report"):
            a, b = ours[metric], got[metric]
            ratio = a.std(ddof=1) / b.std(ddof=1) if b.std(ddof=1) > 0 else math.inf
            cells += [f"{ratio:.2f}", f"{levene(a, b, center='median').pvalue:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def climbs(path: str, storage: str | None, label: str) -> dict[str, float]:
    """``label``'s walks: runs, runs reaching the best value of the benchmark's runs, climbs a
    run, and climbs (up to each run's first trial at that value) that ended there."""
    spec = load_bench(path, **({"storage": storage} if storage else {}))
    store = open_bench_storage(spec)
    runs, maximize = load_runs(spec, store)
    ours = [r for r in runs if r.label == label]
    if not ours:
        raise SystemExit(f"no runs of {label!r}; have: {', '.join(sorted({r.label for r in runs}))}")
    finals = [float(r.values[-1]) for r in runs if r.values is not None and len(r.values)]
    best = max(finals) if maximize else min(finals)
    out = {"runs": 0, "reached": 0, "climbs": 0, "counted": 0, "best": best}
    for run in ours:
        study = optuna.load_study(study_name=spec.run_name(label, run.seed), storage=store)
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        restarts = [t.number for t in trials if t.system_attrs.get("nas_hpo:ls:role") == "start"
                    and t.system_attrs.get("nas_hpo:ls:center") is not None]
        hit = next((t.number for t in trials if t.value is not None
                    and math.isclose(t.value, best, rel_tol=1e-9, abs_tol=1e-12)), None)
        out["runs"] += 1
        out["climbs"] += len(restarts) + 1
        if hit is None:  # every finished climb failed; the last one the budget cut short
            out["counted"] += len(restarts)
        else:
            out["reached"] += 1
            out["counted"] += sum(r < hit for r in restarts) + 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench", help="the benchmark file (its runs must be in its storage)")
    parser.add_argument("--storage", help="another storage than the file's")
    parser.add_argument("--baseline", default="random")
    parser.add_argument("--spread", help="a strategy whose spread to test against the others")
    parser.add_argument("--climbs", help="a local_search strategy whose climbs to count")
    args = parser.parse_args()
    if args.climbs:
        c = climbs(args.bench, args.storage, args.climbs)
        print(f"{args.climbs}: {c['runs']} runs, {c['reached']} reach the best value of the "
              f"benchmark's runs ({c['best']:.6g}); {c['climbs'] / c['runs']:.1f} climbs a run; "
              f"up to each run's first trial there, {c['reached']} of {c['counted']} climbs "
              f"ended there ({c['reached'] / max(c['counted'], 1):.2f})")
        return
    data, seeds = finals(args.bench, args.storage)
    if args.baseline not in data:
        raise SystemExit(f"no runs of the baseline {args.baseline!r}; have: {', '.join(data)}")
    print(f"{seeds} seeds; margin / spread = (mean - {args.baseline}'s mean) / {args.baseline}'s "
          "std; p: one-sided Mann-Whitney U (larger than the baseline)\n")
    print("\n".join(margins(data, args.baseline)))
    if args.spread:
        if args.spread not in data:
            raise SystemExit(f"no runs of {args.spread!r}; have: {', '.join(data)}")
        print()
        print("\n".join(spreads(data, args.spread)))


if __name__ == "__main__":
    main()
