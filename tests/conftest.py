"""Shared test helpers, and the guard that fails a run with skips. Broker fixtures come from the
harness's pytest plugin."""

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

NO_DOCKER_COMPOSE = "neither docker-compose nor the docker compose plugin is installed"
# The only reasons a test may skip for: Docker is the one tool these machines and CI lack (no
# engine answers, no compose). Any other skip hides a check, so it fails the run.
ALLOWED_SKIP_REASONS = frozenset({NO_DOCKER_COMPOSE})


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


# -- skip guard ------------------------------------------------------------------------------


class SkipGuard:
    """Turns a passing run into a failing one when a test skipped for a reason not allowed.

    Deselected tests (``-m``, ``-k``) never run, so they are not skips and pass the guard; an
    expected failure (xfail) is no skip either."""

    def __init__(self) -> None:
        self.offending: list[tuple[str, str]] = []  # (node id, reason)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        reason = skip_reason(report)
        if reason not in ALLOWED_SKIP_REASONS:
            self.offending.append((report.nodeid, reason))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.offending and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.offending:
            return
        terminalreporter.write_sep("=", "skips that fail the run", red=True)
        for nodeid, reason in self.offending:
            terminalreporter.write_line(f"{nodeid}: {reason}")
        terminalreporter.write_line(
            "A test may skip only when Docker is missing (ALLOWED_SKIP_REASONS in "
            "tests/conftest.py); make the others run."
        )


def skip_reason(report: pytest.TestReport) -> str:
    """The text given to pytest.skip() or a skip/skipif mark."""
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipGuard(), "skip_guard")
