"""The study layer: the study description and its plan, seeds, storages, opening and resuming
a study, the one trial lifecycle every backend runs (propose → evaluate → record), and the
budget.

Backends (``nas_hpo.backends``) execute this lifecycle; they are found by the front
(``nas_hpo.run``, the CLI) through their registry, and nothing here imports one.
"""

from __future__ import annotations

from nas_hpo.study._budget import Budget, StudyAborted, cost_spent, epochs_spent
from nas_hpo.study._checks import SpecError, check_options, import_callable, type_ok
from nas_hpo.study._context import OptunaContext
from nas_hpo.study._dedupe import ArchRecord
from nas_hpo.study._evaluate import CostRecorder, Evaluator, Outcome, ProxyScorer, evaluator_for
from nas_hpo.study._internals import DUPLICATE_ATTR, FINISHED, AttrWriter, counted, jsonable
from nas_hpo.study._lifecycle import Lifecycle, Proposal
from nas_hpo.study._open import describer, open_study, resume, storage_of
from nas_hpo.study._plan import Plan, evaluation_parts, prepare, resolve_objective, resolve_space
from nas_hpo.study._recovery import (
    WORKER_ATTR,
    fail_trial,
    process_gone,
    recover_stale,
    worker_id,
)
from nas_hpo.study._seeds import FirstTrialSeeded, strategy_seed, trial_seed
from nas_hpo.study._spec import DEFAULT_STORAGE, OVERRIDES, Named, StudySpec, load_spec, read_toml
from nas_hpo.study._storage import (
    MEMORY,
    StorageError,
    check_url,
    describe,
    mask_in,
    open_existing_storage,
    open_storage,
    storage_file,
)
from nas_hpo.study._threads import cores, default_threads, threads_set, use_threads
from nas_hpo.study._warm import warm_start
from nas_hpo.study._workers import GPU_WORKER_GIB, auto_workers, worker_count

__all__ = [
    "DEFAULT_STORAGE",
    "DUPLICATE_ATTR",
    "FINISHED",
    "GPU_WORKER_GIB",
    "MEMORY",
    "OVERRIDES",
    "WORKER_ATTR",
    "ArchRecord",
    "AttrWriter",
    "Budget",
    "CostRecorder",
    "Evaluator",
    "FirstTrialSeeded",
    "Lifecycle",
    "Named",
    "OptunaContext",
    "Outcome",
    "Plan",
    "Proposal",
    "ProxyScorer",
    "SpecError",
    "StorageError",
    "StudyAborted",
    "StudySpec",
    "auto_workers",
    "check_options",
    "check_url",
    "cores",
    "cost_spent",
    "counted",
    "default_threads",
    "describe",
    "describer",
    "epochs_spent",
    "evaluation_parts",
    "evaluator_for",
    "fail_trial",
    "import_callable",
    "jsonable",
    "load_spec",
    "mask_in",
    "open_existing_storage",
    "open_storage",
    "open_study",
    "prepare",
    "read_toml",
    "process_gone",
    "recover_stale",
    "resolve_objective",
    "resolve_space",
    "resume",
    "storage_file",
    "storage_of",
    "strategy_seed",
    "threads_set",
    "trial_seed",
    "type_ok",
    "use_threads",
    "worker_count",
    "warm_start",
    "worker_id",
]
