"""The failure table's two pure functions: what each error the service can meet means, and what
is done with the request."""

from __future__ import annotations

import json

import aiohttp
import httpx
import pytest
from google.genai import errors as genai_errors

from agent_service.contract.codec import ContractError, FieldProblem
from agent_service.errors import AgentError, ErrorCode, PermanentAgentError, TransientAgentError
from agent_service.pipeline.failures import (
    Failure,
    FailureAction,
    FailureKind,
    action_for,
    classify,
)

pytestmark = pytest.mark.unit

_REQUEST = httpx.Request("POST", "http://127.0.0.1/v1beta/models/m:generateContent")


def _genai(code: int) -> genai_errors.APIError:
    body = {"error": {"code": code, "message": "x", "status": "S"}}
    kind = genai_errors.ServerError if code >= 500 else genai_errors.ClientError
    return kind(code, body)


TRANSIENT_MODEL_LINK = [
    aiohttp.ServerDisconnectedError(),
    aiohttp.ClientPayloadError("response payload is not completed"),
    aiohttp.ClientOSError(104, "Connection reset by peer"),
    aiohttp.ServerTimeoutError("read timed out"),
    httpx.ConnectError("refused", request=_REQUEST),
    httpx.ReadTimeout("timed out", request=_REQUEST),
    httpx.RemoteProtocolError("peer closed connection", request=_REQUEST),
    httpx.WriteError("broken pipe", request=_REQUEST),
    json.JSONDecodeError("Expecting value", "<html>", 0),
]


@pytest.mark.parametrize("exc", TRANSIENT_MODEL_LINK, ids=lambda e: type(e).__name__)
def test_a_failed_link_to_the_model_is_transient(exc: BaseException) -> None:
    failure = classify(exc)
    assert (failure.kind, failure.code) == (FailureKind.TRANSIENT, ErrorCode.MODEL_UNAVAILABLE)
    assert type(exc).__name__ in failure.message or "not JSON" in failure.message


@pytest.mark.parametrize(
    ("code", "kind", "error_code"),
    [
        (429, FailureKind.TRANSIENT, ErrorCode.MODEL_UNAVAILABLE),
        (500, FailureKind.TRANSIENT, ErrorCode.MODEL_UNAVAILABLE),
        (503, FailureKind.TRANSIENT, ErrorCode.MODEL_UNAVAILABLE),
        (400, FailureKind.PERMANENT, ErrorCode.MODEL_REJECTED),
        (403, FailureKind.PERMANENT, ErrorCode.MODEL_REJECTED),
        (404, FailureKind.PERMANENT, ErrorCode.MODEL_REJECTED),
    ],
)
def test_gemini_api_errors_by_status(code: int, kind: FailureKind, error_code: str) -> None:
    failure = classify(_genai(code))
    assert (failure.kind, failure.code) == (kind, error_code)
    assert str(code) in failure.message


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (TimeoutError(), FailureKind.TIMEOUT, ErrorCode.PROCESSING_TIMEOUT),
        (TimeoutError(), FailureKind.TIMEOUT, ErrorCode.PROCESSING_TIMEOUT),
        (TransientAgentError("busy"), FailureKind.TRANSIENT, ErrorCode.MODEL_UNAVAILABLE),
        (
            TransientAgentError("db down", code="TOOL_UNAVAILABLE"),
            FailureKind.TRANSIENT,
            "TOOL_UNAVAILABLE",
        ),
        (PermanentAgentError("no"), FailureKind.PERMANENT, ErrorCode.AGENT_FAILED),
        (AgentError("base"), FailureKind.PERMANENT, ErrorCode.AGENT_FAILED),
        (ConnectionRefusedError("refused"), FailureKind.TRANSIENT, "UPSTREAM_UNAVAILABLE"),
        (OSError("no route"), FailureKind.TRANSIENT, ErrorCode.UPSTREAM_UNAVAILABLE),
        (ConnectionResetError(), FailureKind.TRANSIENT, ErrorCode.UPSTREAM_UNAVAILABLE),
        (ValueError("bug"), FailureKind.PERMANENT, ErrorCode.INTERNAL_ERROR),
        (KeyError("k"), FailureKind.PERMANENT, ErrorCode.INTERNAL_ERROR),
        (
            ContractError("ag_queue request", [FieldProblem("messageId", "missing")]),
            FailureKind.INVALID_MESSAGE,
            ErrorCode.INVALID_MESSAGE,
        ),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_every_other_error_class(exc: BaseException, kind: FailureKind, code: str) -> None:
    failure = classify(exc)
    assert (failure.kind, failure.code) == (kind, code)


def test_an_os_error_without_text_names_its_type() -> None:
    assert classify(ConnectionResetError()).message == "ConnectionResetError"


def test_an_internal_error_names_its_type_and_text() -> None:
    assert classify(ValueError("bad value")).message == "ValueError: bad value"


@pytest.mark.parametrize(
    ("kind", "retry_count", "max_retries", "action"),
    [
        (FailureKind.INVALID_MESSAGE, 0, 3, FailureAction.DEAD_LETTER),
        (FailureKind.INVALID_MESSAGE, 5, 3, FailureAction.DEAD_LETTER),
        (FailureKind.TRANSIENT, 0, 3, FailureAction.RETRY),
        (FailureKind.TRANSIENT, 2, 3, FailureAction.RETRY),
        (FailureKind.TRANSIENT, 3, 3, FailureAction.ERROR_REPLY),
        (FailureKind.TRANSIENT, 0, 0, FailureAction.ERROR_REPLY),
        (FailureKind.TIMEOUT, 0, 3, FailureAction.RETRY),
        (FailureKind.TIMEOUT, 3, 3, FailureAction.ERROR_REPLY),
        (FailureKind.PERMANENT, 0, 3, FailureAction.ERROR_REPLY),
    ],
)
def test_action_for_each_kind(
    kind: FailureKind, retry_count: int, max_retries: int, action: FailureAction
) -> None:
    assert action_for(Failure(kind, "CODE", "m"), retry_count, max_retries) is action


def test_only_transient_and_timeout_failures_are_retryable() -> None:
    assert {k for k in FailureKind if Failure(k, "C", "m").retryable} == {
        FailureKind.TRANSIENT,
        FailureKind.TIMEOUT,
    }


def test_the_message_of_each_failure_is_the_errors_own_words() -> None:
    contract = ContractError("ag_queue request", [FieldProblem("messageId", "missing")])
    assert classify(contract).message == str(contract)
    assert classify(TransientAgentError("model busy")).message == "model busy"
    assert classify(TimeoutError()).message == "processing took too long"


def test_a_model_link_failure_names_the_error_and_its_text_if_any() -> None:
    assert classify(aiohttp.ClientConnectionError()).message == (
        "model connection failed: ClientConnectionError"
    )
    assert classify(aiohttp.ClientConnectionError("reset")).message == (
        "model connection failed: ClientConnectionError: reset"
    )
    assert classify(aiohttp.ClientConnectionError("no BOX")).message.endswith(": no BOX")


def test_a_gemini_error_without_a_code_is_permanent() -> None:
    error = _genai(400)
    del error.code
    failure = classify(error)
    assert (failure.kind, failure.code) == (FailureKind.PERMANENT, ErrorCode.MODEL_REJECTED)
    assert failure.message == "model API answered 0"
