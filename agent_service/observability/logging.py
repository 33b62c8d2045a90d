"""Structured logs (one JSON object a line) with phone numbers masked everywhere."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

# Every number the contract accepts: E.164 and JIDs' digits, 7 to 15 digits, optionally after a
# plus sign (found in a review: 7- and 8-digit numbers were left whole).
_PHONE = re.compile(r"(?<![\w-])(\+?)(\d{7,15})(?!\d)")
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def mask_phone(text: str) -> str:
    """'+256703722777' -> '+2567******77', '+1234567' -> '+123**67'; applied to any run of 7 to
    15 digits: the country code end and the last two digits stay, the rest is starred."""
    return _PHONE.sub(_mask_digits, text)


def _mask_digits(match: re.Match[str]) -> str:
    digits = match[2]
    keep = 4 if len(digits) >= 10 else 3
    return f"{match[1]}{digits[:keep]}{'*' * (len(digits) - keep - 2)}{digits[-2:]}"


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_phone(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "event": mask_phone(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED:
                entry[key] = _masked(value)
        if record.exc_info and record.levelno >= logging.ERROR:
            entry["error"] = f"{record.exc_info[0].__name__ if record.exc_info[0] else ''}"
        return json.dumps(entry, default=str, ensure_ascii=False)


class MaskingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in vars(record).items() if k not in _RESERVED}
        line = super().format(record)
        if extras:
            line += " " + json.dumps(_masked(extras), default=str, ensure_ascii=False)
        return mask_phone(line)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else MaskingTextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiormq logs every failed reconnect at ERROR with a traceback; the service logs its own.
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
    # ADK logs each model exception at ERROR with a traceback before re-raising it; the
    # pipeline classifies and logs every failure itself, once, without a stack.
    logging.getLogger("google_adk").setLevel(logging.CRITICAL)
    # google-genai and the HTTP clients can log request contents at DEBUG: never below WARNING.
    for name in ("google_genai", "httpx", "httpcore", "aiohttp.client"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
