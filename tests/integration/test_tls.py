"""TLS to the broker, on a private node with a CA and certificates this module makes.

The real agent service connects with ``amqps://`` or ``RABBITMQ_TLS=true`` and answers a
request; the broker sees its connection as TLS on the TLS port; a broker certificate from a CA
the service does not trust, or for another host, is refused. (``RABBITMQ_TLS=true`` with an
``amqp://`` URL is a start-up error: tests/unit/test_settings.py.)
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from agent_service.contract import AgentReply, ReplyStatus, Topology
from agent_service.service import AgentService
from agent_service.settings import Settings, load_settings
from harness.agent_process import service_env, service_settings
from harness.broker import PrivateNode
from harness.broker.private_node import rabbitmq_available
from harness.broker.readiness import handshake
from harness.broker.tls import CertificateAuthority
from harness.message_factory import agent_request
from harness.queue_tools import ReplyCollector, publish_requests
from harness.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERVICE_CONNECTION = "agent-service"  # the connection_name agent_service.service gives itself


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    """The CA the service is told to trust (RABBITMQ_CA_FILE)."""
    return CertificateAuthority(tmp_path_factory.mktemp("tls-ca"), "trusted test CA")


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    """A CA nobody configured: what a service pointed at the wrong CA file trusts."""
    return CertificateAuthority(tmp_path_factory.mktemp("tls-other-ca"), "other test CA")


@pytest.fixture(scope="module")
async def tls_node(ca: CertificateAuthority) -> AsyncIterator[PrivateNode]:
    """One node for the module (a boot takes seconds), its certificate for localhost and
    127.0.0.1, signed by ``ca``."""
    if not rabbitmq_available():
        pytest.skip("needs rabbitmq-server installed, to run a node with a TLS listener")
    async with PrivateNode(tls=ca.issue("server")) as node:
        yield node


@pytest.fixture(scope="module")
async def other_host_node(ca: CertificateAuthority) -> AsyncIterator[PrivateNode]:
    """A node whose certificate comes from the trusted CA but names other.example only: RabbitMQ
    has one certificate per node, so a wrong name needs a node of its own."""
    async with PrivateNode(tls=ca.issue("other-host", ("other.example",))) as node:
        yield node


@pytest.fixture
def topology() -> Topology:
    # The service declares it on start; fresh names keep the tests of the module apart.
    return Topology().renamed(f"tls{secrets.token_hex(3)}.")


def _settings(tmp_path: Path, url: str, topology: Topology, **overrides: Any) -> Settings:
    return service_settings(url, topology, agent_state_dir=str(tmp_path / "state"), **overrides)


async def _ask(url: str, topology: Topology, context: ssl.SSLContext | None) -> AgentReply:
    """Publish one request over ``url``; its reply from the webhook queue."""
    request = agent_request()
    async with (
        await aio_pika.connect(url, ssl_context=context, timeout=10) as connection,
        ReplyCollector(connection, topology.webhook_queue) as collector,
    ):
        channel = await connection.channel(publisher_confirms=True)
        await publish_requests(channel, topology, [request])
        replies = await collector.wait_for([request.messageId], timeout=20)
    return replies[request.messageId][0]


async def _service_connections(node: PrivateNode) -> list[dict[str, Any]]:
    """The broker's view of the service's connections (ssl, ssl_protocol, port, peer cert)."""
    out = await node.rabbitmqctl(
        "list_connections",
        "client_properties",
        "ssl",
        "ssl_protocol",
        "port",
        "peer_cert_subject",
        "--formatter",
        "json",
        "--silent",
    )
    rows: list[dict[str, Any]] = json.loads(out)
    return [row for row in rows if _connection_name(row) == SERVICE_CONNECTION]


def _connection_name(row: dict[str, Any]) -> str | None:
    for key, _type, value in row["client_properties"]:
        if key == "connection_name":
            return str(value)
    return None


async def _assert_service_on_tls(node: PrivateNode) -> list[dict[str, Any]]:
    connections = await _service_connections(node)
    assert connections, "the broker lists no connection of the agent service"
    for row in connections:
        assert row["ssl"] is True, row
        assert row["ssl_protocol"] in ("tlsv1.2", "tlsv1.3"), row
        assert row["port"] == node.tls_port != node.port, row
    return connections


async def test_service_answers_over_an_amqps_url(
    tls_node: PrivateNode, ca: CertificateAuthority, topology: Topology, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, tls_node.tls_url, topology, rabbitmq_ca_file=ca.cert_file)
    async with AgentService(settings):
        await _assert_service_on_tls(tls_node)
        # The test's own client goes over TLS too, trusting the same CA only.
        reply = await _ask(
            tls_node.tls_url, topology, ssl.create_default_context(cafile=ca.cert_file)
        )
    assert reply.status is ReplyStatus.SUCCESS
    assert reply.response.text.strip()


async def test_service_answers_with_rabbitmq_tls_and_the_five_settings(
    tls_node: PrivateNode, ca: CertificateAuthority, topology: Topology, tmp_path: Path
) -> None:
    env = service_env("unused", topology, agent_state_dir=str(tmp_path / "state"))
    del env["RABBITMQ_URL"]
    settings = load_settings(
        **env,
        rabbitmq_url=None,  # wins over a RABBITMQ_URL the environment of the run may carry
        RABBITMQ_TLS="true",
        RABBITMQ_HOST="localhost",
        RABBITMQ_PORT=str(tls_node.tls_port),
        RABBITMQ_USER="guest",
        RABBITMQ_PASS="guest",
        RABBITMQ_VHOST="/",
        RABBITMQ_CA_FILE=str(ca.cert_file),
    )
    assert settings.amqp_url() == f"amqps://guest:guest@localhost:{tls_node.tls_port}/%2F"
    async with AgentService(settings):
        await _assert_service_on_tls(tls_node)
        reply = await _ask(tls_node.url, topology, None)  # this side may use the plain port
    assert reply.status is ReplyStatus.SUCCESS


async def test_service_presents_a_client_certificate(
    tls_node: PrivateNode, ca: CertificateAuthority, topology: Topology, tmp_path: Path
) -> None:
    client = ca.issue("client", ("agent-service.test",), client=True)
    settings = _settings(
        tmp_path,
        tls_node.tls_url,
        topology,
        rabbitmq_ca_file=ca.cert_file,
        rabbitmq_cert_file=client.cert_file,
        rabbitmq_key_file=client.key_file,
    )
    async with AgentService(settings):
        connections = await _assert_service_on_tls(tls_node)
    assert [row["peer_cert_subject"] for row in connections] == ["CN=agent-service.test"]


async def test_broker_refuses_a_client_certificate_from_another_ca(
    tls_node: PrivateNode, ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    # The node verifies a client certificate when one is offered (verify_peer).
    stranger = other_ca.issue("stranger", ("stranger.test",), client=True)
    context = ssl.create_default_context(cafile=ca.cert_file)
    context.load_cert_chain(stranger.cert_file, stranger.key_file)
    alerts = _unknown_ca_alerts(tls_node)
    with pytest.raises(ConnectionError):
        await handshake(tls_node.tls_url, timeout=5, ssl_context=context)
    # The client sees either the alert or a reset (TLS 1.3 sends the certificate late); the
    # node's log says which check refused it.
    await wait_until(
        lambda: _unknown_ca_alerts(tls_node) > alerts,
        timeout=5,
        what="the node to log its Unknown CA alert",
        state=lambda: tls_node.log_tail(5),
    )


def _unknown_ca_alerts(node: PrivateNode) -> int:
    return node.log_tail(100_000).count("generated SERVER ALERT: Fatal - Unknown CA")


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_node_certificate_is_valid_for_the_name_and_the_address(
    tls_node: PrivateNode, ca: CertificateAuthority, host: str
) -> None:
    url = tls_node.tls_url.replace("@localhost:", f"@{host}:")
    props = await handshake(
        url, timeout=5, ssl_context=ssl.create_default_context(cafile=ca.cert_file)
    )
    assert props["cluster_name"] == tls_node.cluster_name


# -- refusals ----------------------------------------------------------------------------------


def _verification_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure under the wrappers aio-pika and aiormq add."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


async def test_certificate_for_another_host_is_refused(
    other_host_node: PrivateNode, ca: CertificateAuthority, topology: Topology, tmp_path: Path
) -> None:
    # Control: the chain is trusted, so the name alone is what the service refuses below.
    unnamed = ssl.create_default_context(cafile=ca.cert_file)
    unnamed.check_hostname = False
    await handshake(other_host_node.tls_url, timeout=5, ssl_context=unnamed)

    settings = _settings(tmp_path, other_host_node.tls_url, topology, rabbitmq_ca_file=ca.cert_file)
    with pytest.raises(ConnectionError) as raised:
        async with AgentService(settings):
            pytest.fail("the service connected to a broker whose certificate names other.example")
    error = _verification_error(raised.value)
    assert error is not None, repr(raised.value)
    assert "hostname mismatch" in str(error.verify_message).lower(), error
    assert not await _service_connections(other_host_node)


class Exited:
    def __init__(self, code: int, stderr: str) -> None:
        self.code, self.stderr = code, stderr


@pytest.fixture(scope="module")
async def wrong_ca_run(
    tls_node: PrivateNode, other_ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Exited:
    """``python -m agent_service`` told to trust a CA that did not sign the broker's certificate:
    what a user sees."""
    topology = Topology().renamed(f"tls{secrets.token_hex(3)}.")
    state = tmp_path_factory.mktemp("wrong-ca-state")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "AMQP_"))}
    env = inherited | service_env(
        tls_node.tls_url, topology, rabbitmq_ca_file=other_ca.cert_file, agent_state_dir=state
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent_service",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail("agent-service kept running: it connected although it trusts another CA")
    assert process.returncode is not None
    return Exited(process.returncode, stderr.decode(errors="replace"))


def test_wrong_ca_stops_the_service_with_a_tls_error(wrong_ca_run: Exited) -> None:
    assert wrong_ca_run.code == 3, wrong_ca_run.stderr
    assert "a TLS certificate this service does not trust" in wrong_ca_run.stderr
    assert "Traceback" not in wrong_ca_run.stderr, wrong_ca_run.stderr


def test_wrong_ca_message_names_the_setting_to_fix(wrong_ca_run: Exited) -> None:
    stderr = wrong_ca_run.stderr
    assert "RABBITMQ_CA_FILE" in stderr, stderr
    assert "_ssl.c" not in stderr and "[Errno" not in stderr, stderr
