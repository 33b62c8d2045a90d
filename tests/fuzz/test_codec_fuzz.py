"""Property-based tests of the codec against the models and the JSON Schemas in contracts/.

(a) Every valid request and reply decodes, re-encodes, decodes again to an equal model, and the
    encoded JSON validates against its schema.
(b) Whatever else arrives (bytes, JSON values, a valid document with one field broken) is refused
    with a ContractError, never another exception, whose problems name real field paths.
(c) On documents with one field changed, the model refuses exactly when the schema refuses,
    except for two deliberate differences, each asserted explicitly:
      1. the error⇔status rule of a reply (``error`` present exactly when status is "error") is
         a model validator; the generated schema does not carry it (JSON Schema 2020-12 could
         say it with if/then/else, pydantic does not generate that);
      2. a float without fractional part (``1.0``) is an integer for JSON Schema but not for the
         strict model: producers must write integers as integers.
    Not generated, because the two sides differ by construction: JSON nested deeper than about
    254 levels (pydantic's limit), lone surrogates (``"\\ud800"``), and non-finite numbers.

The schema's ``pattern`` is checked with ECMA-262 semantics, as JSON Schema specifies (and as
any JavaScript validator on the Node side would): Python's ``re.search`` lets ``$`` match
before a final newline, so the stock jsonschema validator accepts ``"+256703722777\\n"``,
which the model refuses (see the test below the agreement tests).

Bugs the fuzzing found are kept at the end as regression tests
and the marker must go.
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st
from jsonschema import (  # type: ignore[import-untyped]  # no stubs installed
    Draft202012Validator,
    ValidationError,
    validators,
)
from pydantic import BaseModel

from agent_service.contract.amqp import reply_message, request_message
from agent_service.contract.codec import (
    ContractError,
    FieldProblem,
    decode_reply,
    decode_request,
    to_json_bytes,
)
from agent_service.contract.messages import AgentReply, AgentRequest
from harness.fuzzing import strategies as s

pytestmark = pytest.mark.fuzz

SCHEMAS = Path(__file__).resolve().parents[2] / "contracts" / "schemas"

# Deterministic in CI: derandomize ties the examples to the test, no example database.
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# The per-field tests: 12 examples for each of the 47 fields, 564 per test function.
PER_FIELD = settings(FUZZ, max_examples=12)

Decoder = Callable[[bytes], BaseModel]


def _seed_of(model: type[BaseModel], path: str, test: str) -> int:
    # A fixed seed per field: with derandomize alone, the nested test functions of every field
    # would share one seed, hence the same sequence of choices.
    return zlib.crc32(f"{test}:{model.__name__}.{path}".encode())


# --- schema validators ---------------------------------------------------------------------


@functools.cache
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    # ECMA-262 without the m flag: ``$`` matches only at the very end of the input.
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    Draft202012Validator.check_schema(schema)
    return schema


REQUEST_SCHEMA = _schema("ag_queue.request.schema.json")
REPLY_SCHEMA = _schema("wb_queue.reply.schema.json")
STOCK = {
    AgentRequest: Draft202012Validator(REQUEST_SCHEMA),
    AgentReply: Draft202012Validator(REPLY_SCHEMA),
}
ECMA = {AgentRequest: EcmaValidator(REQUEST_SCHEMA), AgentReply: EcmaValidator(REPLY_SCHEMA)}
DECODERS: dict[type[BaseModel], Decoder] = {
    AgentRequest: decode_request,
    AgentReply: decode_reply,
}
RULES = {AgentRequest: s.REQUEST_RULES, AgentReply: s.REPLY_RULES}
# One test per field, so that every field gets its share of examples: a path drawn by
# Hypothesis would be far from uniform (the first ones of the list get most examples).
FIELDS = [
    pytest.param(model, path, id=f"{model.__name__}.{path}")
    for model in (AgentRequest, AgentReply)
    for path in RULES[model]
]


# --- helpers -------------------------------------------------------------------------------


def _encode(doc: Any, ascii_only: bool = True) -> bytes:
    return json.dumps(doc, ensure_ascii=ascii_only, allow_nan=False).encode("utf-8")


def _annotation_at(model: type[BaseModel], parts: list[str | int]) -> bool:
    """Whether ``parts`` walks the model's fields (below a free-form dict, anything goes)."""
    annotation: Any = model
    for part in parts:
        annotation = _strip_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if not isinstance(part, str) or part not in annotation.model_fields:
                return False
            annotation = annotation.model_fields[part].annotation
        elif getattr(annotation, "__origin__", None) is list:
            if not isinstance(part, int):
                return False
            annotation = annotation.__args__[0]
        else:
            return getattr(annotation, "__origin__", None) is dict or annotation is Any
    return True


def _strip_optional(annotation: Any) -> Any:
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    if type(None) in getattr(annotation, "__args__", ()) and len(args) == 1:
        return args[0]
    return annotation


