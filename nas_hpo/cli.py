"""The ``nas-hpo`` command line."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

from nas_hpo._spec import SpecError


def _run(args: argparse.Namespace) -> int:
    from nas_hpo import report
    from nas_hpo._runner import run
    from nas_hpo._spec import load_spec

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
    )
    study = run(args.study, **overrides)
    print(report.summary(study))
    storage = load_spec(args.study, **overrides).storage
    print(f"\nopen it with: optuna-dashboard {storage}")
    return 0


def _spaces(args: argparse.Namespace) -> int:
    from nas_hpo import spaces

    rows = []
    for name in spaces.names():
        space = spaces.get(name)
        size = space.size()
        rows.append((name, "infinite" if math.isinf(size) else f"{size:,}", len(space)))
    width = max(len(r[0]) for r in rows)
    size_width = max(len("architectures"), *(len(r[1]) for r in rows))
    print(f"{'space':<{width}}  {'architectures':>{size_width}}  parameters")
    for name, size, n in rows:
        print(f"{name:<{width}}  {size:>{size_width}}  {n:>10}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nas-hpo", description="Neural architecture search as "
                                "conditional hyperparameter optimization.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run or resume a study")
    r.add_argument("study", nargs="?", help="study file (TOML)")
    r.add_argument("--space", help="registered space name")
    r.add_argument("--objective", help="registered objective or package.module:function")
    r.add_argument("--strategy", help="registered strategy name")
    r.add_argument("--n-trials", type=int, help="total number of trials of the study")
    r.add_argument("--timeout-s", type=float, help="stop starting trials after this many seconds")
    r.add_argument("--storage", help="Optuna storage URL (default sqlite:///nas_hpo.db)")
    r.add_argument("--study-name", help="study name (a study of that name is resumed)")
    r.add_argument("--seed", type=int, help="study seed")
    r.add_argument("--backend", help="optuna (local)")
    r.set_defaults(func=_run)
    s = sub.add_parser("spaces", help="list the registered search spaces")
    s.set_defaults(func=_spaces)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except SpecError as e:
        print(f"nas-hpo: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nas-hpo: interrupted; finished trials are in the storage, run again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
