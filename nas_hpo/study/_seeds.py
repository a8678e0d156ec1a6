"""Seeds: every trial's, and the strategy's of each process that joins a study.

A trial's seed comes from the study seed and the trial's number in the storage, so it is
distinct for every trial of a study however many processes and runs add trials to it. A
strategy's sampler is seeded with the study seed in a process whose first trial is the
study's first (a new study run by one process repeats exactly); any other process — a worker,
a second run joining the study, a resumed run — seeds it from the study seed and the number of
its own first trial, so that no two of them propose the same sequence of architectures (and a
resumed random search does not replay the first run's draws).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from nas_hpo._samplers import WrappedSampler

__all__ = ["FirstTrialSeeded", "strategy_seed", "trial_seed"]

_U32 = 0xFFFFFFFF


def trial_seed(study_seed: int, number: int) -> int:
    """The seed of trial ``number``: distinct per trial, fixed by the study's seed; the first
    word of ``np.random.SeedSequence([study_seed, number]).generate_state(1)``."""
    if 0 <= study_seed <= _U32 and 0 <= number <= _U32:
        return _seed_block(study_seed, number >> 10)[number & 1023]
    return int(np.random.SeedSequence([study_seed, number]).generate_state(1)[0])


def strategy_seed(study_seed: int, first_trial: int) -> int:
    """The seed of the strategy of a process whose first trial is ``first_trial``."""
    if first_trial == 0:
        return study_seed
    return int(np.random.SeedSequence([study_seed, 0x5EED, first_trial]).generate_state(1)[0])


@functools.lru_cache(maxsize=16)
def _seed_block(study_seed: int, block: int) -> list[int]:
    """``trial_seed`` of trials 1024·block ... 1024·block + 1023, computed together.

    Why not SeedSequence itself: building one costs ~10 µs, a fifth of a cheap sampler's whole
    trial. This is NumPy's SeedSequence entropy mixing (pool of 4 words, entropy
    [study_seed, number], both one 32-bit word) and its generate_state for one word, on
    arrays; its hash constants do not depend on the data, so every lane shares them. Tested
    equal to SeedSequence."""
    u64, mask = np.uint64, np.uint64(_U32)
    number = np.arange(block << 10, (block << 10) + 1024, dtype=np.uint64)
    entropy = [np.full(1024, study_seed, dtype=np.uint64), number, None, None]
    const = 0x43B0D7E5

    def hashmix(value: np.ndarray | None) -> np.ndarray:
        nonlocal const
        v = (np.zeros(1024, dtype=np.uint64) if value is None else value) ^ u64(const)
        const = (const * 0x931E8875) & _U32
        v = (v * u64(const)) & mask
        return v ^ (v >> u64(16))

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r = (u64(0xCA01F9DD) * x - u64(0x4973F715) * y) & mask
        return r ^ (r >> u64(16))

    pool = [hashmix(e) for e in entropy]
    for src in range(4):
        for dst in range(4):
            if src != dst:
                pool[dst] = mix(pool[dst], hashmix(pool[src]))
    v = (pool[0] ^ u64(0x8B51F9DD)) * u64((0x8B51F9DD * 0x58F38DED) & _U32) & mask
    return (v ^ (v >> u64(16))).tolist()  # Python ints: indexing a list costs nothing


class FirstTrialSeeded(WrappedSampler):
    """A strategy's sampler that, at the first trial this process creates, is rebuilt with
    ``strategy_seed(study seed, that trial's number)`` unless that number is 0; it then
    answers every call as that sampler (``inner``). The engine puts the plain sampler back on
    the study when its run ends."""

    def __init__(self, sampler: optuna.samplers.BaseSampler,
                 rebuild: Callable[[int], optuna.samplers.BaseSampler], study_seed: int) -> None:
        super().__init__(sampler)
        self._rebuild = rebuild
        self._study_seed = study_seed
        self.first_trial: int | None = None

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.first_trial is None:
            self.first_trial = trial.number
            if trial.number != 0:
                self.inner = self._rebuild(strategy_seed(self._study_seed, trial.number))
        self.inner.before_trial(study, trial)
