"""Every way processing a request can fail, classified in one place.

The pipeline asks ``classify`` what an exception means, and ``outcome_for`` what to do with
the message; nothing else decides an ack, a retry or an error reply (DESIGN.md section 5).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

from agent_service.contract.codec import ContractError


class FailureKind(StrEnum):
    INVALID_MESSAGE = "invalid_message"  # not JSON, fails the schema, oversized
    TRANSIENT = "transient"  # model 5xx or timeout, retryable tool error
    TIMEOUT = "timeout"  # processing took longer than MAX_PROCESSING_TIME
    PERMANENT = "permanent"  # will fail the same way every time


class Outcome(StrEnum):
    DEAD_LETTER = "dead_letter"  # reject without requeue: the broker routes it to dlx_agent
    RETRY = "retry"  # republish to the next wait queue, then ack
    ERROR_REPLY = "error_reply"  # publish status: error to wb_queue, then ack


class AgentError(Exception):
    """Base of the errors the agent layer raises on purpose. ``code`` goes into error.code."""

    code = "AGENT_ERROR"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class TransientAgentError(AgentError):
    """Worth retrying later: the model is overloaded or unreachable, a tool's backend is down."""

    code = "MODEL_UNAVAILABLE"
    retryable = True


class PermanentAgentError(AgentError):
    """Retrying cannot help: the model refused the request, a tool was misused."""

    code = "AGENT_FAILED"


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    code: str
    message: str

    @property
    def retryable(self) -> bool:
        return self.kind in (FailureKind.TRANSIENT, FailureKind.TIMEOUT)


def classify(exc: BaseException) -> Failure:
    """What an exception raised while processing a request means."""
    if isinstance(exc, ContractError):
        return Failure(FailureKind.INVALID_MESSAGE, "INVALID_MESSAGE", str(exc))
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return Failure(FailureKind.TIMEOUT, "PROCESSING_TIMEOUT", "processing took too long")
    if isinstance(exc, AgentError):
        kind = FailureKind.TRANSIENT if exc.retryable else FailureKind.PERMANENT
        return Failure(kind, exc.code, str(exc))
    genai = _classify_genai(exc)
    if genai is not None:
        return genai
    if isinstance(exc, (ConnectionError, OSError)):
        return Failure(
            FailureKind.TRANSIENT, "UPSTREAM_UNAVAILABLE", str(exc) or type(exc).__name__
        )
    return Failure(FailureKind.PERMANENT, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")


def _classify_genai(exc: BaseException) -> Failure | None:
    # Gemini's API errors carry an HTTP code: 429 and 5xx pass, other 4xx do not.
    try:
        from google.genai import errors as genai_errors
    except ImportError:  # pragma: no cover - google-genai ships with google-adk
        return None
    if not isinstance(exc, genai_errors.APIError):
        return None
    code = int(getattr(exc, "code", 0) or 0)
    if code == 429 or code >= 500:
        return Failure(FailureKind.TRANSIENT, "MODEL_UNAVAILABLE", f"model API answered {code}")
    return Failure(FailureKind.PERMANENT, "MODEL_REJECTED", f"model API answered {code}")


def outcome_for(failure: Failure, retry_count: int, max_retries: int) -> Outcome:
    """The failure table, agent side: one outcome for each failure kind."""
    if failure.kind is FailureKind.INVALID_MESSAGE:
        return Outcome.DEAD_LETTER
    if failure.retryable and retry_count < max_retries:
        return Outcome.RETRY
    return Outcome.ERROR_REPLY
