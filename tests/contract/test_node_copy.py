"""contracts/node works after a copy into another repository: nothing in it reaches back into
this one. The copy (without node_modules, which is linked: the same installed packages) runs
its whole suite with the pact files and the AsyncAPI document given by configuration."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import pacts
from harness.broker import Broker

pytestmark = pytest.mark.contract

NODE_DIR = pacts.PACTS_DIR.parent / "node"


def _copy(node_project: Path, into: Path) -> Path:
    copy = into / "node-service" / "contract-tests"
    shutil.copytree(node_project, copy, ignore=shutil.ignore_patterns("node_modules"))
    (copy / "node_modules").symlink_to(node_project / "node_modules", target_is_directory=True)
    return copy


def _run(copy: Path, args: list[str], extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PACT_DO_NOT_TRACK": "true", **extra}
    for name in ("PACT_VERIFY_FROM_BROKER", "BROKEN_PUBLISHER", "NODE_TEST_CONTEXT", "PACT_UPDATE"):
        env.pop(name, None)
    return subprocess.run(
        args, cwd=copy, env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def test_a_copy_outside_the_repo_runs_its_suite_from_configuration(
    node_project: Path, tmp_path: Path, broker: Broker
) -> None:
    # The other repository keeps its own copies of the contract files, somewhere else.
    contract = tmp_path / "node-service" / "contract"
    shutil.copytree(pacts.PACTS_DIR, contract / "pacts")
    shutil.copy(pacts.PACTS_DIR.parent / "asyncapi.yaml", contract / "asyncapi.yaml")
    copy = _copy(node_project, tmp_path)
    node = shutil.which("node")
    assert node is not None
    tests = sorted(str(p.relative_to(copy)) for p in copy.glob("test/*.test.js"))
    config = {
        "PACT_DIR": str(contract / "pacts"),
        "ASYNCAPI_FILE": str(contract / "asyncapi.yaml"),
        "AMQP_TEST_URL": broker.url,  # the connection example connects for real
    }
    done = _run(copy, [node, "--test", *tests], config)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert "# fail 0" in done.stdout and "# skipped 0" in done.stdout, done.stdout[-2000:]
    validated = _run(copy, [node, "scripts/asyncapi-validate.mjs"], config)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "contract/asyncapi.yaml: valid" in validated.stdout, validated.stdout
