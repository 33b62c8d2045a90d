"""Faults FakeWasender can inject (the rules that pick a request are fakes.faults.FaultRule).

A fault only describes what should happen (an `FaultEffect`); the server carries it out. That keeps
each fault a small frozen value that is easy to build from the control API and to compare in
tests. Several matching rules stack in injection order: a `SlowResponse` delays, then the next rule
may still answer with an error.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from fakes.faults import Delay, Drop, FaultBase, Hold, Respond

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


FaultEffect = Delay | Respond | Drop | Hold


class Fault(FaultBase, ABC):
    """A fault kind of the Wasender fake."""

    __slots__ = ()

    @abstractmethod
    def outcome(self) -> FaultEffect:
        """What the server should do for a request this fault hits."""


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
