"""An RL controller trained with REINFORCE (Zoph & Le, "Neural Architecture Search with
Reinforcement Learning", ICLR 2017) as an Optuna sampler.

Optuna, SMAC and Ray Tune have no policy-gradient search, so it is ours. The policy is
autoregressive, as Zoph & Le's: an LSTM cell walks the space's parameters in the space's
(topological) order, and at each *active* parameter a head of that parameter turns the hidden
state into a distribution over its choices; the choice made is embedded and fed to the next
step. A parameter that its parents' choices leave inactive is skipped, so a conditional space
(``chain``'s layers beyond the depth drawn) gets valid configs by construction; a forbidden
draw is drawn again. Integers with more than ``_GRID`` values and floats are chosen from
``_GRID`` points of their range (log-spaced on a log scale): a policy over a continuum would
need another family (a Gaussian head), which architecture spaces hardly have.

Training: each complete trial is one sample; its reward is the value (negated for a minimized
study), the baseline an exponential moving average of the rewards (``baseline_decay``; Zoph &
Le), and the loss ``-(reward - baseline) · log π(config) - entropy_weight · H(π)`` (the
entropy bonus of ENAS, Pham et al. 2018), one Adam step per trial.

The policy is a function of the study: its initial weights come from the seed of the
study's first proposing process (recorded in the study), and it is rebuilt by replaying the
study's complete trials in trial-number order (kept in memory and extended as trials finish).
So a resumed study, or another worker process, continues with exactly the policy the study
had; a trial's config is drawn with a generator seeded by (this process's seed, trial number),
so a study run by one process is reproducible and two processes do not draw alike. The trials a
policy learns from need not be its own (warm starts, enqueued configs), which makes those
updates off-policy; REINFORCE then weighs them as if they were its own samples.

New architectures only (``unseen``, the default; a deviation from Zoph & Le): a draw that
repeats an architecture the study has (with ``skip_equivalent``, a network it has built) is
drawn again from the policy, up to ``_NEW_DRAWS`` times, then a new one-step mutation of the
last draw is taken, then a new random architecture. A policy that concentrates then spends its
trials next to its favourite instead of on it: those redrawn samples come from the policy
restricted to what is new, which makes them slightly off-policy too. On NB201-digits (20 seeds,
100 evaluations) Zoph & Le's sampling with Adam at 0.01 ended 0.54 of random search's seed
spread above it; new architectures only with a larger step, 0.05 (which without them makes the
policy collapse onto a few cells), 1.37 (held-out seeds: 0.98 and 1.30;
``benchmarks/README.md``).

Deviation from ENAS: with the ``supernet`` objective the controller searches over one shared
supernet, which is ENAS's idea, but the supernet is trained beforehand with uniform single
paths (SPOS) instead of alternating with the controller's samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from nas_hpo.space import Categorical, Constant, Float, Integer
from nas_hpo.strategies._decided import DecidedSampler
from nas_hpo.strategies._unseen import draw_new, evaluated_keys, key_of, new_nearby

if TYPE_CHECKING:
    from nas_hpo.space import SearchSpace

#: How many points of a float range (or a long integer range) the policy chooses among.
_GRID = 16
#: Draws of a forbidden config before the last one is left to the engine (it records it).
_REDRAWS = 100
#: With ``unseen``: draws of the policy until one is new (then ``new_nearby``: a new mutation
#: of the last draw, a new random architecture; else the repeat goes through and the engine
#: answers it from the record).
_NEW_DRAWS = 100
_PROBS = "nas_hpo:reinforce:log_prob"
_SEED = "nas_hpo:reinforce:seed"


def choices_of(param: Any) -> list[Any]:
    """The values the policy chooses among for one parameter."""
    if isinstance(param, Categorical):
        return list(param.choices)
    if isinstance(param, Constant):
        return [param.value]
    if isinstance(param, Integer) and param.high - param.low + 1 <= _GRID:
        return list(range(param.low, param.high + 1))
    if isinstance(param, (Integer, Float)):
        if param.log:
            grid = np.exp(np.linspace(math.log(param.low), math.log(param.high), _GRID))
        else:
            grid = np.linspace(param.low, param.high, _GRID)
        if isinstance(param, Integer):
            return sorted({int(round(v)) for v in grid})
        return [min(max(float(v), param.low), param.high) for v in grid]  # exp(log) drifts
    raise ValueError(f"parameter {param.name!r}: no policy for {type(param).__name__}")


class Controller(nn.Module):
    """The autoregressive policy: an LSTM cell over the space's parameters, a linear head and
    an embedding of the choice per parameter."""

    def __init__(self, sizes: Sequence[int], hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in sizes)
        self.embeddings = nn.ModuleList(nn.Embedding(n, hidden) for n in sizes)

    def step(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None, k: int
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        h, c = self.cell(x, state)
        return self.heads[k](h)[0], (h, c)


class ReinforceSampler(DecidedSampler):
    """REINFORCE over a ``SearchSpace`` (single objective); see the module docstring."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        learning_rate: float = 0.05,
        baseline_decay: float = 0.9,
        entropy_weight: float = 0.05,
        hidden: int = 32,
        unseen: bool = True,
        skip_equivalent: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(space, seed=seed)
        if not 0 <= baseline_decay < 1:
            raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay}")
        self.learning_rate, self.baseline_decay = learning_rate, baseline_decay
        self.entropy_weight, self.hidden = entropy_weight, hidden
        self.unseen = unseen
        self.key = key_of(space, skip_equivalent)
        self.names = [n for n in space.order if not isinstance(space[n], Constant)]
        self.choices = {n: choices_of(space[n]) for n in self.names}
        self._reset()

    def _reset(self, init_seed: int | None = None) -> None:
        self.init_seed = self.seed if init_seed is None else init_seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.init_seed)
            self.policy = Controller([len(self.choices[n]) for n in self.names], self.hidden)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.learning_rate)
        self.baseline: float | None = None
        self.learned: list[int] = []  # trial numbers replayed, in order

    # ------------------------------------------------------------------ the policy

    def _walk(self, config: dict[str, Any] | None, rng: np.random.Generator | None
              ) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
        """Draw a config (``rng``) or score a given one (``config``): the config, its log
        probability under the policy and the summed entropy of the decisions taken."""
        out: dict[str, Any] = {}
        x, state = self.policy.start, None
        log_p = torch.zeros(())
        entropy = torch.zeros(())
        for name in self.space.order:
            if not self.space.is_active(name, out):
                continue
            if name not in self.choices:  # a constant
                out[name] = self.space[name].value
                continue
            k = self.names.index(name)
            logits, state = self.policy.step(x, state, k)
            logp = torch.log_softmax(logits, dim=0)
            if config is None:
                assert rng is not None
                probs = logp.detach().exp().double().numpy()
                i = int(rng.choice(len(probs), p=probs / probs.sum()))
            else:
                i = self._index(name, config[name])
            out[name] = self.choices[name][i]
            log_p = log_p + logp[i]
            entropy = entropy - (logp.exp() * logp).sum()
            x = self.policy.embeddings[k](torch.tensor([i]))
        return out, log_p, entropy

    def _index(self, name: str, value: Any) -> int:
        """The policy's choice for a value (a float or a long integer: the nearest point)."""
        grid = self.choices[name]
        param = self.space[name]
        if isinstance(param, Categorical):
            return param.index(value)
        if isinstance(param, (Integer, Float)) and param.log:
            return int(np.argmin([abs(math.log(v) - math.log(value)) for v in grid]))
        return int(np.argmin([abs(v - value) for v in grid]))

    def learn(self, config: dict[str, Any], reward: float) -> None:
        """One REINFORCE step on a finished config and its reward."""
        if self.baseline is None:
            self.baseline = reward
        advantage = reward - self.baseline
        _, log_p, entropy = self._walk(config, None)
        loss = -advantage * log_p - self.entropy_weight * entropy
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward

    def probabilities(self, partial: dict[str, Any] | None = None) -> dict[str, list[float]]:
        """The policy's distribution over each active parameter's choices, along the most
        likely path (or the given ``partial`` config's choices): what it has learned."""
        out: dict[str, list[float]] = {}
        walked: dict[str, Any] = {}
        x, state = self.policy.start, None
        with torch.no_grad():
            for name in self.space.order:
                if not self.space.is_active(name, walked):
                    continue
                if name not in self.choices:  # a constant
                    walked[name] = self.space[name].value
                    continue
                k = self.names.index(name)
                logits, state = self.policy.step(x, state, k)
                p = torch.softmax(logits, dim=0)
                out[name] = [round(float(v), 6) for v in p]
                i = (self._index(name, partial[name]) if partial and name in partial
                     else int(torch.argmax(p)))
                walked[name] = self.choices[name][i]
                x = self.policy.embeddings[k](torch.tensor([i]))
        return out

    def catch_up(self, study: optuna.Study) -> None:
        """Bring the policy up to the study's complete trials (in trial-number order)."""
        done = sorted((t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                       if t.values is not None and len(t.values) == 1),
                      key=lambda t: t.number)
        init_seed = study._storage.get_study_system_attrs(study._study_id).get(_SEED)
        if init_seed is None:
            init_seed = self.seed
            study._storage.set_study_system_attr(study._study_id, _SEED, init_seed)
        numbers = [t.number for t in done]
        if init_seed != self.init_seed or numbers[: len(self.learned)] != self.learned:
            # another study's policy, or a trial finished out of order (it sorts before one
            # already learned from): replay from the start
            self._reset(init_seed)
        sign = 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
        with torch.random.fork_rng(devices=[]):
            for t in done[len(self.learned):]:
                config = self.space.repair(t.params) if not self.space.is_valid(t.params) \
                    else dict(t.params)
                self.learn(config, sign * float(t.values[0]))
                self.learned.append(t.number)

    # ------------------------------------------------------------------ the sampler

    def propose(self, study: optuna.Study, trial: FrozenTrial
                ) -> tuple[dict[str, Any], dict[str, Any]]:
        if len(study.directions) != 1:
            raise ValueError("reinforce optimizes one objective")
        self.catch_up(study)
        rng = np.random.default_rng([self.seed, trial.number])
        with torch.no_grad():
            if not self.unseen:
                config = self._draw(rng)
            else:
                seen = evaluated_keys(study, self.space, self.key)
                config, new = draw_new(lambda: self._draw(rng), seen, self.key, _NEW_DRAWS)
                found = None if new else new_nearby(self.space, config, seen, self.key, rng)
                if found is not None:
                    config = found[0]
            _, log_p, _ = self._walk(config, None)
        return config, {_PROBS: round(float(log_p), 6)}

    def _draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """A config drawn from the policy (a forbidden one is drawn again, up to ``_REDRAWS``
        times; the last one is left to the engine, which records it)."""
        for _ in range(_REDRAWS):
            config, _, _ = self._walk(None, rng)
            if not self.space.is_forbidden(config):
                break
        return config
