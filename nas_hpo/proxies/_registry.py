"""The proxy registry: each proxy is a function of a ``_Run`` (the passes it needs, run once)
registered with how ``score`` feeds it and the floor it gets when it cannot see a network."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from nas_hpo.proxies._passes import _Run

#: The floor of the proxies without a natural lower bound.
FLOOR = -1.0e9
#: The ensemble ``vote`` averages the rank percentiles of these: Abdelfattah et al. 2021's
#: vote of synflow, jacob_cov and snip, plus NASWOT.
VOTE_DEFAULT = ("synflow", "jacob_cov", "snip", "nwot")

_LAYERS = (nn.Conv2d, nn.Linear)
_K = 1e-5  # the regulariser of jacob_cov's and epe_nas's logarithms, as in their references


# ------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Proxy:
    """A registered proxy: how it is computed and how ``score_config`` feeds it.

    ``needs`` are the products of the shared forward pass it reads; ``batch_size`` is its
    reference's minibatch (``None``: the proxy does not look at the data, only its shape);
    ``multi_batch`` proxies read every batch given, the others the first; ``repeats`` is the
    default number of random weight draws averaged (0: the proxy draws none); ``worst`` is
    its floor."""

    name: str
    fn: Callable[[_Run], float] = field(repr=False)
    needs: frozenset[str]
    batch_size: int | None
    worst: float
    multi_batch: bool = False
    repeats: int = 0

    @property
    def doc(self) -> str:
        """The reference, deviations and conventions (the function's docstring)."""
        return self.fn.__doc__ or ""


_PROXIES: dict[str, Proxy] = {}
#: Name → ``Proxy`` of every proxy that scores one network (``vote`` is not one).
REGISTRY: Mapping[str, Proxy] = MappingProxyType(_PROXIES)


def proxy(name: str, *, needs: Sequence[str] = (), batch_size: int | None = 64,
           worst: float = FLOOR, multi_batch: bool = False, repeats: int = 0
           ) -> Callable[[Callable[[_Run], float]], Callable[[_Run], float]]:
    def deco(fn: Callable[[_Run], float]) -> Callable[[_Run], float]:
        if name in _PROXIES:
            raise ValueError(f"zero-cost proxy {name!r} is registered already")
        _PROXIES[name] = Proxy(name, fn, frozenset(needs), batch_size, worst, multi_batch,
                               repeats)
        return fn

    return deco


_VOTE_ERROR = (
    "vote ranks a population of architectures, not one network: score its members "
    "(e.g. {members}) for each architecture and combine them with proxies.vote(rows), or "
    "use the zero_cost objective with proxy='vote'"
)


def get(name: str) -> Proxy:
    """The registered proxy ``name``; an unknown name is a ``ValueError`` listing the known."""
    if name == "vote":
        raise ValueError(_VOTE_ERROR.format(members=", ".join(VOTE_DEFAULT)))
    try:
        return _PROXIES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown zero-cost proxy {name!r}; known: {', '.join([*_PROXIES, 'vote'])}"
        ) from None


class Scores(dict):
    """``{name: float}`` as ``score`` returns it; ``worst`` holds the names of the proxies
    that could not rank this network and were given their floor."""

    def __init__(self, values: Mapping[str, float] = (), worst: Sequence[str] = ()) -> None:
        super().__init__(values)
        self.worst: frozenset[str] = frozenset(worst)



#: The order proxies are listed in (the README's table, error messages): the gradient and
#: activation families as zero-cost-nas and NASLib list them, the size baselines last.
ORDER = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov", "nwot", "zen", "zico",
         "epe_nas", "l2_norm", "plain", "swap", "params", "flops")


def in_order() -> None:
    """Put the registered proxies in ``ORDER`` (others after, as registered)."""
    for name in sorted(_PROXIES, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER)):
        _PROXIES[name] = _PROXIES.pop(name)


def names() -> list[str]:
    """The registered proxies that score one network."""
    return list(_PROXIES)
