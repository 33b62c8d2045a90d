"""Provisioning a live broker (harness topology declare / migrate / export, --from-env,
--vhost) on a private node: what exists is never changed by declare, and migrate carries
every message over."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import secrets
import sys
from dataclasses import replace
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection

from agent_service.contract.topology import Topology, declare
from harness import cli
from harness.agent_process import service_env
from harness.broker import PrivateNode
from harness.pytest_plugin import TopologyFactory
from harness.topology_check import Drift, exists, verify
from harness.topology_migrate import HOLDING_SUFFIX, MigrationRefused, migrate
from harness.topology_provision import declare_missing, with_vhost

pytestmark = pytest.mark.contract


async def _cli(*argv: str) -> tuple[int, str]:
    """``harness ARGV`` in a thread (it runs its own event loop), with what it printed."""
    out = io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out):
            return cli.main(list(argv))

    code = await asyncio.to_thread(run)
    return code, out.getvalue()


def _env_of(topology: Topology, url: str) -> dict[str, str]:
    """The agent service's variables for ``topology`` (names, TTLs, retry delays)."""
    env = service_env(url, topology)
    return {k: v for k, v in env.items() if k.startswith(("RABBITMQ_", "AGENT_", "WEBHOOK_",
            "DLX_", "MESSAGE_TTL", "MAX_RETRIES", "RETRY_"))}  # fmt: skip


