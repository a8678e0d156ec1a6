"""A progress line for long studies: trials done, best so far, elapsed time and ETA.

A line per trial says what it gave; what it does not say is how far the study is and when it
will end. ``Progress`` is told of each trial this process records (``update``) and polls the
storage where the trials finish in other processes (a ``--workers N`` run). On a terminal the
line is rewritten in place; otherwise a line is printed per finished trial.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import optuna

from nas_hpo.space import FORBIDDEN_ATTR

__all__ = ["Progress"]

_FINISHED = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Counts finished trials of ``study`` towards ``n_trials`` from the moment it is made."""

    def __init__(self, n_trials: int, study: optuna.Study, *, enabled: bool = True,
                 stream: TextIO | None = None) -> None:
        self.n_trials, self.study, self.enabled = n_trials, study, enabled
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.done_before = self._finished()[0] if enabled else 0
        self.last = self.done_before
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn = -1.0

    def _finished(self) -> tuple[int, int, int]:
        """Trials done (forbidden draws aside: they do not count towards ``n_trials``), those
        running, and the forbidden draws."""
        trials = self.study.get_trials(deepcopy=False)
        finished = [t for t in trials if t.state in _FINISHED]
        forbidden = sum(FORBIDDEN_ATTR in t.user_attrs for t in finished)
        done = len(finished) - forbidden
        running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
        return done, running, forbidden

    def line(self) -> str:
        """The current progress line (also what the tests read)."""
        done, running, forbidden = self._finished()
        elapsed = time.monotonic() - self.start
        parts = [f"{done}/{self.n_trials} trials"]
        if running:
            parts.append(f"{running} running")
        if forbidden:
            parts.append(f"{forbidden} forbidden draw{'s' * (forbidden > 1)}")
        try:
            if len(self.study.directions) == 1:
                best = self.study.best_trial
                parts.append(f"best {best.value:.4g} (#{best.number})")
            else:
                parts.append(f"Pareto front {len(self.study.best_trials)}")
        except ValueError:
            parts.append("best -")
        parts.append(f"{_clock(elapsed)} elapsed")
        new = done - self.done_before
        if 0 < new and done < self.n_trials:
            parts.append(f"ETA {_clock(elapsed / new * (self.n_trials - done))}")
        return "[nas-hpo] " + " · ".join(parts)

    def _emit(self) -> None:
        text = self.line()
        if self._tty:
            self.stream.write("\r\x1b[2K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def update(self, state: optuna.trial.TrialState, forbidden: bool = False) -> None:
        """A trial of this process was recorded (``forbidden``: a forbidden draw)."""
        if not self.enabled or (not self._tty and forbidden):
            return  # a forbidden draw changes no count but its own: no line of its own in a log
        # On a terminal the line is redrawn at most 4 times a second: reading the study for it
        # after each of thousands of fast trials would cost more than the trials.
        now = time.monotonic()
        if self._tty and now - self._drawn < 0.25:
            return
        self._drawn = now
        self._emit()

    def poll(self) -> None:
        """Print the line if trials finished since the last call (multi-process runs)."""
        if not self.enabled:
            return
        done = self._finished()[0]
        if done != self.last:
            self.last = done
            self._emit()

    def close(self) -> None:
        if self.enabled and self._tty:
            self._emit()  # the final count, whatever the throttle skipped
            self.stream.write("\n")
            self.stream.flush()
