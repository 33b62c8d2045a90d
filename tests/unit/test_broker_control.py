"""Choosing a broker, and what a private node leaves behind when it cannot start."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.broker import BrokerError, ExternalBroker, PrivateNode, choose_broker
from harness.broker.base import redact
from harness.broker.private_node import rabbitmq_available

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
    out = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout
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
