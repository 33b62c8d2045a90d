"""Envelopes to JSON bytes and back, with errors that name the field and the reason.

No AMQP here: ``contract.amqp`` puts the bytes into messages with the contract's properties.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agent_service.contract.messages import AgentReply, AgentRequest

# A body larger than this is refused before it is parsed (DESIGN.md section 5: oversized).
DEFAULT_MAX_BODY_BYTES = 256 * 1024

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class FieldProblem:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class ContractError(ValueError):
    """A message that breaks the contract. ``problems`` names each field and why."""

    def __init__(self, envelope: str, problems: list[FieldProblem]) -> None:
        self.envelope = envelope
        self.problems = problems
        detail = "; ".join(str(p) for p in problems)
        super().__init__(f"invalid {envelope} message: {detail}")


def now_ms() -> int:
    return int(time.time() * 1000)


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(root)"


def _problems(exc: ValidationError) -> list[FieldProblem]:
    return [FieldProblem(_field_path(tuple(e["loc"])), e["msg"]) for e in exc.errors()]


def parse_body(body: bytes, envelope: str, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Any:
    """Bytes to a JSON value, refusing oversized, non-UTF-8 and non-JSON bodies."""
    if len(body) > max_bytes:
        raise ContractError(
            envelope, [FieldProblem("(body)", f"{len(body)} bytes exceeds the {max_bytes} limit")]
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError(
            envelope, [FieldProblem("(body)", f"not UTF-8 at byte {exc.start}")]
        ) from None
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise ContractError(
            envelope,
            [FieldProblem("(body)", f"not JSON: {exc.msg} (line {exc.lineno} col {exc.colno})")],
        ) from None
    except RecursionError:
        raise ContractError(envelope, [FieldProblem("(body)", "JSON nested too deep")]) from None
    except ValueError as exc:
        # Python refuses integers of more than 4300 digits (a guard against slow parsing);
        # found by the fuzz tests: without this the error escaped as a plain ValueError.
        raise ContractError(envelope, [FieldProblem("(body)", f"not usable JSON: {exc}")]) from None


def _refuse_constant(token: str) -> Any:
    # NaN and Infinity are not JSON; Python's parser accepts them unless told otherwise.
    raise ValueError(f"{token} is not a JSON value")


def _finite_float(token: str) -> float:
    # 1e400 is valid JSON syntax but no finite number (RFC 8259 section 6 leaves such values
    # to the reader). Python reads it as inf, and writing it back gives "Infinity", which is
    # not JSON: found in a review, a retried request with 1e400 in an unknown field was then
    # refused as "not JSON" and the user got the fallback instead of the answer.
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(f"{token[:40]} is out of range for a finite number")
    return value


def validate(model: type[M], data: Any, envelope: str) -> M:
    """A parsed JSON value to a model. Strict: no string-to-number or float-to-int coercion."""
    if not isinstance(data, dict):
        raise ContractError(
            envelope, [FieldProblem("(root)", f"expected a JSON object, got {type(data).__name__}")]
        )
    try:
        # Strict on the whole tree (strict=True in model_config would not reach nested models),
        # while enum values still come from their JSON strings.
        return model.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        raise ContractError(envelope, _problems(exc)) from None


def decode(model: type[M], body: bytes, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> M:
    envelope = _envelope_name(model)
    return validate(model, parse_body(body, envelope, max_bytes), envelope)


def decode_request(body: bytes, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> AgentRequest:
    return decode(AgentRequest, body, max_bytes)


def decode_reply(body: bytes, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> AgentReply:
    return decode(AgentReply, body, max_bytes)


def _envelope_name(model: type[BaseModel]) -> str:
    return {AgentRequest: "ag_queue request", AgentReply: "wb_queue reply"}.get(
        model, model.__name__
    )


def to_json_bytes(model: BaseModel) -> bytes:
    # exclude_none keeps optional absent fields absent (``error`` on a success reply).
    return model.model_dump_json(exclude_none=True).encode("utf-8")
