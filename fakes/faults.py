"""What every HTTP fake's faults share: what a fault does to a request, when it applies, and how
a control-API request becomes one.

A fake's own module (``wasender_faults``, ``gemini_faults``) says which faults it has and what
each one does; this one says how they are carried out and selected: by count (``times``), by
share of calls (``ratio``, from the fake's seeded RNG), within a time window (``duration``), and
for the Wasender fake by recipient (``only_to``).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

# --- what a fault does ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delay:
    """Wait, then carry on with normal handling (or the next fault)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer with this status and JSON body instead of handling the request."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Drop:
    """Close the TCP connection without any HTTP response."""


@dataclass(frozen=True, slots=True)
class Hold:
    """Never answer: keep the request open until the client leaves or the server stops."""

    seconds: float


class FaultBase:
    """Base of a fake's fault kinds: ``name`` is its key in the control API, and a frozen
    dataclass subclass reports its settings through ``params``."""

    __slots__ = ()
    name: ClassVar[str]

    def params(self) -> dict[str, Any]:
        """The fault's settings, JSON-ready (a nested dataclass, like a latency, as a dict)."""
        if not dataclasses.is_dataclass(self):
            return {}
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(cast(Any, self))}


def _plain(value: Any) -> Any:
    is_record = dataclasses.is_dataclass(value) and not isinstance(value, type)
    return dataclasses.asdict(cast(Any, value)) if is_record else value


# --- when it applies --------------------------------------------------------------------------


class NamedFault(Protocol):
    """What a rule needs of a fault: its control-API name and its settings."""

    @property
    def name(self) -> str: ...

    def params(self) -> dict[str, Any]: ...


F = TypeVar("F", bound=NamedFault)


@dataclass(eq=False)
class FaultRule(Generic[F]):
    """When a fault applies: all the selectors that are set must agree.

    ``times`` counts down only when the rule fires, ``until`` is on the server's clock, and
    ``ratio`` draws from the server's seeded RNG so a run can be repeated exactly.
    """

    fault: F
    times: int | None = None
    ratio: float | None = None
    until: float | None = None
    only_to: str | None = None  # a recipient's digits (Wasender)
    applied: int = field(default=0)

    def fires(self, now: float, rng: random.Random, to: str | None = None) -> bool:
        """Decide for one request (to recipient ``to``), and count it if the rule fires."""
        if self.spent or (self.until is not None and now >= self.until):
            return False
        if self.only_to is not None and self.only_to != to:
            return False
        if self.ratio is not None and rng.random() >= self.ratio:
            return False
        self.applied += 1
        return True

    @property
    def spent(self) -> bool:
        """True once ``times`` is used up; spent rules can be forgotten."""
        return self.times is not None and self.applied >= self.times

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for the control API."""
        summary = {
            "fault": self.fault.name,
            "params": self.fault.params(),
            "times": self.times,
            "ratio": self.ratio,
            "until": self.until,
            "applied": self.applied,
        }
        return summary | ({"only_to": self.only_to} if self.only_to is not None else {})


def make_rule(
    fault: F,
    *,
    now: float,
    times: int | None = None,
    ratio: float | None = None,
    duration: float | None = None,
    only_to: str | None = None,
) -> FaultRule[F]:
    """Validate the selectors and build a rule; with none set the fault hits every call."""
    if times is not None and times < 1:
        raise ValueError("times must be >= 1")
    if ratio is not None and not 0.0 <= ratio <= 1.0:
        raise ValueError("ratio must be between 0 and 1")
    if duration is not None and duration <= 0:
        raise ValueError("duration must be > 0 seconds")
    until = None if duration is None else now + duration
    return FaultRule(fault=fault, times=times, ratio=ratio, until=until, only_to=only_to)


# --- from the control API ---------------------------------------------------------------------

SELECTORS: dict[str, type] = {"times": int, "ratio": float, "duration": float}


class ControlInputError(ValueError):
    """Bad control request; answered as 400 with the message."""


Catalogue = Mapping[str, tuple[Callable[..., Any], Mapping[str, type]]]


def parse_fault_request(
    body: Any, catalogue: Catalogue, selectors: Mapping[str, type] = SELECTORS
) -> tuple[Any, dict[str, Any]]:
    """A POST /_control/faults body as a fault (built from ``catalogue``: name -> its builder
    and its parameters with their JSON types) and the selectors for ``inject()``."""
    if not isinstance(body, dict):
        raise ControlInputError("body must be a JSON object with a 'fault' field")
    name = str(body.get("fault"))
    if name not in catalogue:
        raise ControlInputError(
            f"unknown fault {body.get('fault')!r}; known: {', '.join(sorted(catalogue))}"
        )
    build, params = catalogue[name]
    unknown = set(body) - {"fault"} - set(params) - set(selectors)
    if unknown:
        raise ControlInputError(f"unknown field(s) for {name}: {', '.join(sorted(unknown))}")
    kwargs = {k: typed(k, body[k], t) for k, t in params.items() if k in body}
    chosen = {k: typed(k, body[k], t) for k, t in selectors.items() if k in body}
    try:
        return build(**kwargs), chosen
    except (TypeError, ValueError) as exc:
        raise ControlInputError(f"bad {name} fault: {exc}") from exc


def typed(key: str, value: Any, expected: type) -> Any:
    """``value`` as ``expected`` (an int is a float too); a bool is never a number here."""
    if expected is bool:
        ok = isinstance(value, bool)
    else:
        ok = not isinstance(value, bool) and (
            isinstance(value, expected) or (expected is float and isinstance(value, int))
        )
    if not ok:
        raise ControlInputError(f"field {key!r} must be a {expected.__name__}, got {value!r}")
    return float(value) if expected is float else value
