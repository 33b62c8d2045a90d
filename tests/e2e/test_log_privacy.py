"""Nothing personal in the logs: a whole conversation mix runs with every log at DEBUG, and the
agent service's and the Node simulator's log lines are scanned for the contacts' phone numbers
and for what they wrote and were answered."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.scenarios import conversation_plan, run_conversations
from harness.stack import SimulationStack
from tests.e2e.test_flow import StackFactory

pytestmark = pytest.mark.e2e


class Capture(logging.Handler):
    """Every record of a logger, as the raw text a log file would hold (no masking here)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        extras = {k: v for k, v in vars(record).items() if k not in _PLAIN}
        self.lines.append(f"{record.getMessage()} {extras}")


_PLAIN = set(vars(logging.makeLogRecord({})))


@pytest.fixture
def node_log() -> Iterator[Capture]:
    capture = Capture()
    logger = logging.getLogger("fakes.node_simulator")
    level = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    yield capture
    logger.removeHandler(capture)
    logger.setLevel(level)


def _leaks(lines: list[str], phones: set[str], texts: set[str]) -> dict[str, list[str]]:
    digits = {p.lstrip("+") for p in phones}
    found: dict[str, list[str]] = {"phones": [], "texts": []}
    for line in lines:
        if any(re.search(rf"(?<!\d){d}(?!\d)", line) for d in digits):
            found["phones"].append(line[:200])
        if any(t in line for t in texts):
            found["texts"].append(line[:200])
    return found


async def test_a_run_logs_no_phone_number_and_no_message_text(
    make_stack: StackFactory, node_log: Capture, tmp_path: Path
) -> None:
    agent_log = tmp_path / "agent.log"
    stack: SimulationStack = await make_stack(
        agent_log=agent_log, service_env={"log_level": "DEBUG"}, model_latency="0"
    )
    plans = conversation_plan(40, 8, seed=3)
    await run_conversations(stack, plans)
    await stack.wait_all(time.monotonic() + 60)
    assert stack.ledger.pending == 0
    phones = {turn.phone for plan in plans for turn in plan}
    texts = {e.text for e in stack.ledger.entries} | {
        e.reply_text for e in stack.ledger.entries if e.reply_text
    }
    await stack.agent.terminate()
    agent_lines = agent_log.read_text().splitlines()
    assert len(agent_lines) > 40 and len(node_log.lines) > 40  # both really logged the run
    assert _leaks(agent_lines, phones, texts) == {"phones": [], "texts": []}
    assert _leaks(node_log.lines, phones, texts) == {"phones": [], "texts": []}


def test_the_scan_finds_a_leak() -> None:
    # The oracle: a line with a whole number or a text in it is found.
    leaks = _leaks(["sent to +256700000003", "said 'Hello!'"], {"+256700000003"}, {"Hello!"})
    assert leaks == {"phones": ["sent to +256700000003"], "texts": ["said 'Hello!'"]}
