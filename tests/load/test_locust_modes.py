"""Locust beyond the closed-loop contacts: open-loop arrivals in distributed mode (a master and
a worker process on this machine) under a step shape, and the direct-AMQP user under a spike.

Locust monkey-patches the interpreter for gevent, so every Locust runs as a subprocess.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.process_tools import free_port

pytestmark = [pytest.mark.load, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
LOCUST = [sys.executable, "-m", "locust", "-f", "loadtests/"]


def _rows(stats: Path, request_type: str) -> list[dict[str, str]]:
    with stats.open(newline="") as f:
        return [row for row in csv.DictReader(f) if row["Type"] == request_type]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}


def test_open_loop_arrivals_through_a_master_and_a_worker(tmp_path: Path) -> None:
    port = free_port()
    worker_log = tmp_path / "worker.log"
    common = ["OpenLoopContacts", "--arrival-rate", "4", "--model-latency", "0.02"]
    master = subprocess.Popen(
        [
            *LOCUST,
            "--master",
            "--master-bind-port",
            str(port),
            "--headless",
            "--expect-workers",
            "1",
            "-t",
            "90s",  # the shape ends the run; this bounds the workers' boot and the shape
            "--csv",
            str(tmp_path / "stats"),
            "--exit-code-on-error",
            "1",
            *common,
        ],
        cwd=REPO,
        # Two steps of one and two arrival streams, 4 s each, counted from the moment the
        # worker's stack is ready (the master waits for it).
        env=_env(LOCUST_SHAPE="step", LOCUST_SHAPE_SECONDS="8", LOCUST_SHAPE_USERS="2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    with worker_log.open("w") as log:
        worker = subprocess.Popen(
            [*LOCUST, "--worker", "--master-port", str(port), *common],
            cwd=REPO,
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        master_output, _ = master.communicate(timeout=150)
        worker.wait(timeout=90)
    finally:
        for process in (master, worker):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=60)
    output = master_output + worker_log.read_text()
    assert master.returncode == 0, output[-4000:]
    rows = _rows(tmp_path / "stats_stats.csv", "whatsapp-open")
    assert sum(int(row["Request Count"]) for row in rows) > 0, output[-4000:]
    assert sum(int(row["Failure Count"]) for row in rows) == 0, output[-4000:]
    # What the stack received, whatever had been answered when the shape ended (Locust counts
    # a request when its answer comes; the stack's report waits for every outcome): one
    # stream for 4 s and two for 4 s at 4 messages/s is 48 arrivals, bursts on top.
    received = re.search(r"^  messages\s+(\d+)$", output, re.MULTILINE)
    assert received is not None and int(received.group(1)) >= 40, output[-4000:]
    assert "PASS: every message has exactly one outcome" in output, output[-4000:]


def test_the_amqp_user_times_the_agent_service_alone(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *LOCUST,
            "--headless",
            "AgentQueueUser",
            "--stack",
            "agent",
            "--model-latency",
            "0",
            "-t",
            "20s",
            "--csv",
            str(tmp_path / "stats"),
            "--exit-code-on-error",
            "1",
        ],
        cwd=REPO,
        # Base load, a spike of three users in the middle, base load again.
        env=_env(LOCUST_SHAPE="spike", LOCUST_SHAPE_SECONDS="6", LOCUST_SHAPE_USERS="3"),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    rows = _rows(tmp_path / "stats_stats.csv", "amqp")
    assert sum(int(row["Request Count"]) for row in rows) > 0, output[-4000:]
    assert sum(int(row["Failure Count"]) for row in rows) == 0, output[-4000:]
    assert "agent-only stack" in output, output[-4000:]
