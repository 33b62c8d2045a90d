"""The errors the agent layer raises on purpose, and every ``error.code`` a reply can carry.

Tools and models raise these; ``pipeline.failures.classify`` turns any exception into a
failure with one of the codes below, and the failure table decides what happens next.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every value of a wb_queue reply's ``error.code``, and of a dead letter's reason header."""

    INVALID_MESSAGE = "INVALID_MESSAGE"
    """The request is not JSON, breaks the schema or is oversized (dead-lettered)."""
    MAX_DELIVERIES = "MAX_DELIVERIES"
    """The request was delivered MAX_DELIVERIES times without being settled (dead-lettered)."""
    PROCESSING_TIMEOUT = "PROCESSING_TIMEOUT"
    """The agent took longer than MAX_PROCESSING_TIME on every try."""
    MODEL_UNAVAILABLE = "MODEL_UNAVAILABLE"
    """The model was overloaded or unreachable on every try (429, 5xx, connection errors)."""
    MODEL_REJECTED = "MODEL_REJECTED"
    """The model refused the request (a 4xx other than 429)."""
    EMPTY_ANSWER = "EMPTY_ANSWER"
    """The model returned no answer text (nothing at all, or cut by its token limit)."""
    MODEL_BLOCKED = "MODEL_BLOCKED"
    """The model refused to answer: a safety or recitation stop, or a blocked prompt."""
    TOOL_UNAVAILABLE = "TOOL_UNAVAILABLE"
    """A tool's backend (the business database) was down on every try."""
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    """Another network dependency failed on every try."""
    AGENT_FAILED = "AGENT_FAILED"
    """The agent failed in a way retrying cannot mend."""
    INTERNAL_ERROR = "INTERNAL_ERROR"
    """An unexpected error inside the service."""


class AgentError(Exception):
    """Base of the errors the agent layer raises on purpose. ``code`` goes into error.code."""

    code: str = ErrorCode.AGENT_FAILED
    retryable = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class TransientAgentError(AgentError):
    """Worth retrying later: the model is overloaded or unreachable, a tool's backend is down."""

    code = ErrorCode.MODEL_UNAVAILABLE
    retryable = True


class PermanentAgentError(AgentError):
    """Retrying cannot help: the model refused the request, a tool was misused."""

    code = ErrorCode.AGENT_FAILED