def is_real_path(model: type[BaseModel], field: str) -> bool:
    if field in ("(body)", "(root)"):
        return True
    if not re.fullmatch(r"[A-Za-z_]\w*(\[\d+\])*(\.[A-Za-z_]\w*(\[\d+\])*)*", field):
        return False
    return _annotation_at(model, list(s.parse_path(field)))


def refusal(model: type[BaseModel], body: bytes) -> list[FieldProblem] | None:
    """The problems if the codec refuses ``body``, None if it accepts. Any exception other
    than ContractError propagates and fails the test."""
    try:
        DECODERS[model](body)
    except ContractError as exc:
        assert exc.problems, "a ContractError must name at least one problem"
        for problem in exc.problems:
            assert is_real_path(model, problem.field), f"not a field of {model.__name__}: {problem}"
            assert problem.reason
        return exc.problems
    return None


def _names_path(problems: list[FieldProblem], path: str) -> bool:
    return any(p.field == path or p.field.startswith((path + ".", path + "[")) for p in problems)


def test_is_real_path_tells_fields_from_made_up_paths() -> None:
    real = ["(root)", "contact.phoneNumber", "context.conversationHistory[3].role", "metadata"]
    real += ["context.sessionData.anything[0]"]  # below a free-form object
    made_up = ["contact.phone", "messageId.x", "context.conversationHistory.role", "", "a..b"]
    assert all(is_real_path(AgentRequest, f) for f in real)
    assert not any(is_real_path(AgentRequest, f) for f in made_up)
    assert is_real_path(AgentReply, "error.code")
    assert not is_real_path(AgentReply, "contact.countryCode")


# --- (a) valid documents round-trip --------------------------------------------------------


@FUZZ
@given(doc=s.requests | s.full_requests, ascii_only=st.booleans())
def test_valid_requests_round_trip(doc: dict[str, Any], ascii_only: bool) -> None:
    STOCK[AgentRequest].validate(doc)  # the strategy makes valid requests
    request = decode_request(_encode(doc, ascii_only))
    encoded = to_json_bytes(request)
    assert decode_request(encoded) == request
    assert to_json_bytes(decode_request(encoded)) == encoded
    STOCK[AgentRequest].validate(json.loads(encoded))
    message = request_message(request)
    assert (message.body, message.message_id, message.type) == (
        encoded,
        request.messageId,
        request.taskType.value,
    )


@FUZZ
@given(doc=s.replies | s.full_replies, ascii_only=st.booleans())
def test_valid_replies_round_trip(doc: dict[str, Any], ascii_only: bool) -> None:
    STOCK[AgentReply].validate(doc)  # the strategy makes valid replies
    reply = decode_reply(_encode(doc, ascii_only))
    encoded = to_json_bytes(reply)
    assert decode_reply(encoded) == reply
    assert to_json_bytes(decode_reply(encoded)) == encoded
    STOCK[AgentReply].validate(json.loads(encoded))
    message = reply_message(reply)
    assert (message.body, message.correlation_id) == (encoded, reply.originalMessageId)


# --- (b) everything else is refused with a ContractError -----------------------------------


@settings(FUZZ, max_examples=500)
@given(body=s.arbitrary_bodies)
def test_arbitrary_bodies_are_refused_with_contract_errors(body: bytes) -> None:
    for model in DECODERS:
        refusal(model, body)  # accepted is impossible in practice, any other error fails


@FUZZ
@given(value=s.json_values | s.look_alike_objects)
def test_arbitrary_json_values_are_refused_with_contract_errors(value: Any) -> None:
    body = _encode(value)
    for model in DECODERS:
        refusal(model, body)


@pytest.mark.parametrize(("model", "path"), FIELDS)
def test_a_document_with_one_broken_field_is_refused(model: type[BaseModel], path: str) -> None:
    @PER_FIELD
    @seed(_seed_of(model, path, "refused"))
    @given(mutation=s.mutations(RULES[model], path, only_invalid=True))
    def check(mutation: s.Mutation) -> None:
        assert mutation.surely_invalid
        problems = refusal(model, _encode(mutation.doc))
        assert problems is not None, f"accepted: {mutation.describe()}"
        assert _names_path(problems, mutation.path), f"{mutation.describe()}: {problems}"

    check()


# --- (c) the model and the schema agree ----------------------------------------------------


def violates_error_rule(doc: dict[str, Any]) -> bool:
    """Exception 1: ``error`` must be present (not null) exactly when status is "error"."""
    return (doc.get("status") == "error") != (doc.get("error") is not None)


def integral_float_in_integer_field(model: type[BaseModel], mutation: s.Mutation) -> bool:
    """Exception 2: ``1.0`` where the contract wants an integer."""
    value = mutation.value
    return (
        mutation.action != "removed"
        and RULES[model][mutation.path].kind == "count"
        and isinstance(value, float)
        and value.is_integer()
    )


