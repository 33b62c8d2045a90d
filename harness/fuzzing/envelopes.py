"""ag_queue envelopes for fuzzing the running service: valid ones with hostile values, invalid
ones of every kind, and the borderline cases whose verdict is a decision (docs/fuzzing.md).

Each ``Envelope`` says what the contract expects of it: a valid one gets exactly one conforming
reply on wb_queue, an invalid one lands in dlx_agent once with its reason, and nothing else.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from agent_service.contract.codec import DEFAULT_MAX_BODY_BYTES
from harness.fuzzing import strategies as s

Json = Any


@dataclass(frozen=True)
class Envelope:
    kind: str
    body: bytes
    valid: bool
    """What the contract says: True, a reply is owed; False, a dead letter."""
    request_id: str | None = None

    def describe(self) -> str:
        return f"{self.kind} ({'valid' if self.valid else 'invalid'}, {len(self.body)} bytes)"


def _encode(doc: Json, ascii_only: bool) -> bytes:
    return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8")


def _fresh_id(doc: dict[str, Json]) -> dict[str, Json]:
    # Every valid envelope is a new request: a repeated id would be a duplicate, owed nothing.
    return {**doc, "messageId": str(uuid.uuid4())}


@st.composite
def valid_envelopes(draw: st.DrawFn) -> Envelope:
    """Valid requests with awkward values: unicode, RTL, emoji, BOM and NUL inside strings,
    extra fields, seconds or milliseconds, sometimes a long history."""
    doc = _fresh_id(draw(s.requests))
    if draw(st.integers(0, 9)) == 0:
        turns = draw(st.integers(20, 60))
        doc["context"] = {
            **(doc.get("context") or {}),
            "conversationHistory": [
                {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} 😀"}
                for i in range(turns)
            ],
        }
    kind = "valid" if "schemaVersion" not in doc else "valid-with-extras"
    return Envelope(kind, _encode(doc, draw(st.booleans())), True, doc["messageId"])


@st.composite
def broken_field_envelopes(draw: st.DrawFn) -> Envelope:
    """A valid request with one field wrong: missing, of another type, out of range, unknown
    enum value (the codec fuzz tests' field table)."""
    path = draw(st.sampled_from(sorted(s.REQUEST_RULES)))
    mutation = draw(s.mutations(s.REQUEST_RULES, path, only_invalid=True))
    return Envelope(f"broken-field:{mutation.action}", _encode(mutation.doc, True), False)


def _raw(kind: str, strategy: st.SearchStrategy[bytes]) -> st.SearchStrategy[Envelope]:
    return strategy.map(lambda body: Envelope(kind, body, False))


def _not_utf8(prefix: bytes) -> bytes:
    return prefix + b"\xff\xfe\x80"


@st.composite
def _at_the_limit(draw: st.DrawFn, max_bytes: int, over: bool) -> Envelope:
    doc = _fresh_id(draw(st.sampled_from(s.BASE_REQUESTS)))
    doc["padding"] = ""
    size = len(_encode(doc, True))
    doc["padding"] = "x" * (max_bytes - size + (1 if over else 0))
    body = _encode(doc, True)
    assert len(body) == max_bytes + (1 if over else 0)
    if over:
        return Envelope("oversized", body, False)
    return Envelope("borderline:at-size-limit", body, True, doc["messageId"])


def _borderline(base: dict[str, Json]) -> list[Envelope]:
    """Cases a reader could take either way; each verdict is the contract's (docs/fuzzing.md)."""
    out = []
    doc = _fresh_id(base)
    text = json.dumps(doc)
    dup = text[:-1] + ', "taskType": "order"}'  # a repeated key: the last one counts
    out.append(Envelope("borderline:repeated-key", dup.encode(), True, doc["messageId"]))
    out.append(Envelope("borderline:utf8-bom", b"\xef\xbb\xbf" + text.encode(), False))
    floaty = _fresh_id(base)
    floaty["metadata"] = {**floaty["metadata"], "retryCount": 1.0}
    out.append(Envelope("borderline:integral-float", _encode(floaty, True), False))
    upper = {**_fresh_id(base)}
    upper["messageId"] = upper["messageId"].upper()
    out.append(
        Envelope("borderline:uppercase-uuid", _encode(upper, True), True, upper["messageId"])
    )
    blank = _fresh_id(base)
    blank["message"] = {**blank["message"], "text": " "}
    out.append(Envelope("borderline:blank-text", _encode(blank, True), True, blank["messageId"]))
    seconds = _fresh_id(base)
    seconds["timestamp"] = 1_700_000_000
    out.append(Envelope("borderline:seconds", _encode(seconds, True), True, seconds["messageId"]))
    big = _fresh_id(base)
    big["extra"] = 1e400  # valid JSON syntax, no finite number: refused (RFC 8259 section 6)
    out.append(Envelope("non-finite", json.dumps(big).replace("Infinity", "1e400").encode(), False))
    long_phone = _fresh_id(base)
    long_phone["contact"] = {**long_phone["contact"], "phoneNumber": "+1234567890123456"}
    out.append(Envelope("borderline:16-digit-phone", _encode(long_phone, True), False))
    return out


def borderline_envelopes() -> st.SearchStrategy[Envelope]:
    return st.sampled_from(s.BASE_REQUESTS).flatmap(lambda b: st.sampled_from(_borderline(b)))


def invalid_envelopes(max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> st.SearchStrategy[Envelope]:
    valid_text = st.sampled_from(s.BASE_REQUESTS).map(lambda d: _encode(d, True))
    return st.one_of(
        broken_field_envelopes(),
        _raw(
            "not-json", s.json_like_bytes.filter(_not_json) | s.arbitrary_bodies.filter(_not_json)
        ),
        _raw("not-utf8", valid_text.map(lambda b: _not_utf8(b[:20]))),
        _raw(
            "not-an-object",
            s.json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: _encode(v, True)),
        ),
        _raw(
            "look-alike",
            s.look_alike_objects.filter(lambda v: isinstance(v, dict)).map(
                lambda v: _encode(v, True)
            ),
        ),
        _raw("too-deep", st.integers(300, 2000).map(lambda n: b"[" * n + b"]" * n)),
        _at_the_limit(max_bytes, over=True),
    )


def _not_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return True
    return False


def batches(
    size: int = 8, max_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> st.SearchStrategy[list[Envelope]]:
    """A batch of up to ``size`` envelopes, published together: valid and invalid ones in about
    equal numbers and a few borderline ones, in a drawn order. (One ``one_of`` over all kinds
    gave four invalid envelopes for each valid one: the cheap kinds win.)"""
    # Hypothesis draws shorter lists of the invalid kinds: they get a larger bound.
    parts = st.tuples(
        st.lists(valid_envelopes(), max_size=max(1, size * 3 // 8)),
        st.lists(invalid_envelopes(max_bytes), max_size=max(1, size * 5 // 8)),
        st.lists(borderline_envelopes() | _at_the_limit(max_bytes, over=False), max_size=2),
    )
    return (
        parts.map(lambda p: [*p[0], *p[1], *p[2]])
        .filter(bool)
        .flatmap(lambda batch: st.permutations(batch))
    )
