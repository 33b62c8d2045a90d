"""Faults FakeGemini can inject, and the rules that decide which request gets one.

Two kinds, by where they strike. A `TransportFault` stands for the network and Google's front
end: it acts before the key and the request are checked, and describes an `FaultEffect` the server
carries out (an error status, a hang, a cut connection, a broken body). An `AnswerFault` stands
for the model misbehaving on a valid request: it rewrites the answer the scripted policy chose
(no candidates, a SAFETY stop, a call to a tool that does not exist). Both are frozen values, so
they are easy to build from the control API and to compare in tests; matching rules stack in
injection order (a latency delays, then an error may still answer).
"""

from __future__ import annotations

import dataclasses
import json
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from agent_service.agent.options import Latency
from agent_service.agent.scripted_policy import ToolCall, faulty
from fakes.faults import Delay, Drop, FaultBase, Hold, Respond
from fakes.gemini_api import ApiError, candidate, rate_limited, safety_ratings, step_part

FINISH_REASONS = ("SAFETY", "MAX_TOKENS", "RECITATION")
ERROR_CODES = (400, 403, 404, 500, 503, 504)
# What the wrong-argument-types fault sends for a parameter of each declared type.
_WRONG_VALUES: dict[str, Any] = {
    "string": 12345,
    "integer": "twelve",
    "number": "a lot",
    "boolean": "yes",
    "array": {"not": "a list"},
    "object": "not an object",
}


@dataclass(frozen=True, slots=True)
class Cut:
    """Send status 200, headers announcing `length` bytes, then only `head`, then close."""

    head: bytes
    length: int


@dataclass(frozen=True, slots=True)
class Raw:
    """Answer with these exact bytes as an application/json body."""

    status: int
    body: bytes


FaultEffect = Delay | Respond | Hold | Drop | Cut | Raw


@dataclass(frozen=True, slots=True)
class AnswerContext:
    """What an answer fault rewrites: the policy's step and the tools the request offered."""

    step: ToolCall | str
    declarations: dict[str, dict[str, str]]


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer fault's result: candidates (None leaves the field out) and prompt feedback."""

    candidates: list[dict[str, Any]] | None
    prompt_feedback: dict[str, Any] | None = None


class Fault(FaultBase, ABC):
    """A fault kind of the Gemini fake."""

    __slots__ = ()


class TransportFault(Fault):
    """Strikes before the request is checked, as the network or Google's front end would."""

    __slots__ = ()

    @abstractmethod
    def outcome(self, rng: random.Random) -> FaultEffect:
        """What the server should do for a request this fault hits."""


class AnswerFault(Fault):
    """Rewrites the answer to a valid request, as a misbehaving model would."""

    __slots__ = ()

    @abstractmethod
    def answer(self, context: AnswerContext) -> Answer:
        """The candidates (and prompt feedback) to answer with instead."""


@dataclass(frozen=True, slots=True)
class SlowResponse(TransportFault):
    """Delay each hit request by a draw from `latency`, then answer normally."""

    latency: Latency
    name: ClassVar[str] = "latency"

    def outcome(self, rng: random.Random) -> FaultEffect:
        return Delay(self.latency.sample(rng))


@dataclass(frozen=True, slots=True)
class ErrorResponse(TransportFault):
    """An error status in Google's shape: 400, 403, 404, 500, 503 or 504."""

    code: int = 503
    message: str | None = None
    name: ClassVar[str] = "error"

    def __post_init__(self) -> None:
        if self.code not in ERROR_CODES:
            raise ValueError(f"error code must be one of {ERROR_CODES} (429: rate_limited)")

    def outcome(self, rng: random.Random) -> FaultEffect:
        return Respond(self.code, ApiError(self.code, self.message).body())


@dataclass(frozen=True, slots=True)
class RateLimited(TransportFault):
    """429 RESOURCE_EXHAUSTED with a google.rpc.RetryInfo `retryDelay`."""

    retry_delay: float = 2.0
    name: ClassVar[str] = "rate_limited"

    def __post_init__(self) -> None:
        if self.retry_delay < 0:
            raise ValueError("retry_delay must be >= 0")

    def outcome(self, rng: random.Random) -> FaultEffect:
        return Respond(429, rate_limited(self.retry_delay).body())


