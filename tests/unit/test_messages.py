"""The envelopes: the spec's examples parse and round-trip; bad messages get clear errors."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from agent_service.contract import (
    AgentReply,
    AgentRequest,
    ContractError,
    ReplyStatus,
    TaskType,
    decode_reply,
    decode_request,
    epoch_seconds,
    reply_id_for,
    reply_message,
    request_message,
    to_json_bytes,
)

pytestmark = pytest.mark.unit


def _bytes(data: Any) -> bytes:
    return json.dumps(data).encode()


def test_spec_request_round_trips_unchanged_in_meaning(request_example: dict[str, Any]) -> None:
    request = decode_request(_bytes(request_example))
    assert request.taskType is TaskType.SEARCH
    assert request.contact.phoneNumber == "+256703722777"
    assert [t.role for t in request.context.conversationHistory] == ["user", "assistant"]
    assert json.loads(to_json_bytes(request)) == request_example


def test_spec_reply_round_trips_unchanged_in_meaning(reply_example: dict[str, Any]) -> None:
    reply = decode_reply(_bytes(reply_example))
    assert reply.status is ReplyStatus.SUCCESS
    assert reply.agentMetadata.toolsUsed == ["search_catalogue", "search_faq"]
    assert json.loads(to_json_bytes(reply)) == reply_example


def test_unknown_fields_are_ignored(request_example: dict[str, Any]) -> None:
    request_example["addedByNodeLater"] = {"x": 1}
    request_example["contact"]["avatar"] = "url"
    assert decode_request(_bytes(request_example)).messageId == request_example["messageId"]


def test_context_and_metadata_are_optional(request_example: dict[str, Any]) -> None:
    del request_example["context"], request_example["metadata"]
    request = decode_request(_bytes(request_example))
    assert request.context.conversationHistory == []
    assert (request.metadata.retryCount, request.metadata.maxRetries) == (0, 3)


def _mutated(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field", "reason"),
    [
        ("messageId", _DELETE, "messageId", "Field required"),
        ("contact", _DELETE, "contact", "Field required"),
        ("message.text", _DELETE, "message.text", "Field required"),
        ("timestamp", "1234567890", "timestamp", "Input should be a valid integer"),
        ("timestamp", 12.5, "timestamp", "Input should be a valid integer"),
        ("metadata.retryCount", -1, "metadata.retryCount", "greater than or equal to 0"),
        ("taskType", "poetry", "taskType", "Input should be"),
        ("metadata.priority", "whenever", "metadata.priority", "Input should be"),
        ("contact.phoneNumber", "0703722777", "contact.phoneNumber", "should match pattern"),
        ("contact.remoteJid", "john", "contact.remoteJid", "should match pattern"),
        ("messageId", "not-a-uuid", "messageId", "should match pattern"),
        ("message.text", "", "message.text", "at least 1 character"),
        ("context.conversationHistory", [{"role": "system", "content": "x"}],
         "context.conversationHistory[0].role", "Input should be"),
    ],
)  # fmt: skip
def test_bad_request_names_the_field_and_the_reason(
    request_example: dict[str, Any], path: str, value: Any, field: str, reason: str
) -> None:
    with pytest.raises(ContractError) as caught:
        decode_request(_bytes(_mutated(request_example, path, value)))
    assert [p.field for p in caught.value.problems] == [field]
    assert reason in caught.value.problems[0].reason
    assert str(caught.value).startswith(f"invalid ag_queue request message: {field}: ")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8 at byte 0"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'"text"', "expected a JSON object, got str"),
        (b"", "not JSON"),
    ],
)
def test_unreadable_bodies_are_refused_clearly(body: bytes, reason: str) -> None:
    with pytest.raises(ContractError, match=reason):
        decode_request(body)


def test_oversized_body_is_refused_before_parsing(request_example: dict[str, Any]) -> None:
    request_example["message"]["text"] = "x" * 2000
    with pytest.raises(ContractError, match=r"exceeds the 1024 limit"):
        decode_request(_bytes(request_example), max_bytes=1024)


def test_error_must_come_exactly_with_status_error(reply_example: dict[str, Any]) -> None:
    error_without_body = dict(reply_example, status="error")
    with pytest.raises(ContractError, match="error must be present exactly when status"):
        decode_reply(_bytes(error_without_body))
    body_without_status = dict(reply_example, error={"code": "X", "message": "m"})
    with pytest.raises(ContractError, match="error must be present exactly when status"):
        decode_reply(_bytes(body_without_status))
    ok = dict(reply_example, status="error", error={"code": "MODEL_UNAVAILABLE", "message": "m"})
    assert decode_reply(_bytes(ok)).error is not None


def test_timestamps_in_seconds_and_milliseconds() -> None:
    assert epoch_seconds(1_234_567_890) == 1_234_567_890.0
    assert epoch_seconds(1_764_290_000_123) == pytest.approx(1_764_290_000.123)


def test_reply_id_is_deterministic_and_distinct() -> None:
    a, b = "6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a10", "0d3b8a52-2f0e-4d8c-9a3c-1f2e3d4c5b6a"
    assert reply_id_for(a) == reply_id_for(a.upper()) != reply_id_for(b)


def test_request_amqp_properties(request_example: dict[str, Any]) -> None:
    request = AgentRequest.model_validate(request_example)
    message = request_message(request)
    assert message.content_type == "application/json"
    assert message.delivery_mode == 2
    assert message.message_id == request.messageId
    assert message.type == "search"
    assert message.timestamp is not None and message.timestamp.timestamp() == 1764583200.123
    assert decode_request(message.body) == request


def test_reply_amqp_properties(reply_example: dict[str, Any]) -> None:
    reply = AgentReply.model_validate(reply_example)
    message = reply_message(reply)
    assert (message.message_id, message.correlation_id) == (
        reply.messageId,
        reply.originalMessageId,
    )
    assert message.delivery_mode == 2 and message.content_type == "application/json"
    assert "error" not in json.loads(message.body)
