"""The failure table, agent side (DESIGN.md section 5): what an error means, and what follows.

``classify`` says what an exception raised while answering a request means; ``action_for``
says what to do with the request. Both are pure; the handler only carries their answer out.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from enum import StrEnum

from agent_service.contract.codec import ContractError
from agent_service.errors import AgentError, ErrorCode


class FailureKind(StrEnum):
    INVALID_MESSAGE = "invalid_message"  # not JSON, fails the schema, oversized
    TRANSIENT = "transient"  # model 5xx, 429 or unreachable, retryable tool error
    TIMEOUT = "timeout"  # processing took longer than MAX_PROCESSING_TIME
    PERMANENT = "permanent"  # will fail the same way every time


class FailureAction(StrEnum):
    DEAD_LETTER = "dead_letter"  # to dlx_agent with the reason; Node sends the fallback
    RETRY = "retry"  # republish to the next wait queue, then ack
    ERROR_REPLY = "error_reply"  # publish status: error to wb_queue, then ack


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
        return Failure(FailureKind.INVALID_MESSAGE, ErrorCode.INVALID_MESSAGE, str(exc))
    if isinstance(exc, AgentError):
        kind = FailureKind.TRANSIENT if exc.retryable else FailureKind.PERMANENT
        return Failure(kind, exc.code, str(exc))
    # Before the TimeoutError test: aiohttp's socket timeouts are TimeoutErrors too, and
    # they mean the model's link failed, not that the agent ran out of time.
    link = _classify_model_link(exc)
    if link is not None:
        return link
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return Failure(
            FailureKind.TIMEOUT, ErrorCode.PROCESSING_TIMEOUT, "processing took too long"
        )
    genai = _classify_genai(exc)
    if genai is not None:
        return genai
    if isinstance(exc, ConnectionError | OSError):
        detail = str(exc) or type(exc).__name__
        return Failure(FailureKind.TRANSIENT, ErrorCode.UPSTREAM_UNAVAILABLE, detail)
    return Failure(FailureKind.PERMANENT, ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")


def _transient_link_errors() -> tuple[type[BaseException], ...]:
    # google-genai talks HTTP through aiohttp when it is installed, httpx otherwise: a dropped
    # connection, a truncated body or a read timeout on either is worth a retry (found in a
    # review: these gave the user the fallback at once).
    found: list[type[BaseException]] = []
    try:
        import aiohttp

        found += [aiohttp.ClientConnectionError, aiohttp.ClientPayloadError]
    except ImportError:  # pragma: no cover - aiohttp is a dependency of the service
        pass
    try:
        import httpx

        found += [httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError]
    except ImportError:  # pragma: no cover - httpx ships with google-genai
        pass
    return tuple(found)


_LINK_ERRORS = _transient_link_errors()


def _classify_model_link(exc: BaseException) -> Failure | None:
    if isinstance(exc, json.JSONDecodeError):
        # Nothing in the pipeline parses JSON while the agent runs but google-genai reading
        # the model's answer: a 200 with a cut or garbled body (the fake Gemini's
        # malformed_json fault). Worth another try, like a dropped connection.
        detail = f"the model's answer was not JSON: {exc.msg}"
        return Failure(FailureKind.TRANSIENT, ErrorCode.MODEL_UNAVAILABLE, detail)
    if not isinstance(exc, _LINK_ERRORS):
        return None
    detail = f"model connection failed: {type(exc).__name__}: {exc}".rstrip(": ")
    return Failure(FailureKind.TRANSIENT, ErrorCode.MODEL_UNAVAILABLE, detail)


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
        message = f"model API answered {code}"
        return Failure(FailureKind.TRANSIENT, ErrorCode.MODEL_UNAVAILABLE, message)
    return Failure(FailureKind.PERMANENT, ErrorCode.MODEL_REJECTED, f"model API answered {code}")


def action_for(failure: Failure, retry_count: int, max_retries: int) -> FailureAction:
    """One action for each failure kind, given the retries the request already used."""
    if failure.kind is FailureKind.INVALID_MESSAGE:
        return FailureAction.DEAD_LETTER
    if failure.retryable and retry_count < max_retries:
        return FailureAction.RETRY
    return FailureAction.ERROR_REPLY
