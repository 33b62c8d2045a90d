"""When an injected fault applies: by count, by share of calls, or within a time window.

Independent of what the fault does, so any fake can keep its faults in `FaultRule`s. FakeGemini
uses it; FakeWasender has its own copy with a per-recipient selector (fakes.wasender_faults).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar


class NamedFault(Protocol):
    """What a rule needs of a fault: its control-API name and its settings."""

    @property
    def name(self) -> str: ...

    def params(self) -> dict[str, Any]: ...


F = TypeVar("F", bound=NamedFault)


@dataclass(eq=False)
class FaultRule(Generic[F]):
    """When a fault applies: all the selectors that are set must agree.

    `times` counts down only when the rule fires, `until` is on the server's clock, and
    `ratio` draws from the server's seeded RNG so a run can be repeated exactly.
    """

    fault: F
    times: int | None = None
    ratio: float | None = None
    until: float | None = None
    applied: int = field(default=0)

    def fires(self, now: float, rng: random.Random) -> bool:
        """Decide for one request, and count it if the rule fires."""
        if self.spent or (self.until is not None and now >= self.until):
            return False
        if self.ratio is not None and rng.random() >= self.ratio:
            return False
        self.applied += 1
        return True

    @property
    def spent(self) -> bool:
        """True once `times` is used up; spent rules can be forgotten."""
        return self.times is not None and self.applied >= self.times

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for the control API."""
        return {
            "fault": self.fault.name,
            "params": self.fault.params(),
            "times": self.times,
            "ratio": self.ratio,
            "until": self.until,
            "applied": self.applied,
        }


def make_rule(
    fault: F,
    *,
    now: float,
    times: int | None = None,
    ratio: float | None = None,
    duration: float | None = None,
) -> FaultRule[F]:
    """Validate the selectors and build a rule; with none set the fault hits every call."""
    if times is not None and times < 1:
        raise ValueError("times must be >= 1")
    if ratio is not None and not 0.0 <= ratio <= 1.0:
        raise ValueError("ratio must be between 0 and 1")
    if duration is not None and duration <= 0:
        raise ValueError("duration must be > 0 seconds")
    until = None if duration is None else now + duration
    return FaultRule(fault=fault, times=times, ratio=ratio, until=until)
