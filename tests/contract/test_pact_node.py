"""The Node project in contracts/node, run from pytest: pact-js on both queues.

Its suite (``node --test``) verifies the ag_queue pact against the JavaScript publisher, writes
the wb_queue consumer pact and compares it with the committed file, and shows that broken
publishers fail the verification. ``PACT_UPDATE=1`` passes through, so one pytest run
regenerates both pact files. The ``node_project`` fixture (conftest.py) installs the project.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import pacts

pytestmark = pytest.mark.contract

NODE_DIR = pacts.PACTS_DIR.parent / "node"


def _env() -> dict[str, str]:
    env = {**os.environ, "PACT_DO_NOT_TRACK": "true"}
    # Broker mode is for CI's own step, never for this test; a broken publisher neither.
    for name in ("PACT_VERIFY_FROM_BROKER", "BROKEN_PUBLISHER", "NODE_TEST_CONTEXT"):
        env.pop(name, None)
    return env


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=NODE_DIR,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_node_contract_suite_passes(node_project: Path) -> None:
    tests = sorted(str(p.relative_to(node_project)) for p in node_project.glob("test/*.test.js"))
    assert tests, "no Node test files"
    node = shutil.which("node")
    assert node is not None
    done = _run([node, "--test", *tests], timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"the Node contract tests failed:\n{output[-8000:]}"
    summary = dict(re.findall(r"^# (tests|pass|fail) (\d+)$", output, re.MULTILINE))
    assert summary.get("fail") == "0" and int(summary.get("pass", "0")) >= 10, summary
