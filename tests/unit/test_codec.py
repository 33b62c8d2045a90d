"""The codec's refusals, exactly: each names the envelope, the field ("(body)", "(root)" or a
path) and the reason, so a dead letter's detail tells an operator what was wrong."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from agent_service.contract.codec import (
    ContractError,
    FieldProblem,
    _field_path,
    decode,
    decode_reply,
    decode_request,
    now_ms,
    parse_body,
    validate,
)
from agent_service.contract.messages import (
    REPLY_ID_NAMESPACE,
    AgentRequest,
    epoch_seconds,
    reply_id_for,
)
from harness.message_factory import agent_request

pytestmark = pytest.mark.unit


def refusal(body: bytes, max_bytes: int = 1000) -> ContractError:
    with pytest.raises(ContractError) as caught:
        parse_body(body, "ag_queue request", max_bytes)
    return caught.value


def test_a_contract_error_names_its_envelope_and_every_problem() -> None:
    error = ContractError("wb_queue reply", [FieldProblem("a", "missing"), FieldProblem("b", "x")])
    assert error.envelope == "wb_queue reply"
    assert str(error) == "invalid wb_queue reply message: a: missing; b: x"


def test_the_body_limit_is_inclusive() -> None:
    assert parse_body(b'"' + b"x" * 8 + b'"', "e", 10) == "x" * 8
    error = refusal(b"x" * 11, 10)
    assert error.problems == [FieldProblem("(body)", "11 bytes exceeds the 10 limit")]


def test_each_unreadable_body_is_refused_as_the_body() -> None:
    assert refusal(b"\xff").problems == [FieldProblem("(body)", "not UTF-8 at byte 0")]
    assert refusal(b"{x").problems == [
        FieldProblem(
            "(body)", "not JSON: Expecting property name enclosed in double quotes (line 1 col 2)"
        )
    ]
    deep = refusal(b"[" * 5000 + b"]" * 5000, 20_000)
    assert deep.problems == [FieldProblem("(body)", "JSON nested too deep")]
    unusable = refusal(b"1" * 5000, 20_000)
    assert unusable.problems[0].reason.startswith("not usable JSON: ")
    assert deep.envelope == unusable.envelope == "ag_queue request"


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_refused(token: str) -> None:
    [problem] = refusal(f'{{"a": {token}}}'.encode()).problems
    assert problem == FieldProblem("(body)", f"not usable JSON: {token} is not a JSON value")


def test_a_number_too_large_for_a_float_is_refused() -> None:
    [problem] = refusal(b'{"a": 1e400}').problems
    assert problem.reason == "not usable JSON: 1e400 is out of range for a finite number"
    long = "1" + "0" * 50 + "e400"
    [problem] = refusal(f'{{"a": {long}}}'.encode()).problems
    assert problem.reason == f"not usable JSON: {long[:40]} is out of range for a finite number"


def test_a_body_that_is_no_object_is_refused_at_the_root() -> None:
    with pytest.raises(ContractError) as caught:
        validate(AgentRequest, [], "ag_queue request")
    assert caught.value.problems == [FieldProblem("(root)", "expected a JSON object, got list")]


def test_field_paths_name_nested_fields_and_list_items() -> None:
    assert _field_path(("context", "history", 0, "content")) == "context.history[0].content"
    assert _field_path(()) == "(root)"
    data = json.loads(_body())
    data["contact"]["phoneNumber"] = 5
    with pytest.raises(ContractError) as caught:
        validate(AgentRequest, data, "ag_queue request")
    assert [p.field for p in caught.value.problems] == ["contact.phoneNumber"]


def _body() -> bytes:
    return agent_request().model_dump_json().encode()


def test_decode_names_the_envelope_of_each_model() -> None:
    with pytest.raises(ContractError, match=r"^invalid ag_queue request message"):
        decode_request(b"{}")
    with pytest.raises(ContractError, match=r"^invalid ag_queue request message: \(body\)"):
        decode_request(b"{x")
    with pytest.raises(ContractError, match=r"^invalid wb_queue reply message"):
        decode_reply(b"{}")
    with pytest.raises(ContractError, match=r"^invalid FieldProblem message"):
        decode(FieldProblem, b"[]", 100)  # type: ignore[type-var]


def test_decode_applies_its_body_limit() -> None:
    with pytest.raises(ContractError, match="exceeds the 10 limit"):
        decode_request(_body(), 10)
    with pytest.raises(ContractError, match="exceeds the 10 limit"):
        decode_reply(b"{}" * 6, 10)


def test_now_is_in_milliseconds() -> None:
    before = int(time.time() * 1000)
    now = now_ms()
    assert before <= now <= int(time.time() * 1000)


def test_a_reply_id_does_not_depend_on_the_case_of_the_request_id() -> None:
    message_id = agent_request().messageId
    assert reply_id_for(message_id.upper()) == reply_id_for(message_id.lower())
    assert reply_id_for("ABC") == reply_id_for("abc") != reply_id_for("abd")
    assert reply_id_for("ABC") == str(uuid.uuid5(REPLY_ID_NAMESPACE, "abc"))


def test_a_timestamp_at_the_threshold_is_read_as_milliseconds() -> None:
    from agent_service.contract.messages import _MS_THRESHOLD

    assert epoch_seconds(_MS_THRESHOLD) == _MS_THRESHOLD / 1000
    assert epoch_seconds(_MS_THRESHOLD - 1) == float(_MS_THRESHOLD - 1)
