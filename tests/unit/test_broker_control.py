"""Choosing a broker, and what a private node leaves behind when it cannot start."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.broker import (
    BrokerCluster,
    BrokerError,
    ExternalBroker,
    ExternalCluster,
    PrivateNode,
    broker_urls,
    choose_broker,
)
from harness.broker.base import redact
from harness.broker.private_node import rabbitmq_available
from harness.waiting import wait_until

pytestmark = pytest.mark.unit


def test_url_alone_selects_an_external_broker() -> None:
    broker = choose_broker({"HARNESS_BROKER_URL": "amqp://u:secret@127.0.0.1:5999/"})
    assert isinstance(broker, ExternalBroker)
    assert "secret" not in broker.describe()


def test_explicit_choice_wins_and_bad_choice_is_named() -> None:
    assert isinstance(choose_broker({"HARNESS_BROKER": "external"}), ExternalBroker)
    with pytest.raises(BrokerError, match="HARNESS_BROKER='rabbit'"):
        choose_broker({"HARNESS_BROKER": "rabbit"})


@pytest.mark.skipif(not rabbitmq_available(), reason="rabbitmq-server is not installed")
def test_auto_prefers_a_private_node() -> None:
    assert isinstance(choose_broker({}), PrivateNode)


def test_redact_hides_the_password() -> None:
    assert redact("amqp://admin:s3cret@host:5672/") == "amqp://admin:***@host:5672/"


async def test_external_broker_that_does_not_answer_fails_within_its_timeout() -> None:
    broker = ExternalBroker("amqp://guest:guest@127.0.0.1:9/", ready_timeout=0.5)
    with pytest.raises(BrokerError, match="waiting for an AMQP handshake"):
        async with broker:
            pass


def _beam_processes(folder: Path) -> list[str]:
    # -ww: unlimited width; without a terminal ps cuts the line before the folder appears.
    out = subprocess.run(["ps", "-ww", "-eo", "args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(folder) in line and "beam" in line]


@pytest.mark.skipif(not rabbitmq_available(), reason="rabbitmq-server is not installed")
async def test_a_node_that_fails_to_boot_reports_its_log_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    node = PrivateNode(boot_timeout=30, extra_config="this is not = a valid setting\n")
    folder = node.folder
    with pytest.raises(BrokerError) as caught:
        async with node:
            pass
    message = str(caught.value)
    assert "exited before it was ready" in message or "AMQP handshake" in message
    assert "console.log" in str(caught.value)  # the node's own log is in the error
    assert not folder.exists()
    assert _beam_processes(folder) == []
    assert not node.is_running()


@pytest.mark.skipif(not rabbitmq_available(), reason="rabbitmq-server is not installed")
async def test_process_control_is_refused_on_an_external_broker() -> None:
    broker = ExternalBroker(os.environ.get("HARNESS_BROKER_URL", "amqp://guest:guest@127.0.0.1/"))
    assert not hasattr(broker, "kill") and not hasattr(broker, "stop")


def test_cluster_choice_and_urls_of_a_real_cluster() -> None:
    urls = "amqp://u:secret@10.0.0.1:5672/, amqp://u:secret@10.0.0.2:5672/"
    real = choose_broker({"HARNESS_BROKER_URLS": urls})
    assert isinstance(real, ExternalCluster)
    assert real.urls == ["amqp://u:secret@10.0.0.1:5672/", "amqp://u:secret@10.0.0.2:5672/"]
    assert broker_urls(real) == real.urls
    assert "secret" not in real.describe()
    assert isinstance(
        choose_broker({"HARNESS_BROKER": "cluster", "HARNESS_BROKER_URLS": urls}), ExternalCluster
    )
    if rabbitmq_available():
        cluster = choose_broker({"HARNESS_BROKER": "cluster"})
        assert isinstance(cluster, BrokerCluster)
        assert len(set(broker_urls(cluster))) == 3


@pytest.mark.skipif(not rabbitmq_available(), reason="rabbitmq-server is not installed")
async def test_a_cluster_that_fails_to_start_leaves_no_node_behind() -> None:
    cluster = BrokerCluster()
    taken = cluster.nodes[1]
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", taken.port))
        blocker.listen()
        with pytest.raises(BrokerError, match=f"port {taken.port}"):
            async with cluster:
                pass
    for node in cluster.nodes:
        assert not node.is_running()
        assert not node.folder.exists()
        assert _beam_processes(node.folder) == []


_CRASHING_PARENT = """
import asyncio
from harness.broker import PrivateNode

async def main():
    node = PrivateNode()
    print(node.folder, flush=True)
    await node.__aenter__()
    await asyncio.sleep(600)

asyncio.run(main())
"""


@pytest.mark.skipif(not rabbitmq_available(), reason="rabbitmq-server is not installed")
async def test_a_node_dies_with_the_test_process_that_started_it() -> None:
    # The parent is killed while its node boots: nothing may go on running without it.
    parent = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_PARENT], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        folder = Path(parent.stdout.readline().strip())
        await wait_until(lambda: _beam_processes(folder) != [], timeout=30, what="the VM")
    finally:
        parent.kill()
        parent.wait()
    await wait_until(lambda: _beam_processes(folder) == [], timeout=10, what="the VM gone")
    shutil.rmtree(folder, ignore_errors=True)
