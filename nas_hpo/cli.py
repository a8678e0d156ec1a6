"""The ``nas-hpo`` command line."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nas_hpo.study import SpecError, StorageError, StudyAborted

if TYPE_CHECKING:
    import optuna


def _port(text: str) -> int:
    """A TCP port for ``--port``: 1 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: give 1 to 65535")
    return port


def _workers(text: str) -> int | str:
    """``--workers``: a number or ``auto`` (the study spec checks the range)."""
    return text if text == "auto" else int(text)


def _cost(text: str | None) -> list[str] | None:
    """``--cost none`` / ``--cost params,flops``: the cost attributes measured."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return []
    return [m.strip() for m in text.split(",") if m.strip()]


def _quiet() -> None:
    """``-q``: no per-trial lines (Optuna's and ours), warnings and errors only."""
    import logging

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("nas_hpo").setLevel(logging.WARNING)


def _run(args: argparse.Namespace) -> int:
    from nas_hpo import report, run
    from nas_hpo.study import MEMORY, describe, load_spec

    if args.quiet:
        _quiet()
    overrides = dict(
        space=args.space,
        objective=args.objective,
        strategy=args.strategy,
        n_trials=args.n_trials,
        storage=args.storage,
        study_name=args.study_name,
        seed=args.seed,
        backend=args.backend,
        timeout_s=args.timeout_s,
        workers=args.workers,
        address=args.address,
        max_concurrent_trials=args.max_concurrent_trials,
        cost=_cost(args.cost),
        threads=args.threads,
    )
    spec = load_spec(args.study, **overrides)
    study = run(args.study, progress=not args.quiet, **overrides)
    print(report.summary(study))
    if spec.storage != MEMORY:
        print(f"\nopen it with: nas-hpo dashboard --storage {describe(spec.storage)}")
    return 0


def _spaces(args: argparse.Namespace) -> int:
    from nas_hpo import spaces

    rows = []
    for name in spaces.names():
        space = spaces.get(name)
        size = space.size()
        rows.append((name, "infinite" if math.isinf(size) else f"{size:,}", len(space),
                     "yes" if space.has_supernet else "-"))
    width = max(len(r[0]) for r in rows)
    size_width = max(len("architectures"), *(len(r[1]) for r in rows))
    print(f"{'space':<{width}}  {'architectures':>{size_width}}  parameters  supernet")
    for name, size, n, supernet in rows:
        print(f"{name:<{width}}  {size:>{size_width}}  {n:>10}  {supernet:>8}")
    return 0


def _study_location(args: argparse.Namespace) -> tuple[str, str | None]:
    """(storage URL, study name) from ``STUDY`` (a study file, or a study name) and flags."""
    from nas_hpo.study import DEFAULT_STORAGE, load_spec

    target = getattr(args, "study", None)
    if target and target.endswith(".toml"):
        spec = load_spec(target, storage=args.storage)
        return spec.storage, spec.study_name
    return args.storage or DEFAULT_STORAGE, target


def _load_study(storage_url: str, name: str | None) -> optuna.Study:
    import optuna

    from nas_hpo.study import describe, open_existing_storage

    storage = open_existing_storage(storage_url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if name is None:
        if len(names) != 1:
            raise SpecError(f"{describe(storage_url)} holds {len(names)} studies "
                            f"({', '.join(names) or 'none'}); name one")
        name = names[0]
    if name not in names:
        raise SpecError(f"{describe(storage_url)}: no study named {name!r}; it holds: "
                        f"{', '.join(names) or 'no study'}")
    return optuna.load_study(study_name=name, storage=storage)


def _report(args: argparse.Namespace) -> int:
    from nas_hpo import report

    study = _load_study(*_study_location(args))
    out = args.out or f"report-{study.study_name}"
    formats = ("csv", "parquet") if args.format == "both" else (args.format,)
    written = report.write(study, out, formats=formats)
    print(report.summary(study))
    print()
    for what, where in written.items():
        print(f"{what:<16} {where}")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    import optuna_dashboard

    from nas_hpo.study import describe, open_existing_storage

    url, _ = _study_location(args)
    storage = open_existing_storage(url)
    print(f"optuna-dashboard for {describe(url)} at http://{args.host}:{args.port}/dashboard "
          "(Ctrl-C stops it)", flush=True)
    optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    return 0


def _option(text: str) -> tuple[str, object]:
    import json

    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise SpecError(f"--space-option {text!r}: expected KEY=VALUE")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def _correlate(args: argparse.Namespace) -> int:
    from nas_hpo import correlate, data, proxies, spaces
    from nas_hpo.study import load_spec

    estimators = [e.strip() for e in args.estimators.split(",") if e.strip()]
    space_name, space_options = args.space, dict(_option(o) for o in args.space_option)
    dataset, data_dir = args.dataset, None
    if args.truth.endswith(".csv"):
        truth = correlate.from_csv(args.truth, key=args.key, value=args.value)
    else:
        if args.truth.endswith(".toml"):
            spec = load_spec(args.truth, storage=args.storage)
            study = _load_study(spec.storage, spec.study_name)
            if space_name is None:
                space_name, space_options = spec.space.name, {**spec.space.options,
                                                              **space_options}
            from nas_hpo.study import resolve_objective

            source = resolve_objective(spec).data_source()
            if source is not None:
                dataset, data_dir = dataset or source.dataset, source.data_dir
        else:
            study = _load_study(args.storage or "sqlite:///nas_hpo.db", args.truth)
        space_name = space_name or study.user_attrs.get("space")
        truth = correlate.from_study(study, objective=args.objective_index)
    compute = {}
    vote_needs: list[str] = []
    if "vote" in estimators:
        # The ensemble ranks the population: its members first (stored zc_* or computed).
        vote_needs = [m for m in proxies.VOTE_DEFAULT
                      if not (truth.attrs and all(f"zc_{m}" in a for a in truth.attrs))]
    wanted = [e for e in estimators if e != "vote"
              and not (truth.attrs and all(e in a for a in truth.attrs))]
    wanted += [m for m in vote_needs if m not in wanted]
    if wanted:
        unknown = [e for e in wanted if e not in proxies.PROXIES]
        if unknown:
            raise SpecError(f"--estimators: {unknown[0]!r} is neither stored on every "
                            f"architecture nor a zero-cost proxy ({', '.join(proxies.PROXIES)})")
        if not space_name:
            raise SpecError("--space: needed to build the networks the proxies score")
        space = spaces.get(space_name, **space_options)
        cache: dict[str, dict[str, float]] = {}

        def scores(config: dict) -> dict[str, float]:
            key = space.arch_key(config)
            if key not in cache:  # all requested proxies at once: they share passes
                cache[key] = proxies.score_config(
                    space, config, wanted, dataset=dataset or data.DEFAULT, data_dir=data_dir,
                    seed=args.seed)
            return cache[key]

        compute = {name: (lambda c, n=name: scores(c)[n]) for name in wanted}
    if "vote" in estimators:
        def member(i: int, m: str) -> float:
            if f"zc_{m}" in truth.attrs[i]:
                return truth.attrs[i][f"zc_{m}"]
            return compute[m](truth.configs[i])

        rows = [{m: member(i, m) for m in proxies.VOTE_DEFAULT}
                for i in range(len(truth.keys))]
        for attrs, value in zip(truth.attrs, proxies.vote(rows), strict=True):
            attrs["vote"] = value
    results, estimates = correlate.correlate(truth, estimators, compute=compute,
                                             n_boot=args.n_boot, seed=args.seed)
    print(f"{len(truth.keys)} architectures; ground truth: {truth.label}; "
          f"{args.n_boot} bootstrap resamples")
    print(correlate.table(results))
    if args.out:
        import pandas as pd

        written = correlate.scatter(truth, estimates, results, args.out)
        rows = [{"estimator": r.estimator, "n": r.n, "spearman": r.spearman,
                 "spearman_lo": r.spearman_ci[0], "spearman_hi": r.spearman_ci[1],
                 "kendall": r.kendall, "kendall_lo": r.kendall_ci[0],
                 "kendall_hi": r.kendall_ci[1]} for r in results]
        pd.DataFrame(rows).to_csv(f"{args.out}/correlations.csv", index=False)
        print(f"\ntable: {args.out}/correlations.csv; plots: {', '.join(written.values())}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from nas_hpo import benchmarking
    from nas_hpo.study import describe

    if args.file == "import":
        if not args.source or not args.dataset or not args.out:
            raise SpecError("bench import: give the downloaded file or folder, --dataset and "
                            "--out, e.g. nas-hpo bench import NAS-Bench-201-v1_1-096897.pth "
                            "--dataset cifar10-valid --out nb201_c10.parquet")
        from nas_hpo.benchmarking import importers

        found = importers.convert(args.source, args.out, dataset=args.dataset,
                                  epochs=args.epochs, kind=args.kind)
        print(", ".join(f"{k}: {v}" for k, v in found.items()))
        return 0
    if args.source:
        raise SpecError(f"bench: one benchmark file, got {args.file} and {args.source}")
    only = [x for x in (args.strategies or "").split(",") if x] or None
    spec = benchmarking.load_bench(args.file, only=only, seeds=args.seeds,
                                   processes=args.processes, output=args.output)
    storage = benchmarking.open_bench_storage(spec)
    todo = benchmarking.missing_runs(spec, storage)
    total = len(spec.strategies) * len(spec.seeds)
    print(f"{spec.name}: {total - len(todo)} of {total} runs in {describe(spec.storage)}; "
          f"running {len(todo)} in {spec.processes} process(es)", file=sys.stderr)

    def done(label: str, seed: int, seconds: float) -> None:
        if not args.quiet:
            print(f"  {label} seed {seed}: {seconds:.1f} s", file=sys.stderr)

    benchmarking.run_bench(spec, on_run=done)
    paths = benchmarking.results(spec)
    print(paths["md"].read_text())
    print(f"plot: {paths['png']}; tables: {paths['md']}, {paths['csv']}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nas-hpo", description="Neural architecture search as "
                                "conditional hyperparameter optimization.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run or resume a study")
    r.add_argument("study", nargs="?", help="study file (TOML)")
    r.add_argument("--space", help="registered space name or package.module:function")
    r.add_argument("--objective", help="registered objective or package.module:function")
    r.add_argument("--strategy", help="registered strategy name")
    r.add_argument("--n-trials", type=int, help="total number of trials of the study")
    r.add_argument("--timeout-s", type=float, help="stop starting trials after this many seconds")
    r.add_argument("--storage", help="Optuna storage URL (default sqlite:///nas_hpo.db)")
    r.add_argument("--study-name", help="study name (a study of that name is resumed)")
    r.add_argument("--seed", type=int, help="study seed")
    r.add_argument("--backend", help="optuna (this machine), ray (a Ray cluster) or simulated "
                   "(a simulated clock for table-answered objectives)")
    r.add_argument("--workers", type=_workers,
                   help="worker processes on this machine sharing the study (optuna backend); "
                   "auto (the default): 1 on the CPU, as many as the GPU's memory holds for a "
                   "CUDA objective")
    r.add_argument("--address", help="Ray cluster address (auto, ray://host:10001, host:6379); "
                   "without it the ray backend starts a local Ray instance")
    r.add_argument("--max-concurrent-trials", type=int, help="Ray: trials running at once")
    r.add_argument("--threads", type=int,
                   help="torch threads of each trial (default: cores / trials at once)")
    r.add_argument("--cost", metavar="none|M1,M2",
                   help="cost attributes measured on every trial: none, or a comma-separated "
                   "list of params, flops, latency (default: all three)")
    r.add_argument("-q", "--quiet", action="store_true",
                   help="no progress line and no per-trial lines (warnings and errors only)")
    r.set_defaults(func=_run)
    rep = sub.add_parser("report", help="tables (CSV/Parquet) and plots of a study")
    rep.add_argument("study", nargs="?",
                     help="study file (TOML) or study name (default: the storage's only study)")
    rep.add_argument("--storage", help="Optuna storage URL (default sqlite:///nas_hpo.db)")
    rep.add_argument("--out", help="output folder (default report-<study name>)")
    rep.add_argument("--format", choices=("csv", "parquet", "both"), default="both")
    rep.set_defaults(func=_report)
    d = sub.add_parser("dashboard", help="serve optuna-dashboard on a study storage")
    d.add_argument("study", nargs="?", help="study file (TOML) whose storage to serve")
    d.add_argument("--storage", help="Optuna storage URL (default sqlite:///nas_hpo.db)")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=_port, default=8080)
    d.set_defaults(func=_dashboard)
    c = sub.add_parser("correlate", help="rank correlation of estimators with ground truth")
    c.add_argument("truth", help="study file (TOML), study name (with --storage) or CSV file")
    c.add_argument("--estimators", required=True,
                   help="comma-separated: attributes stored on the trials (params, flops, "
                   "zc_synflow, ...) or zero-cost proxies computed here (synflow, nwot, ...)")
    c.add_argument("--storage", help="Optuna storage URL (default sqlite:///nas_hpo.db)")
    c.add_argument("--space", help="space of the architectures (default: the study's)")
    c.add_argument("--space-option", action="append", default=[], metavar="KEY=VALUE",
                   help="build option of the space (repeatable), e.g. C=8")
    c.add_argument("--dataset", help="data the proxies see (default: the study's, or digits)")
    c.add_argument("--key", default="arch", help="CSV: architecture column")
    c.add_argument("--value", default="accuracy", help="CSV: ground-truth column")
    c.add_argument("--objective-index", type=int, default=0,
                   help="which value of a multi-objective study is the ground truth")
    c.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", help="folder for correlations.csv and one scatter plot per estimator")
    c.set_defaults(func=_correlate)
    b = sub.add_parser("bench", help="benchmark strategies x seeds on a simulated clock; "
                       "`bench import` converts NAS-Bench-201 / NATS-Bench files")
    b.add_argument("file", help="benchmark file (TOML), or `import`")
    b.add_argument("source", nargs="?", help="bench import: the downloaded file or folder")
    b.add_argument("--seeds", type=int, help="run seeds 0..N-1 (overrides [bench] seeds)")
    b.add_argument("--processes", type=int, help="runs in parallel (overrides [bench])")
    b.add_argument("--output", help="output folder (overrides [bench] output)")
    b.add_argument("--strategies", metavar="A,B", help="only these labels of [strategies]")
    b.add_argument("--dataset", help="bench import: cifar10-valid, cifar10, cifar100, "
                   "ImageNet16-120")
    b.add_argument("--out", help="bench import: the table to write (.parquet)")
    b.add_argument("--epochs", type=int, default=200, help="bench import: 200 or 12")
    b.add_argument("--kind", default="auto", help="bench import: auto, nas-bench-201, nats-tss")
    b.add_argument("-q", "--quiet", action="store_true", help="no line per run")
    b.set_defaults(func=_bench)
    s = sub.add_parser("spaces", help="list the registered search spaces")
    s.set_defaults(func=_spaces)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (SpecError, StorageError) as e:
        print(f"nas-hpo: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # e.g. correlate on a constant estimator, a CSV without a column
        print(f"nas-hpo: error: {e}", file=sys.stderr)
        return 2
    except StudyAborted as e:
        print(f"nas-hpo: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nas-hpo: interrupted; finished trials are in the storage, run again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
