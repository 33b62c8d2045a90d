"""The fault links of harness/network.py on real sockets: an echo server on loopback, and an
AMQP connection to the session broker through a link."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator

import aio_pika
import pytest

from harness.broker import Broker
from harness.network import FaultLink, LinkShape, Network
from harness.waiting import wait_until

pytestmark = pytest.mark.unit


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    writer.close()


@pytest.fixture
async def echo_link() -> AsyncIterator[FaultLink]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, FaultLink("echo", "127.0.0.1", port, seed=1) as link:
        yield link


async def _open(link: FaultLink) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(link.host, link.port)


async def test_bytes_pass_a_clear_link(echo_link: FaultLink) -> None:
    reader, writer = await _open(echo_link)
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
    writer.close()


async def test_a_blackhole_holds_bytes_and_keeps_the_connection_until_healed(
    echo_link: FaultLink,
) -> None:
    reader, writer = await _open(echo_link)
    await echo_link.blackhole()
    writer.write(b"held")
    answer = asyncio.ensure_future(reader.readexactly(4))
    await asyncio.sleep(0.3)  # a window in which nothing may arrive (no timing is asserted)
    assert not answer.done()
    assert echo_link.connections == 1 and not writer.is_closing()
    await echo_link.heal()
    assert await asyncio.wait_for(answer, 5) == b"held"
    writer.close()


async def test_heal_cuts_a_connection_whose_end_gave_up_with_what_it_held(
    echo_link: FaultLink,
) -> None:
    # The client gives up while its request is held (a timeout): after the heal the request
    # must not reach the server, as TCP never delivers an aborted peer's segments.
    received: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(100))
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    async with server, FaultLink("rec", "127.0.0.1", server.sockets[0].getsockname()[1]) as link:
        _, writer = await _open(link)
        await wait_until(lambda: link.connections == 1, timeout=5, what="the link's connection")
        await link.blackhole()
        writer.write(b"late request")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.2)  # the proxy reads the FIN (no timing is asserted)
        await link.heal()
        await wait_until(lambda: link.connections == 0, timeout=5, what="the stale cut")
        await asyncio.sleep(0.2)
    assert received in ([], [b""]), received


async def test_latency_and_bandwidth_slow_each_chunk(echo_link: FaultLink) -> None:
    reader, writer = await _open(echo_link)
    echo_link.shape(latency=0.2, jitter=0.05)
    began = time.monotonic()
    writer.write(b"x")
    await asyncio.wait_for(reader.readexactly(1), 5)
    # Two passes through the link (there and back), each at least latency - jitter.
    assert time.monotonic() - began >= 2 * 0.15
    echo_link.clear()
    assert echo_link.current_shape == LinkShape()
    writer.close()


def test_a_chunk_waits_its_size_over_the_bandwidth() -> None:
    shape = LinkShape(latency=0.01, bandwidth=1000)
    assert shape.delay(500, random.Random(0)) == pytest.approx(0.51)
    with pytest.raises(ValueError, match="bandwidth"):
        LinkShape(bandwidth=0)


async def test_reset_closes_every_connection_and_serves_new_ones(echo_link: FaultLink) -> None:
    reader, writer = await _open(echo_link)
    writer.write(b"up")  # a round trip: the link's connection to the server is made
    assert await asyncio.wait_for(reader.readexactly(2), 5) == b"up"
    await echo_link.reset()
    assert await asyncio.wait_for(reader.read(10), 5) == b""
    reader2, writer2 = await _open(echo_link)
    writer2.write(b"again")
    assert await asyncio.wait_for(reader2.readexactly(5), 5) == b"again"
    writer.close()
    writer2.close()


def test_route_keeps_credentials_path_and_query() -> None:
    link = FaultLink("x", "127.0.0.1", 5672)
    routed = link.route("amqp://user@127.0.0.1:5672/%2Fv?heartbeat=2")
    assert routed == f"amqp://user@{link.host}:{link.port}/%2Fv?heartbeat=2"
    assert link.route("http://127.0.0.1:9/api").startswith(f"http://{link.host}:{link.port}/")


@pytest.mark.e2e
async def test_an_amqp_connection_through_a_link_survives_a_blackhole_shorter_than_its_heartbeat(
    broker: Broker,
) -> None:
    async with Network(seed=3) as network:
        link = await network.add("client", broker.url)
        connection = await aio_pika.connect(link.route(broker.url), heartbeat=10, timeout=10)
        async with connection:
            channel = await connection.channel()
            await network.blackhole()
            declared = asyncio.ensure_future(channel.declare_queue(exclusive=True))
            await asyncio.sleep(0.5)
            assert not declared.done()
            await network.heal()
            queue = await asyncio.wait_for(declared, 10)
            assert queue.name and not connection.is_closed
