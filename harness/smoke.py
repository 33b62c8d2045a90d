"""The broker smoke run: get a broker, declare and verify the topology, send one message of
each envelope through its queue and back out, and print what happened."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel

from agent_service.contract.amqp import reply_message, request_message
from agent_service.contract.codec import decode, validate
from agent_service.contract.messages import AgentReply, AgentRequest
from harness.broker import choose_broker
from harness.namespaces import declared, topology_for
from harness.topology_check import verify

EXAMPLES = Path(__file__).resolve().parent.parent / "contracts" / "examples"


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


async def _round_trip(
    channel: AbstractChannel, queue: str, message: aio_pika.Message
) -> aio_pika.abc.AbstractIncomingMessage:
    await channel.default_exchange.publish(message, routing_key=queue)  # confirmed
    q = await channel.get_queue(queue, ensure=False)
    for _ in range(50):
        incoming = await q.get(no_ack=False, fail=False)
        if incoming is not None:
            await incoming.ack()
            return incoming
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the message sent to {queue} did not come back out")


async def smoke(out: Any = print) -> bool:
    began = time.monotonic()
    async with choose_broker() as broker:
        out(f"broker: {broker.describe()} (ready in {time.monotonic() - began:.1f} s)")
        topology = topology_for(broker)
        connection = await aio_pika.connect(broker.url, timeout=10)
        async with connection, declared(connection, topology):
            out(f"declared: {len(topology.exchanges())} exchanges, {len(topology.queues())} queues")
            drifts = await verify(connection, topology)
            out(f"verified: {len(drifts)} differences" + "".join(f"\n  - {d}" for d in drifts))
            channel = await connection.channel(publisher_confirms=True)
            request = validate(AgentRequest, example("ag_queue.request.json"), "ag_queue request")
            reply = validate(AgentReply, example("wb_queue.reply.json"), "wb_queue reply")
            got_request = await _round_trip(channel, topology.agent_queue, request_message(request))
            got_reply = await _round_trip(channel, topology.webhook_queue, reply_message(reply))
            ok_request = decode(AgentRequest, got_request.body) == request
            ok_reply = decode(AgentReply, got_reply.body) == reply
            out(
                f"{topology.agent_queue}: request {request.messageId} sent and received "
                f"({'identical' if ok_request else 'DIFFERENT'}), type={got_request.type}"
            )
            out(
                f"{topology.webhook_queue}: reply {reply.messageId} sent and received "
                f"({'identical' if ok_reply else 'DIFFERENT'}), "
                f"correlation_id={got_reply.correlation_id}"
            )
    ok = not drifts and ok_request and ok_reply
    out(f"smoke run {'passed' if ok else 'FAILED'} in {time.monotonic() - began:.1f} s")
    return ok