async def _publish(connection: AbstractRobustConnection, queue: str, count: int) -> None:
    channel = await connection.channel(publisher_confirms=True)
    for n in range(count):
        message = aio_pika.Message(
            f"body {queue} {n}".encode(),
            message_id=f"id-{n}",
            headers={"x-test": n},
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await channel.default_exchange.publish(message, routing_key=queue)
    await channel.close()


async def _drain(connection: AbstractRobustConnection, queue: str) -> list[tuple[bytes, str, int]]:
    channel = await connection.channel()
    q = await channel.declare_queue(queue, passive=True)
    got = []
    while (message := await q.get(no_ack=True, fail=False)) is not None:
        headers = message.headers or {}
        got.append((message.body, str(message.message_id), int(str(headers["x-test"]))))
    await channel.close()
    return got


async def test_declare_creates_what_is_missing_and_changes_nothing_that_exists(
    make_topology: TopologyFactory, amqp_connection: AbstractRobustConnection
) -> None:
    topology = await make_topology(declared=False)
    channel = await amqp_connection.channel()
    await channel.declare_queue(
        topology.agent_queue, durable=True, arguments={"x-message-ttl": 1234}
    )

    result = await declare_missing(amqp_connection, topology)

    total = len(topology.queues()) + len(topology.exchanges())
    assert result.kept == [f"queue '{topology.agent_queue}'"]
    assert len(result.created) == total - 1
    # The existing queue kept its TTL and lacks its DLX: reported, not changed.
    assert {(d.setting, d.actual) for d in result.drifts} == {
        ("x-message-ttl", 1234),
        ("x-dead-letter-exchange", None),
    }
    assert await verify(amqp_connection, topology) == result.drifts
    again = await declare_missing(amqp_connection, topology)
    assert again.created == [] and len(again.kept) == total


async def test_export_declare_and_verify_with_the_services_settings_in_another_vhost(
    private_node: PrivateNode,
    make_topology: TopologyFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Custom names, TTL and retry delays, as a deployment would set them.
    topology = replace(
        await make_topology(declared=False),
        agent_ttl_ms=120_000,
        agent_retry_delays_ms=(5_000, 10_000),
        webhook_retry_delays_ms=(5_000, 10_000),
    )
    for key, value in _env_of(topology, private_node.url).items():
        monkeypatch.setenv(key, value)
    vhost, path = f"ops-{secrets.token_hex(3)}", tmp_path / "defs.json"
    code, _ = await _cli("topology", "export", "--from-env", "--vhost", vhost, "-o", str(path))
    assert code == 0 and [v["name"] for v in json.loads(path.read_text())["vhosts"]] == [vhost]
    # Loading the definitions makes the vhost and the whole topology in it.
    await private_node.rabbitmqctl("import_definitions", str(path))
    try:
        await private_node.rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        assert (await _cli("topology", "verify", "--from-env", "--vhost", vhost))[0] == 0
        # The built-in production values differ from these settings: that check fails.
        built_in = await _cli("topology", "verify", "--url", with_vhost(private_node.url, vhost))
        assert built_in[0] == 1
        # Nothing is in the default vhost.
        code, out = await _cli("topology", "verify", "--from-env")
        assert code == 1 and f"queue '{topology.agent_queue}' is missing" in out

        async with await aio_pika.connect(with_vhost(private_node.url, vhost)) as connection:
            await (await connection.channel()).queue_delete(topology.webhook_parking)
        code, out = await _cli("topology", "declare", "--from-env", "--vhost", vhost)
        assert code == 0, out
        assert out.splitlines()[0] == f"CREATED queue '{topology.webhook_parking}'"
        assert f"1 created, {len(topology.queues()) + 1} already there" in out
        assert f"vhost '{vhost}'" in out and "guest" not in out  # no credentials printed
    finally:
        await private_node.rabbitmqctl("delete_vhost", vhost)


async def _changed(
    make_topology: TopologyFactory, connection: AbstractRobustConnection
) -> tuple[Topology, Topology]:
    """A declared topology with messages in its work queue and first wait queue, and the same
    names with another TTL and retry delay (what a deployment changes)."""
    old = await make_topology(agent_retry_delays_ms=(60_000,), webhook_retry_delays_ms=(60_000,))
    await _publish(connection, old.agent_queue, 3)
    await _publish(connection, old.agent_retry_queue(1), 2)
    new = replace(old, agent_ttl_ms=600_000, agent_retry_delays_ms=(90_000,))
    return old, new


async def test_migrate_changes_the_arguments_and_keeps_every_message(
    make_topology: TopologyFactory, amqp_connection: AbstractRobustConnection
) -> None:
    old, new = await _changed(make_topology, amqp_connection)
    assert len(await verify(amqp_connection, new)) == 2

    result = await migrate(amqp_connection, new, say=lambda _: None)

    assert result.changed == {new.agent_queue: 3, new.agent_retry_queue(1): 2}
    assert result.remaining == [] and await verify(amqp_connection, new) == []
    work = await _drain(amqp_connection, new.agent_queue)
    assert work == [(f"body {old.agent_queue} {n}".encode(), f"id-{n}", n) for n in range(3)]
    assert len(await _drain(amqp_connection, new.agent_retry_queue(1))) == 2
    for spec in new.queues():
        assert not await exists(amqp_connection, "queue", spec.name + HOLDING_SUFFIX)
    # The DLX queue that was not changed keeps its binding: a dead letter still lands there.
    await declare(await amqp_connection.channel(), new)


async def test_migrate_refuses_a_queue_with_consumers_and_dry_run_changes_nothing(
    make_topology: TopologyFactory, amqp_connection: AbstractRobustConnection
) -> None:
    _, new = await _changed(make_topology, amqp_connection)
    before = await verify(amqp_connection, new)
    said: list[str] = []

    dry = await migrate(amqp_connection, new, dry_run=True, say=said.append)

    assert dry.changed == {} and await verify(amqp_connection, new) == before
    assert any(f"'{new.agent_queue}' (3 messages)" in line for line in said), said
    channel = await amqp_connection.channel()
    queue = await channel.get_queue(new.agent_queue, ensure=False)

    async def hold(message: object) -> None:
        return None  # never acked: the messages return to the queue when the channel closes

    tag = await queue.consume(hold, no_ack=False)
    try:
        with pytest.raises(MigrationRefused, match="1 consumer"):
            await migrate(amqp_connection, new, say=said.append)
    finally:
        await queue.cancel(tag)
        await channel.close()
    assert await verify(amqp_connection, new) == before
    assert Drift("queue", new.agent_queue, "x-message-ttl", 600_000, 300_000) in before


async def test_an_interrupted_migration_is_finished_by_the_next_run(
    make_topology: TopologyFactory, amqp_connection: AbstractRobustConnection
) -> None:
    topology = await make_topology()
    holding = topology.agent_queue + HOLDING_SUFFIX
    channel = await amqp_connection.channel()
    await channel.declare_queue(holding, durable=True)
    try:
        await _publish(amqp_connection, holding, 2)  # stranded by a run that stopped half way

        result = await migrate(amqp_connection, topology, say=lambda _: None)

        assert result.changed == {topology.agent_queue: 2}
        assert len(await _drain(amqp_connection, topology.agent_queue)) == 2
        assert not await exists(amqp_connection, "queue", holding)
    finally:
        await (await amqp_connection.channel()).queue_delete(holding)


async def _service_run(env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent_service", env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_the_service_names_an_unknown_vhost_or_a_drifted_queue_instead_of_a_traceback(
    make_topology: TopologyFactory,
    amqp_connection: AbstractRobustConnection,
    private_node: PrivateNode,
    tmp_path: Path,
) -> None:
    topology = await make_topology(declared=False)
    channel = await amqp_connection.channel()
    await channel.declare_queue(topology.agent_queue, durable=True, arguments={"x-message-ttl": 5})
    quiet = {"HEALTH_PORT": "-1", "LOG_LEVEL": "ERROR"}
    drifted = service_env(private_node.url, topology) | quiet
    unknown = service_env(with_vhost(private_node.url, "no-such-vhost"), topology) | quiet
    # Both at once: each run pays for the agent's imports (a few seconds).
    (drift_code, drift), (vhost_code, vhost) = await asyncio.gather(
        _service_run(drifted | {"AGENT_STATE_DIR": str(tmp_path / "a")}),
        _service_run(unknown | {"AGENT_STATE_DIR": str(tmp_path / "b")}),
    )
    assert (drift_code, vhost_code) == (4, 3), (drift, vhost)
    assert "Traceback" not in drift + vhost
    assert f"'{topology.agent_queue}'" in drift and "x-message-ttl" in drift
    assert "harness topology verify --from-env" in drift
    assert "'no-such-vhost'" in vhost and "RABBITMQ_VHOST" in vhost
