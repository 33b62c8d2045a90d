"""Log lines carry no whole phone number and, unless asked, no message text."""

from __future__ import annotations

import io
import json
import logging

import pytest

from agent_service.observability.logging import JsonFormatter, MaskingTextFormatter, mask_phone

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+256703722777", "+2567******77"),
        ("256703722777@s.whatsapp.net", "2567******77@s.whatsapp.net"),
        ("+1234567", "+123**67"),  # 7 digits: the shortest number the contract accepts
        ("+12345678", "+123***78"),
        ("+123456789012345", "+1234*********45"),  # 15 digits, the longest
        ("12345678901234@lid", "1234********34@lid"),
        ("call +4915112345678 now", "call +4915*******78 now"),
    ],
)
def test_every_number_the_contract_accepts_is_masked(text: str, masked: str) -> None:
    assert mask_phone(text) == masked


@pytest.mark.parametrize("text", ["order 1042", "123456", "2026-12-01", "uuid 6f1c1c5e-8a4e"])
def test_short_numbers_and_dates_are_left_alone(text: str) -> None:
    assert mask_phone(text) == text


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"msg": message, "levelno": logging.INFO, "levelname": "INFO"})
    record.__dict__.update(extra)
    return record


def test_json_lines_mask_the_message_and_every_field() -> None:
    line = JsonFormatter().format(
        _record("sent to +1234567", contact="+256703722777", nested={"jid": "12345678@lid"})
    )
    entry = json.loads(line)
    assert entry["event"] == "sent to +123**67"
    assert entry["contact"] == "+2567******77"
    assert entry["nested"] == {"jid": "123***78@lid"}


def test_text_lines_mask_too() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(MaskingTextFormatter("%(message)s"))
    handler.emit(_record("from +12345678", contact="+256703722777"))
    assert "+12345678" not in out.getvalue() and "+256703722777" not in out.getvalue()
