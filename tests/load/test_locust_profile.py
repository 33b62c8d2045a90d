"""The Locust profile runs headless against the whole simulated system and reports no failure.

Locust monkey-patches the interpreter for gevent, so it runs as a subprocess here.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.load, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# "private rabbitmq-server node NAME on 127.0.0.1:PORT (FOLDER)": beam.smp's command line
# names the folder, not the node.
NODE_FOLDER = re.compile(r"private rabbitmq-server node \S+ on \S+ \(([^)]+)\)")


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        if text in args:
            found.append(f"{cmdline.parent.name}: {args[:160]}")
    return found


def test_headless_run_reports_whatsapp_requests_without_failures(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        "loadtests/",
        "--headless",
        "-u",
        "5",
        "-r",
        "5",
        "-t",
        "15s",
        "--html",
        str(tmp_path / "report.html"),
        "--csv",
        str(tmp_path / "stats"),
        "--exit-code-on-error",
        "1",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=90, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]

    with (tmp_path / "stats_stats.csv").open(newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["Type"] == "whatsapp"]
    assert rows, output[-4000:]
    assert sum(int(row["Request Count"]) for row in rows) > 0
    assert sum(int(row["Failure Count"]) for row in rows) == 0, output[-4000:]
    assert (tmp_path / "report.html").stat().st_size > 0

    # The harness's report was printed and the stack is gone with Locust.
    assert "PASS: every message has exactly one outcome" in output, output[-4000:]
    node = NODE_FOLDER.search(output)
    if node is not None:  # a private broker node: none of its processes may remain
        assert _processes_mentioning(node.group(1)) == []
        assert not Path(node.group(1)).exists()
