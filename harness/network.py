"""Network faults at the seams: TCP links a party reaches a service through.

    async with FaultLink("agent-1", "127.0.0.1", broker_port) as link:
        url = link.route(broker_url)        # the same URL, host and port of the link
        await link.blackhole()              # bytes held both ways, connections kept open
        await link.heal()                   # held bytes flow on; peers that gave up are cut
        link.shape(latency=0.05, jitter=0.02, bandwidth=64_000)
        await link.reset()                  # every connection through the link closed

A link is aiomisc's ``TCPProxy`` (the proxy aio-pika's own tests use, a maintained library
rather than one of our own) carrying one content processor per direction, which applies the
link's state to every chunk it forwards:

- **blackhole**: the chunk waits until the link heals. Connections stay open and nothing is
  refused, as when a router drops packets and TCP keeps retransmitting: a blackhole shorter
  than the heartbeat timeout is survived with no reconnect; a longer one makes both ends drop
  the connection (the broker then requeues its unacked deliveries). A reconnect into a
  blackholed link connects and then hangs in the AMQP handshake, like a real one.
- **heal**: before the held chunks move on, every connection whose end has given up
  (closed, reset) while it was held is cut together with what it held. TCP does the same: a
  peer that aborted never gets its unacknowledged segments delivered later. Without this, a
  request the client had already timed out on would reach the server after the heal.
- **latency and jitter**: each chunk waits ``latency`` plus a uniform draw in ``±jitter``
  seconds (seeded). Chunks of a connection keep their order, so the wait also caps a stream at
  one chunk per latency, which for AMQP's small frames is what a long link does too.
- **bandwidth**: each chunk also waits ``len(chunk) / bandwidth`` seconds, a limit in bytes per
  second per connection and direction.
- **reset**: ``TCPProxy.disconnect_all`` closes every connection through the link, both ends.

Links never own the service behind them: closing a link closes its connections and its
listening socket only.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from aiomisc.pytest import TCPProxy, TCPProxyClient

from agent_service.lifecycle import Lifecycle


@dataclass(frozen=True)
class LinkShape:
    """What a link does to the bytes it forwards, both ways (the defaults: nothing)."""

    latency: float = 0.0  # seconds added to each chunk
    jitter: float = 0.0  # ± seconds drawn uniformly around the latency
    bandwidth: float | None = None  # bytes per second per connection and direction

    def __post_init__(self) -> None:
        if self.latency < 0 or self.jitter < 0:
            raise ValueError("latency and jitter must be >= 0 seconds")
        if self.bandwidth is not None and self.bandwidth <= 0:
            raise ValueError("bandwidth must be > 0 bytes per second (None: unlimited)")

    def delay(self, size: int, rng: random.Random) -> float:
        """Seconds a chunk of ``size`` bytes waits on this link."""
        wait = self.latency + (rng.uniform(-self.jitter, self.jitter) if self.jitter else 0.0)
        if self.bandwidth is not None:
            wait += size / self.bandwidth
        return max(0.0, wait)


CLEAR = LinkShape()


class _Proxy(TCPProxy):
    """TCPProxy, with a connection to a target that is down refused quietly.

    aiomisc lets the target's connect error escape the connection handler, so asyncio logs
    "Unhandled exception in client_connected_cb" for each attempt, twice a second while a
    broker node is down; the client is cut either way (as a refused connect would be)."""

    async def _handle_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            await super()._handle_client(reader, writer)
        except OSError:
            self.clients -= {c for c in self.clients if c.client_writer is writer}
            writer.close()
            return
        for client in self.clients:
            if client.client_writer is writer:
                for task in client.tasks:
                    # A peer's reset ends a pipe with ConnectionResetError, which aiomisc
                    # never retrieves: asyncio would log "exception was never retrieved".
                    task.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future[object]) -> None:
    if not task.cancelled():
        task.exception()


def _closed_by_peer(reader: asyncio.StreamReader | None) -> bool:
    # ``at_eof()`` alone stays false while unread bytes wait in the buffer: an AMQP client
    # that sent heartbeats into the blackhole before it gave up. The EOF flag is what tells.
    if reader is None:
        return False
    return reader.at_eof() or reader.exception() is not None or bool(getattr(reader, "_eof", 0))


def _end_gone(reader: asyncio.StreamReader | None, writer: asyncio.StreamWriter | None) -> bool:
    return _closed_by_peer(reader) or (writer is not None and writer.is_closing())


def _gave_up(client: TCPProxyClient) -> bool:
    """One end of the connection closed or reset it while the link held its bytes."""
    return _end_gone(client.client_reader, client.client_writer) or _end_gone(
        client.server_reader, client.server_writer
    )


def _both_gave_up(client: TCPProxyClient) -> bool:
    return _end_gone(client.client_reader, client.client_writer) and _end_gone(
        client.server_reader, client.server_writer
    )


class FaultLink(Lifecycle):
    """A TCP link to ``target_host:target_port`` on a loopback port of its own."""

    def __init__(self, name: str, target_host: str, target_port: int, *, seed: int = 0) -> None:
        self.name = name
        self.target = (target_host, target_port)
        self._proxy = _Proxy(target_host, target_port)
        self._open = asyncio.Event()
        self._open.set()
        self._shape = CLEAR
        self._rng = random.Random(f"{seed}:{name}")
        self._held: set[TCPProxyClient] = set()
        self.cut_by_heal = 0  # connections whose ends gave up during a blackhole, over all heals
        self.delayed_chunks = 0  # chunks that waited for latency or bandwidth

    async def _start(self, stack: AsyncExitStack) -> None:
        self._proxy.set_content_processors(self._forward, self._forward)
        await self._proxy.start(timeout=10)
        stack.push_async_callback(self._close)

    async def _close(self) -> None:
        self._open.set()  # nothing stays parked on a link that is going away
        await self._proxy.close(timeout=10)

    @property
    def host(self) -> str:
        return str(self._proxy.proxy_host)

    @property
    def port(self) -> int:
        return int(self._proxy.proxy_port)

    def route(self, url: str) -> str:
        """``url`` (amqp://, http://, ...) with its host and port replaced by the link's; the
        scheme, credentials, path and query are kept."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@" if credentials else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{self.host}:{self.port}"))

    @property
    def blackholed(self) -> bool:
        return not self._open.is_set()

    @property
    def current_shape(self) -> LinkShape:
        return self._shape

    @property
    def connections(self) -> int:
        return len(self._proxy.clients)

    async def blackhole(self) -> None:
        """Hold every byte both ways from now on, keeping the connections open."""
        if not self.blackholed:
            self._held = set(self._proxy.clients)
        self._open.clear()

    def dropped_by_both_ends(self) -> bool:
        """Every connection open when the blackhole began has been given up by both its ends
        (their heartbeats ran out); true at once when there were none."""
        return all(_both_gave_up(client) for client in self._held)

    async def heal(self) -> int:
        """Let bytes through again, after cutting the connections whose ends gave up; returns
        how many were cut."""
        stale = [client for client in self._proxy.clients if _gave_up(client)]
        await asyncio.gather(*(client.close() for client in stale), return_exceptions=True)
        self.cut_by_heal += len(stale)
        self._held = set()
        self._open.set()
        return len(stale)

    def shape(
        self, *, latency: float = 0.0, jitter: float = 0.0, bandwidth: float | None = None
    ) -> None:
        """Latency, jitter and a bandwidth limit for every chunk from now on."""
        self._shape = LinkShape(latency, jitter, bandwidth)

    def clear(self) -> None:
        """No latency, no bandwidth limit (a blackhole is left as it is: ``heal`` ends it)."""
        self._shape = CLEAR

    async def reset(self) -> None:
        """Close every connection through the link, both ends; new ones are served."""
        await self._proxy.disconnect_all()

    async def _forward(self, chunk: bytes) -> bytes:
        await self._open.wait()
        wait = self._shape.delay(len(chunk), self._rng)
        if wait > 0:
            self.delayed_chunks += 1
            await asyncio.sleep(wait)
            await self._open.wait()  # a blackhole that began meanwhile holds this chunk too
        return chunk

    def __repr__(self) -> str:
        state = "blackholed" if self.blackholed else "open"
        return f"<FaultLink {self.name} :{self.port} -> {self.target[0]}:{self.target[1]} {state}>"


class Network(Lifecycle):
    """The links of one run, by name; they start and stop together."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.links: dict[str, FaultLink] = {}
        self._stack: AsyncExitStack | None = None

    async def _start(self, stack: AsyncExitStack) -> None:
        self._stack = stack
        stack.callback(self._forget)

    def _forget(self) -> None:
        self._stack = None
        self.links.clear()

    async def add(self, name: str, target_url: str) -> FaultLink:
        """A new running link to the host and port of ``target_url``."""
        if self._stack is None:
            raise RuntimeError("the network is not running; use `async with Network()`")
        if name in self.links:
            raise ValueError(f"a link named {name!r} exists already")
        parts = urlsplit(target_url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"{target_url!r} names no host and port to link to")
        link = FaultLink(name, parts.hostname, parts.port, seed=self.seed)
        await self._stack.enter_async_context(link)
        self.links[name] = link
        return link

    def __getitem__(self, name: str) -> FaultLink:
        return self.links[name]

    def __iter__(self) -> Iterator[FaultLink]:
        return iter(list(self.links.values()))

    def select(self, *prefixes: str) -> list[FaultLink]:
        """The links whose names start with one of ``prefixes`` (all without any)."""
        return [link for link in self if not prefixes or link.name.startswith(prefixes)]

    async def blackhole(self, *prefixes: str) -> None:
        for link in self.select(*prefixes):
            await link.blackhole()

    async def heal(self, *prefixes: str) -> int:
        """Heal the links; how many connections were cut because their ends gave up."""
        return sum(await asyncio.gather(*(link.heal() for link in self.select(*prefixes))))

    def dropped_by_both_ends(self, *prefixes: str) -> bool:
        return all(link.dropped_by_both_ends() for link in self.select(*prefixes))

    def shape(
        self,
        *prefixes: str,
        latency: float = 0.0,
        jitter: float = 0.0,
        bandwidth: float | None = None,
    ) -> None:
        for link in self.select(*prefixes):
            link.shape(latency=latency, jitter=jitter, bandwidth=bandwidth)

    def clear(self, *prefixes: str) -> None:
        for link in self.select(*prefixes):
            link.clear()

    async def restore(self) -> None:
        """Every link open and clear: the end of every fault."""
        self.clear()
        await self.heal()

    @property
    def cut_by_heal(self) -> int:
        return sum(link.cut_by_heal for link in self)