@dataclass(frozen=True, slots=True)
class Hang(TransportFault):
    """No answer at all; `seconds` only bounds how long a forgotten request is held."""

    seconds: float = 3600.0
    name: ClassVar[str] = "hang"

    def outcome(self, rng: random.Random) -> FaultEffect:
        return Hold(self.seconds)


@dataclass(frozen=True, slots=True)
class DropConnection(TransportFault):
    """The connection closes before any response."""

    name: ClassVar[str] = "drop_connection"

    def outcome(self, rng: random.Random) -> FaultEffect:
        return Drop()


@dataclass(frozen=True, slots=True)
class DropMidResponse(TransportFault):
    """Status and headers arrive, then `sent_bytes` of the body, then the connection closes."""

    sent_bytes: int = 48
    name: ClassVar[str] = "drop_mid_response"

    def outcome(self, rng: random.Random) -> FaultEffect:
        part = {"text": "This answer is cut off in the middle of a sentence, because the"}
        body = json.dumps({"candidates": [candidate([part])]}, indent=2).encode()
        sent = max(1, min(self.sent_bytes, len(body) - 1))
        return Cut(body[:sent], len(body))


@dataclass(frozen=True, slots=True)
class MalformedJson(TransportFault):
    """A 200 whose body is not valid JSON."""

    name: ClassVar[str] = "malformed_json"

    def outcome(self, rng: random.Random) -> FaultEffect:
        return Raw(200, b'{"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel')


@dataclass(frozen=True, slots=True)
class EmptyCandidates(AnswerFault):
    """A 200 with `candidates: []` and no prompt feedback."""

    name: ClassVar[str] = "empty_candidates"

    def answer(self, context: AnswerContext) -> Answer:
        return Answer([])


@dataclass(frozen=True, slots=True)
class FinishEarly(AnswerFault):
    """The model stops for `reason`; with `keep_text`, half of the text it meant to say."""

    reason: str = "SAFETY"
    keep_text: bool = False
    name: ClassVar[str] = "finish_reason"

    def __post_init__(self) -> None:
        if self.reason not in FINISH_REASONS:
            raise ValueError(f"finish reason must be one of {FINISH_REASONS}")

    def answer(self, context: AnswerContext) -> Answer:
        text = context.step if isinstance(context.step, str) else ""
        half = text[: len(text) // 2]
        parts = [{"text": half}] if self.keep_text and half else None
        extra: dict[str, Any] = {}
        if self.reason == "SAFETY":
            extra["safetyRatings"] = safety_ratings(blocked="HARM_CATEGORY_HARASSMENT")
        return Answer([candidate(parts, self.reason, **extra)])


@dataclass(frozen=True, slots=True)
class PromptBlocked(AnswerFault):
    """The prompt itself is blocked: `promptFeedback.blockReason` and no candidates."""

    reason: str = "SAFETY"
    name: ClassVar[str] = "prompt_blocked"

    def __post_init__(self) -> None:
        if self.reason not in ("SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT"):
            raise ValueError("block reason must be SAFETY, OTHER, BLOCKLIST or PROHIBITED_CONTENT")

    def answer(self, context: AnswerContext) -> Answer:
        feedback = {"blockReason": self.reason, "safetyRatings": safety_ratings()}
        return Answer(None, feedback)


@dataclass(frozen=True, slots=True)
class UnknownTool(AnswerFault):
    """The model calls a tool nobody declared (the policy's call, renamed)."""

    name: ClassVar[str] = "unknown_tool"

    def answer(self, context: AnswerContext) -> Answer:
        call = faulty(context.step if isinstance(context.step, ToolCall) else None)
        return Answer([candidate([step_part(call)])])


@dataclass(frozen=True, slots=True)
class WrongArgumentTypes(AnswerFault):
    """The model calls a declared tool with every argument of the wrong JSON type."""

    name: ClassVar[str] = "wrong_argument_types"

    def answer(self, context: AnswerContext) -> Answer:
        step = context.step
        tool = step.name if isinstance(step, ToolCall) else min(context.declarations, default="")
        declared = context.declarations.get(tool, {})
        args = {p: _WRONG_VALUES.get(kind) for p, kind in declared.items()}
        call = ToolCall(tool or "search_faq", args or {"unexpected": 1})
        return Answer([candidate([step_part(call)])])


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if isinstance(value, Latency) else value
