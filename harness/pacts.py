"""Pact helpers shared by the contract tests: names, matchers, AMQP metadata, staleness check.

The matchers are built from the models' own rules (``UUID_PATTERN``, the enums, ...) so a
pact says exactly what the pydantic models enforce. Every matcher carries a fixed example:
without one pact generates a value per run and the committed pact file would never be stable.

Pact metadata keys are the AMQP property names as Node's amqplib spells them (``contentType``,
``messageId``, ``correlationId``, ...), so the Node team maps them one to one.

The committed pact files live in ``contracts/pacts/``. Tests write into a temporary folder and
compare (``pact_drift``); with ``PACT_UPDATE=1`` they copy their output into ``contracts/pacts/``
instead (``settle``).
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any

import aio_pika
from pact import match

from agent_service.contract.messages import JID_PATTERN, PHONE_PATTERN, UUID_PATTERN

AGENT_SERVICE = "whatsapp-agent-service"
NODE_SERVICE = "whatsapp-node-service"

PACTS_DIR = Path(__file__).resolve().parent.parent / "contracts" / "pacts"
# pact names its files "<consumer>-<provider>.json".
AG_QUEUE_PACT = f"{AGENT_SERVICE}-{NODE_SERVICE}.json"  # ag_queue: Python consumes, Node sends
WB_QUEUE_PACT = f"{NODE_SERVICE}-{AGENT_SERVICE}.json"  # wb_queue: Node consumes, Python sends

UPDATE_ENV = "PACT_UPDATE"
REGENERATE = (
    "run `PACT_UPDATE=1 .venv/bin/pytest -m contract tests/contract` and commit contracts/pacts/"
)

# The versions of the tools that wrote a file: they record who wrote it, not the contract,
# and differ between machines (pact-python-ffi is not pinned), so the comparison skips them.
WRITER_METADATA = ("pactRust", "pact-js")

# Non-empty, newlines included. Pact regexes must match the whole value, hence the anchors.
NON_EMPTY_PATTERN = r"^[\s\S]+$"
ERROR_CODE_PATTERN = r"^[A-Z][A-Z0-9_]*$"


def enum_pattern(values: Iterable[str]) -> str:
    """A regex accepting exactly these values, e.g. ``^(normal|high|urgent)$``."""
    return "^(" + "|".join(values) + ")$"


def one_of(member: StrEnum) -> Any:
    """Any value of ``member``'s enum, with ``member`` as the example."""
    return match.regex(member.value, regex=enum_pattern(m.value for m in type(member)))


def uuid(example: str) -> Any:
    return match.regex(example, regex=UUID_PATTERN)


def phone(example: str) -> Any:
    return match.regex(example, regex=PHONE_PATTERN)


def jid(example: str) -> Any:
    return match.regex(example, regex=JID_PATTERN)


def non_empty(example: str) -> Any:
    return match.regex(example, regex=NON_EMPTY_PATTERN)


def epoch(example: int) -> Any:
    """An integer Unix epoch (seconds or milliseconds); a string or a float fails."""
    return match.int(example)


def amqp_metadata(message: aio_pika.Message) -> dict[str, object]:
    """The AMQP properties of ``message`` as pact metadata, under amqplib's property names."""
    properties: dict[str, object] = {
        "contentType": message.content_type,
        "deliveryMode": int(message.delivery_mode),
        "messageId": message.message_id,
        "correlationId": message.correlation_id,
        "type": message.type,
    }
    return {key: value for key, value in properties.items() if value is not None}


def normalised(pact: dict[str, Any]) -> dict[str, Any]:
    """``pact`` without the writers' version stamps."""
    metadata = {k: v for k, v in pact.get("metadata", {}).items() if k not in WRITER_METADATA}
    return {**pact, "metadata": metadata}


def _pretty(pact: dict[str, Any]) -> list[str]:
    return json.dumps(normalised(pact), indent=2, sort_keys=True).splitlines(keepends=True)


def pact_drift(written: Path, committed: Path) -> str | None:
    """Why ``committed`` differs from the freshly ``written`` pact, or None when it does not."""
    if not committed.exists():
        return f"{committed} is missing: {REGENERATE}"
    new, old = json.loads(written.read_text()), json.loads(committed.read_text())
    if normalised(new) == normalised(old):
        return None
    diff = "".join(
        difflib.unified_diff(_pretty(old), _pretty(new), "committed", "written by the tests")
    )
    return f"{committed.name} is stale: {REGENERATE}\n{diff}"


def updating() -> bool:
    return os.environ.get(UPDATE_ENV, "") not in ("", "0", "false")


def settle(written: Path, committed_dir: Path = PACTS_DIR) -> str | None:
    """Compare a freshly written pact with the committed one, or replace it under PACT_UPDATE=1.

    Returns the drift report (None when up to date or just updated).
    """
    committed = committed_dir / written.name
    if updating():
        committed_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(written, committed)
        return None
    return pact_drift(written, committed)
