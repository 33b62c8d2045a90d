"""The Node project in contracts/node (pact-js, the AsyncAPI parser and diff), installed once."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.contract_node import NODE_DIR

INSTALLED = NODE_DIR / "node_modules" / ".package-lock.json"


@pytest.fixture(scope="session")
def node_project() -> Path:
    """contracts/node, after `npm ci` when node_modules is missing or older than the lock file
    (it works offline from npm's cache); skips when Node.js is not installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are not installed")
    lock = NODE_DIR / "package-lock.json"
    if not INSTALLED.exists() or INSTALLED.stat().st_mtime < lock.stat().st_mtime:
        done = subprocess.run(
            [npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            env={**os.environ, "PACT_DO_NOT_TRACK": "true"},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, f"npm ci failed in {NODE_DIR}:\n{done.stdout}{done.stderr}"
    return NODE_DIR