def _assert_agreement(model: type[BaseModel], mutation: s.Mutation) -> None:
    problems = refusal(model, _encode(mutation.doc))
    schema_errors = [e.message for e in ECMA[model].iter_errors(mutation.doc)]
    where = f"{mutation.describe()}: model {problems}, schema {schema_errors}"
    if schema_errors:
        event("both refuse")
        assert problems is not None, f"schema refuses, model accepts: {where}"
    elif model is AgentReply and violates_error_rule(mutation.doc):
        event("exception 1: error⇔status")
        assert problems is not None, f"error⇔status rule not enforced: {where}"
        assert any(p.field == "(root)" and "error" in p.reason for p in problems), where
    elif integral_float_in_integer_field(model, mutation):
        event("exception 2: 1.0 for an integer")
        assert problems is not None, f"strict integer not enforced: {where}"
        assert _names_path(problems, mutation.path), where
    else:
        event("both accept")
        assert problems is None, f"model refuses, schema accepts: {where}"


@pytest.mark.parametrize(("model", "path"), FIELDS)
def test_model_and_schema_agree_on_a_changed_field(model: type[BaseModel], path: str) -> None:
    @PER_FIELD
    @seed(_seed_of(model, path, "agree"))
    @given(mutation=s.mutations(RULES[model], path, only_invalid=False))
    def check(mutation: s.Mutation) -> None:
        _assert_agreement(model, mutation)

    check()


@pytest.mark.parametrize(
    "change",
    [
        {"status": "error"},  # and no error
        {"status": "success", "error": {"code": "X", "message": "y"}},
        {"status": "error", "error": None},
    ],
)
def test_exception_1_the_schema_does_not_carry_the_error_status_rule(
    reply_example: dict[str, Any], change: dict[str, Any]
) -> None:
    reply_example.update(change)
    assert ECMA[AgentReply].is_valid(reply_example)
    problems = refusal(AgentReply, _encode(reply_example))
    assert problems is not None
    assert [p.field for p in problems] == ["(root)"]


@pytest.mark.parametrize("path", ["timestamp", "message.timestamp", "metadata.retryCount"])
def test_exception_2_a_float_without_fraction_is_no_integer_for_the_model(
    request_example: dict[str, Any], path: str
) -> None:
    parts = s.parse_path(path)
    request_example = s.set_field(
        request_example, parts, float(next(s.lookup(request_example, parts)))
    )
    assert ECMA[AgentRequest].is_valid(request_example)
    problems = refusal(AgentRequest, _encode(request_example))
    assert problems is not None
    assert [p.field for p in problems] == [path]


def test_the_stock_validator_lets_dollar_match_before_a_final_newline(
    request_example: dict[str, Any],
) -> None:
    """Why ``ECMA`` exists: the stock Python validator disagrees with JSON Schema here."""
    request_example["contact"]["phoneNumber"] = "+256703722777\n"
    assert STOCK[AgentRequest].is_valid(request_example)
    assert not ECMA[AgentRequest].is_valid(request_example)
    assert refusal(AgentRequest, _encode(request_example)) is not None


# --- bugs the fuzzing found, fixed; kept as regressions ---------------------------------


# Was a bug, now fixed: parse_body lets json.loads' ValueError for integers of more than 4300
# digits escape (it catches only JSONDecodeError and RecursionError); in
# the service the consumer then nacks with requeue every 0.5 s, for
# ever, instead of dead-lettering
@pytest.mark.parametrize("where", ["timestamp", "sessionData"])
def test_an_integer_of_5000_digits_is_a_contract_error(
    request_example: dict[str, Any], where: str
) -> None:
    if where == "timestamp":
        request_example["timestamp"] = "@@"
    else:
        request_example["context"]["sessionData"] = {"n": "@@"}
    body = _encode(request_example).replace(b'"@@"', b"7" * 5000)
    assert len(body) < 256 * 1024
    with pytest.raises(ContractError):
        decode_request(body)


# Was a bug, now fixed: timestamps have no upper bound, but request_message/reply_message turn
# them into a datetime, which fails after 9999-12-31 (ValueError) or far
# beyond (OSError); in the service a retryable failure of such a request
# makes publish_retry raise, and the delivery is requeued for ever
@pytest.mark.parametrize("timestamp", [s.MAX_DATETIME_MS + 1, 10**20])
def test_an_accepted_timestamp_makes_an_amqp_message(
    request_example: dict[str, Any], timestamp: int
) -> None:
    request_example["timestamp"] = timestamp
    try:
        request = decode_request(_encode(request_example))
    except ContractError:
        return  # refusing it would be a fix too
    request_message(request)


# Was a bug, now fixed: a number too large for a float (1e400, standard JSON) or the non-
# standard Infinity token decodes to inf; to_json_bytes writes it as
# null, which decode refuses
@pytest.mark.parametrize("literal", [b"1e400", b"Infinity"])
def test_an_accepted_reply_survives_a_round_trip(
    reply_example: dict[str, Any], literal: bytes
) -> None:
    reply_example["agentMetadata"]["processingTime"] = "@@"
    body = _encode(reply_example).replace(b'"@@"', literal)
    try:
        reply = decode_reply(body)
    except ContractError:
        return  # refusing it would be a fix too
    decode_reply(to_json_bytes(reply))
