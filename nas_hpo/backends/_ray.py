"""Ray Tune adapter: a conditional ``SearchSpace`` as a Ray Tune searcher (translation only).

Ray Tune draws configurations through ``OptunaSearch`` driven by the space's define-by-run
function (``SearchSpace.suggest``), so conditions are honoured by construction: only active
parameters are asked, in topological order, and Ray's config is exactly the config dict.

What stock ``OptunaSearch`` (ray 2.60, checked with optuna 5.0.0) does with a define-by-run
function, and why ``_SpaceOptunaSearch`` overrides ``suggest``:

- It calls the function on a wrapper of a fresh ``study.ask()`` trial inside
  ``Searcher.suggest``. An exception there is not caught anywhere in Tune: a forbidden draw
  (``ForbiddenConfigurationError``) propagates out of ``TuneController.step`` and aborts the
  whole ``Tuner.fit()``, leaving the Optuna trial RUNNING for ever. The override records the draw
  as a PRUNED Optuna trial (what ``study.optimize`` records for the same draw on the Optuna
  backend, and a state samplers such as TPE learn from, unlike FAIL) and asks again, so Ray only
  ever receives a valid config and no Ray trial (nor ``num_samples``) is spent on it.
- It returns ``unflatten_dict(params)``, which would turn a parameter named ``"a/b"`` into a
  nested ``{"a": {"b": ...}}``; the override returns the flat config dict as it is.

The ask/tell calls Ray makes (``create_study``, ``ask``, ``tell`` with ``state=``, ``report``)
all work unchanged on optuna 5.0.0; only the two points above needed a workaround.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

try:
    from ray.tune.search.optuna import OptunaSearch
except ImportError as exc:  # re-raised with the fix, never swallowed
    raise ImportError("the Ray Tune backend needs Ray Tune: pip install 'ray[tune]>=2.9'") from exc

from optuna.trial import TrialState

from nas_hpo.space import (
    MAX_FORBIDDEN_DRAWS,
    ForbiddenConfigurationError,
    forbidden_streak_error,
)

if TYPE_CHECKING:
    import optuna

    from nas_hpo.space import Config, SearchSpace

__all__ = ["tune_search", "valid_only"]

# Stop instead of spinning inside Tune's event loop (see ``MAX_FORBIDDEN_DRAWS``).
_MAX_FORBIDDEN_DRAWS = MAX_FORBIDDEN_DRAWS


class _SpaceOptunaSearch(OptunaSearch):
    """``OptunaSearch`` over a ``SearchSpace`` whose forbidden draws never reach Ray."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        metric: str | list[str],
        mode: str | list[str],
        sampler: optuna.samplers.BaseSampler | None,
        seed: int | None,
        study_name: str | None = None,
        storage: optuna.storages.BaseStorage | None = None,
    ) -> None:
        # A bound method pickles with its space, so Tune's searcher checkpoints keep working.
        super().__init__(space.suggest, metric=metric, mode=mode, sampler=sampler, seed=seed,
                         study_name=study_name, storage=storage)
        self._search_space = space

    @property
    def search_space(self) -> SearchSpace:
        """The space this searcher draws from."""
        return self._search_space

    @property
    def study(self) -> optuna.Study:
        """The Optuna study behind the searcher: one COMPLETE / FAIL / PRUNED trial per Ray
        trial, plus one PRUNED trial with a ``forbidden`` user attribute per forbidden draw."""
        return self._ot_study

    def suggest(self, trial_id: str) -> Config:
        """The next valid config for Ray's trial ``trial_id``; forbidden draws in between are
        told to the study as PRUNED and redrawn."""
        for _ in range(_MAX_FORBIDDEN_DRAWS):
            # As in OptunaSearch: an id asked for before keeps its Optuna trial (and values).
            ot_trial = self._ot_trials.get(trial_id) or self._ot_study.ask()
            self._ot_trials[trial_id] = ot_trial
            try:
                # Called directly rather than through Ray's suggest-captor: our function returns
                # the whole config, and the captor path would unflatten names containing "/".
                return self._search_space.suggest(ot_trial)
            except ForbiddenConfigurationError:
                del self._ot_trials[trial_id]
                self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
        raise forbidden_streak_error(self._search_space, _MAX_FORBIDDEN_DRAWS)


def tune_search(
    space: SearchSpace,
    *,
    metric: str | Sequence[str],
    mode: str | Sequence[str],
    sampler: optuna.samplers.BaseSampler | None = None,
    seed: int | None = None,
) -> OptunaSearch:
    """A Ray Tune search algorithm drawing valid configs of ``space`` with an Optuna sampler.

    Pass it as ``tune.TuneConfig(search_alg=...)`` with ``param_space={}``: the searcher owns the
    whole space, and every config Ray hands the trainable is a valid config of ``space`` (active
    parameters only, no forbidden combination). ``metric`` / ``mode`` are Ray's (lists for
    several objectives); ``sampler`` defaults to Ray's choice (TPE) seeded with ``seed``. The
    Optuna study with every draw, forbidden ones included, is the result's ``study``.
    """
    if sampler is not None and seed is not None:
        # Ray would only log a warning and drop the seed; a silently unseeded run is worse.
        raise ValueError("pass either sampler= (seeded itself) or seed=, not both")
    return _SpaceOptunaSearch(
        space, metric=_str_or_list(metric), mode=_str_or_list(mode), sampler=sampler, seed=seed
    )


def _str_or_list(value: str | Sequence[str]) -> str | list[str]:
    # OptunaSearch recognises several objectives by ``isinstance(metric, list)`` only.
    return value if isinstance(value, str) else list(value)


def valid_only(trainable: Callable[..., Any], space: SearchSpace) -> Callable[..., Any]:
    """Wrap a function trainable so that it refuses any config that is not valid for ``space``.

    A guard for runs where the config may not come from ``tune_search`` (a ``param_space``, a
    different searcher, a restored experiment): the trial fails with a ``ValueError`` naming the
    offending parameter before any training starts. Name, attributes Ray reads (``_resources``,
    ``__mixins__``) and generator-ness of ``trainable`` are kept, so Ray treats the wrapper exactly
    like the original.
    """
    if inspect.isclass(trainable) or not callable(trainable):
        raise TypeError(
            f"valid_only wraps a function trainable f(config), got {trainable!r}; a class "
            "trainable can call space.validate(config) in its setup()"
        )

    def check(config: Config) -> None:
        try:
            space.validate(config)
        except ValueError as exc:
            label = f" {space.name!r}" if space.name else ""
            raise ValueError(
                f"Ray Tune passed a config invalid for the space{label}: {exc}"
            ) from exc

    # Ray calls a generator function's results one by one and a plain function's return value
    # once (``inspect.isgeneratorfunction``), so the wrapper must be of the same kind.
    if inspect.isgeneratorfunction(trainable):

        @functools.wraps(trainable)
        def checked_gen(config: Config, *args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            check(config)
            return (yield from trainable(config, *args, **kwargs))

        return checked_gen

    @functools.wraps(trainable)
    def checked(config: Config, *args: Any, **kwargs: Any) -> Any:
        check(config)
        return trainable(config, *args, **kwargs)

    return checked
