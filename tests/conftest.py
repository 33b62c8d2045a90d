"""Shared test helpers. Broker fixtures come from the harness's pytest plugin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
# Spec examples and real Wasender webhook samples (tests/data/README.md), kept in the repository
# so that a fresh clone runs the tests that check the fakes against them instead of skipping.
SHARED_DATA = REPO / "tests" / "data"
EXAMPLES = REPO / "contracts" / "examples"


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture
def request_example() -> dict[str, Any]:
    data: dict[str, Any] = load_json(EXAMPLES / "ag_queue.request.json")
    return data


@pytest.fixture
def reply_example() -> dict[str, Any]:
    data: dict[str, Any] = load_json(EXAMPLES / "wb_queue.reply.json")
    return data
