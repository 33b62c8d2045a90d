"""Faults FakeWasender can inject, and the rules that decide which request gets one.

A fault only describes what should happen (an `FaultEffect`); the server carries it out. That keeps
each fault a small frozen value that is easy to build from the control API and to compare in
tests. Several matching rules stack in injection order: a `SlowResponse` delays, then the next rule
may still answer with an error.
"""

from __future__ import annotations

import dataclasses
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

from fakes.phones import to_digits

INVALID_NUMBER_STATUS = 422
"""Status for "number not on WhatsApp". The API is Laravel-style and reports every input
problem as a validation failure (422), so a rejected recipient most likely looks the same."""

INVALID_NUMBER_MESSAGE = "The phone number is not registered on WhatsApp"


def invalid_number_body() -> dict[str, Any]:
    """The answer body for a recipient that is not on WhatsApp."""
    return {
        "success": False,
        "message": INVALID_NUMBER_MESSAGE,
        "errors": {"to": [INVALID_NUMBER_MESSAGE + "."]},
    }


@dataclass(frozen=True, slots=True)
class Delay:
    """Wait, then carry on with normal handling (or the next fault)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer with this status and JSON body instead of handling the send."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Drop:
    """Close the TCP connection without any HTTP response."""


@dataclass(frozen=True, slots=True)
class Hold:
    """Never answer: keep the request open until the client leaves or the server stops."""

    seconds: float


FaultEffect = Delay | Respond | Drop | Hold


class Fault(ABC):
    """A fault kind. `name` is its key in the HTTP control API."""

    __slots__ = ()
    name: ClassVar[str]

    @abstractmethod
    def outcome(self) -> FaultEffect:
        """What the server should do for a request this fault hits."""

    def params(self) -> dict[str, Any]:
        """The fault's settings, for the control API (empty for a fault that is no dataclass)."""
        if not dataclasses.is_dataclass(self):
            return {}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(cast(Any, self))}


@dataclass(frozen=True, slots=True)
class SlowResponse(Fault):
    """Slow answers: delay by `seconds`, then answer normally."""

    seconds: float
    name: ClassVar[str] = "latency"

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ValueError("latency seconds must be >= 0")

    def outcome(self) -> FaultEffect:
        return Delay(self.seconds)


@dataclass(frozen=True, slots=True)
class ServerError(Fault):
    """An upstream failure: 500, 502 or 503 with a JSON error body."""

    status: int = 500
    name: ClassVar[str] = "server_error"

    def __post_init__(self) -> None:
        if self.status not in (500, 502, 503, 504):
            raise ValueError("server_error status must be 500, 502, 503 or 504")

    def outcome(self) -> FaultEffect:
        return Respond(self.status, {"success": False, "message": "Server Error"})


@dataclass(frozen=True, slots=True)
class RateLimited(Fault):
    """A 429 as the real API sends it: the wait is in the body, there is no Retry-After."""

    retry_after: int = 1
    name: ClassVar[str] = "rate_limited"

    def __post_init__(self) -> None:
        if self.retry_after < 0:
            raise ValueError("retry_after must be >= 0")

    def outcome(self) -> FaultEffect:
        return Respond(429, rate_limited_body(self.retry_after))


@dataclass(frozen=True, slots=True)
class Timeout(Fault):
    """No answer at all; `seconds` only bounds how long a forgotten request is held."""

    seconds: float = 3600.0
    name: ClassVar[str] = "timeout"

    def outcome(self) -> FaultEffect:
        return Hold(self.seconds)


@dataclass(frozen=True, slots=True)
class DropConnection(Fault):
    """The connection closes before any response (client sees a disconnect)."""

    name: ClassVar[str] = "drop_connection"

    def outcome(self) -> FaultEffect:
        return Drop()


@dataclass(frozen=True, slots=True)
class InvalidNumber(Fault):
    """The recipient is not on WhatsApp (422, see INVALID_NUMBER_STATUS)."""

    name: ClassVar[str] = "invalid_number"

    def outcome(self) -> FaultEffect:
        return Respond(INVALID_NUMBER_STATUS, invalid_number_body())


@dataclass(frozen=True, slots=True)
class SoftFailure(Fault):
    """A 2xx whose body says `success: false`, which clients must treat as an error."""

    status: int = 200
    message: str = "Failed to send message"
    name: ClassVar[str] = "soft_failure"

    def __post_init__(self) -> None:
        if not 200 <= self.status <= 299:
            raise ValueError("soft_failure status must be a 2xx")

    def outcome(self) -> FaultEffect:
        return Respond(self.status, {"success": False, "message": self.message})


def rate_limited_body(retry_after: int) -> dict[str, Any]:
    """The body of a 429."""
    return {"success": False, "message": "Too many requests", "retry_after": retry_after}


@dataclass(eq=False)
class FaultRule:
    """When a fault applies: all the selectors that are set must agree.

    `times` counts down only when the rule fires, `until` is on the server's clock, and
    `ratio` draws from the server's seeded RNG so a run can be repeated exactly.
    """

    fault: Fault
    times: int | None = None
    ratio: float | None = None
    until: float | None = None
    only_to: str | None = None  # digits
    applied: int = field(default=0)

    def fires(self, to_digits_: str | None, now: float, rng: random.Random) -> bool:
        """Decide for one request, and count it if the rule fires."""
        if self.times is not None and self.applied >= self.times:
            return False
        if self.until is not None and now >= self.until:
            return False
        if self.only_to is not None and self.only_to != to_digits_:
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
            "only_to": self.only_to,
            "applied": self.applied,
        }


def make_rule(
    fault: Fault,
    *,
    now: float,
    times: int | None = None,
    ratio: float | None = None,
    duration: float | None = None,
    only_to: str | None = None,
) -> FaultRule:
    """Validate the selectors and build a rule; with none set the fault hits every call."""
    if times is not None and times < 1:
        raise ValueError("times must be >= 1")
    if ratio is not None and not 0.0 <= ratio <= 1.0:
        raise ValueError("ratio must be between 0 and 1")
    if duration is not None and duration <= 0:
        raise ValueError("duration must be > 0 seconds")
    return FaultRule(
        fault=fault,
        times=times,
        ratio=ratio,
        until=None if duration is None else now + duration,
        only_to=None if only_to is None else to_digits(only_to),
    )
