"""Verify a live broker against the topology, without changing it; export a definitions file.

AMQP 0-9-1 has no "describe queue" call, so verification asks the broker itself: a passive
declare tells whether a queue or exchange exists, and an active declare with the expected
settings either succeeds (the broker already agrees, so nothing changes) or fails with 406
PRECONDITION_FAILED naming the first differing argument and both values. Each answer is
recorded, the broker's own value is taken into the next declare, and the loop repeats until
the declare passes, which lists every difference while never creating or altering anything.
Bindings cannot be read over AMQP and are not verified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from aio_pika.abc import AbstractConnection
from aiormq.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed

from agent_service.contract.topology import ExchangeSpec, QueueSpec, Topology

_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<arg>[^']+)' for (?:queue|exchange) '.*?' in vhost '.*?': "
    r"received (?P<received>.+?) but current is (?P<current>.+)$"
)
_VALUE = re.compile(r"^(?:the value )?'(?P<value>.*?)'(?: of type '(?P<type>[^']+)')?$")
_NUMERIC_TYPES = {"byte", "short", "signedint", "long", "unsignedbyte", "unsignedshort",
                  "unsignedint", "long_long", "long_uint"}  # fmt: skip
_MAX_ROUNDS = 25
_TRUNCATED = object()


@dataclass(frozen=True)
class Drift:
    """One way the live broker differs from the topology."""

    kind: Literal["queue", "exchange"]
    name: str
    setting: str  # "missing", or the argument or property that differs
    expected: Any = None
    actual: Any = None

    def __str__(self) -> str:
        if self.setting == "missing":
            return f"{self.kind} '{self.name}' is missing"
        text = (
            f"{self.kind} '{self.name}': {self.setting} is {_show(self.actual)} on the broker, "
            f"expected {_show(self.expected)}"
        )
        if self.setting == "x-queue-type":
            text += (
                " (a classic/quorum profile mismatch: both sides must declare the same"
                " TOPOLOGY_PROFILE, and a queue's type changes only by deleting it)"
            )
        return text


def _show(value: Any) -> str:
    return "absent" if value is None else repr(value)


def parse_precondition(text: str) -> tuple[str, Any] | None:
    """(argument, the broker's current value) from a 406 reply text, or None."""
    match = _INEQUIVALENT.search(text)
    if match is None:
        arg = re.search(r"inequivalent arg '(?P<arg>[^']+)'", text)
        return (arg["arg"], _TRUNCATED) if arg else None
    current = match["current"]
    if len(text) >= 250 and current.endswith("..."):
        return match["arg"], _TRUNCATED
    return match["arg"], _parse_value(current)


def _parse_value(text: str) -> Any:
    text = text.strip()
    if text == "none":
        return None
    match = _VALUE.match(text)
    if match is None:
        return text
    value, kind = match["value"], match["type"]
    if value in ("true", "false") and kind is None:
        return value == "true"
    if kind in _NUMERIC_TYPES or (kind is None and re.fullmatch(r"-?\d+", value)):
        return int(value)
    return value


async def verify(connection: AbstractConnection, topology: Topology) -> list[Drift]:
    """Every queue or exchange that is missing or differs. Changes nothing on the broker."""
    drifts: list[Drift] = []
    for exchange in topology.exchanges():
        drifts += await _verify_exchange(connection, exchange)
    for queue in topology.queues():
        drifts += await _verify_queue(connection, queue)
    return drifts


async def exists(connection: AbstractConnection, kind: str, name: str) -> bool:
    """Whether the broker has this queue or exchange (a passive declare on its own channel)."""
    channel = await connection.channel()
    try:
        if kind == "queue":
            await channel.declare_queue(name, passive=True)
        else:
            await channel.get_exchange(name, ensure=True)
    except ChannelNotFoundEntity:
        return False
    await channel.close()
    return True


async def _verify_queue(connection: AbstractConnection, spec: QueueSpec) -> list[Drift]:
    if not await exists(connection, "queue", spec.name):
        return [Drift("queue", spec.name, "missing")]
    expected: dict[str, Any] = {"durable": spec.durable, "auto_delete": spec.auto_delete}
    # Explicitly typed, so that a quorum queue where a classic one is expected is named as such.
    expected |= {"x-queue-type": "classic"} | spec.arguments
    probe = dict(expected)
    drifts: list[Drift] = []
    for _ in range(_MAX_ROUNDS):
        channel = await connection.channel()
        args = {k: v for k, v in probe.items() if k not in ("durable", "auto_delete")}
        try:
            await channel.declare_queue(
                spec.name,
                durable=probe["durable"],
                auto_delete=probe["auto_delete"],
                arguments=args,
            )
        except ChannelPreconditionFailed as exc:
            if not _record(drifts, "queue", spec.name, str(exc), expected, probe):
                break
            continue
        await channel.close()
        break
    return drifts


async def _verify_exchange(connection: AbstractConnection, spec: ExchangeSpec) -> list[Drift]:
    if not await exists(connection, "exchange", spec.name):
        return [Drift("exchange", spec.name, "missing")]
    expected: dict[str, Any] = {"type": spec.type, "durable": spec.durable,
                                "auto_delete": spec.auto_delete}  # fmt: skip
    probe = dict(expected)
    drifts: list[Drift] = []
    for _ in range(_MAX_ROUNDS):
        channel = await connection.channel()
        try:
            await channel.declare_exchange(
                spec.name, probe["type"], durable=probe["durable"], auto_delete=probe["auto_delete"]
            )
        except ChannelPreconditionFailed as exc:
            if not _record(drifts, "exchange", spec.name, str(exc), expected, probe):
                break
            continue
        await channel.close()
        break
    return drifts


def _record(
    drifts: list[Drift],
    kind: Literal["queue", "exchange"],
    name: str,
    reply: str,
    expected: dict[str, Any],
    probe: dict[str, Any],
) -> bool:
    parsed = parse_precondition(reply)
    if parsed is None:
        drifts.append(Drift(kind, name, "unreadable 406", None, reply))
        return False
    setting, actual = parsed
    if setting == "x-queue-type" and actual is None:
        actual = "classic"  # declared without the argument: RabbitMQ's default type
    if actual is _TRUNCATED:
        # RabbitMQ cuts reply texts at 255 bytes: the setting is known, its value is not, so
        # the loop cannot go on to the next difference.
        drifts.append(Drift(kind, name, setting, expected.get(setting), "(unreadable)"))
        return False
    drifts.append(Drift(kind, name, setting, expected.get(setting), actual))
    # Declare with the broker's own value next time, to reach the next difference.
    if actual is None:
        probe.pop(setting, None)
    else:
        probe[setting] = actual
    return True


def definitions(topology: Topology, vhost: str = "/") -> dict[str, Any]:
    """A RabbitMQ definitions document (``rabbitmqctl import_definitions``), without users."""
    return {
        "rabbitmq_version": "3.10.8",
        "vhosts": [{"name": vhost}],
        "exchanges": [
            {
                "name": ex.name,
                "vhost": vhost,
                "type": ex.type,
                "durable": ex.durable,
                "auto_delete": ex.auto_delete,
                "internal": False,
                "arguments": {},
            }
            for ex in topology.exchanges()
        ],
        "queues": [
            {
                "name": q.name,
                "vhost": vhost,
                "durable": q.durable,
                "auto_delete": q.auto_delete,
                "arguments": q.arguments,
            }
            for q in topology.queues()
        ],
        "bindings": [
            {
                "source": b.exchange,
                "vhost": vhost,
                "destination": b.queue,
                "destination_type": "queue",
                "routing_key": b.routing_key,
                "arguments": {},
            }
            for b in topology.bindings()
        ],
    }
