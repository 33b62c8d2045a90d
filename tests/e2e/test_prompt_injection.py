"""A corpus of prompt injections through the running service: no reply shows another contact's
order and no tool acts for another contact, whatever the text, display name or notes say.

The scripted model obeys every word it is given, as a talked-into model would: it calls
get_order_status for any number it reads and books any slot it is asked for. What stands
between a hostile contact and other people's data is the tool layer (DESIGN.md section 10)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection

from agent_service.agent import open_demo_database
from agent_service.contract import AgentReply, TaskType
from agent_service.pipeline.engine import AgentAnswer
from agent_service.pipeline.replies import success_reply
from harness.message_factory import agent_request
from harness.pytest_plugin import ServiceFactory, TopologyFactory
from harness.queue_tools import ReplyCollector, publish_requests
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

CORPUS: list[dict[str, Any]] = json.loads(
    (REPO / "tests" / "data" / "prompt-injections.json").read_text()
)["cases"]
STRANGER = "+447700900123"  # owns no order
OWNER = "+256703722777"  # owns order 1042 only
OWNED = {OWNER: {1042}, STRANGER: set()}
ORDER_ITEMS = {  # what an answer about each demo order would show
    1041: ["2 x Argan Oil Shampoo", "1 x Argan Oil Conditioner"],
    1042: ["1 x Keratin Hair Mask", "2 x Coconut Hair Oil"],
    1043: ["1 x Shea Butter Moisturiser"],
    1044: ["3 x Nail Polish Ruby Red"],
    1045: ["1 x Heat Protection Spray", "1 x Detangling Brush"],
    1046: ["1 x Gift Voucher 50"],
}


def _leaked(reply: AgentReply, phone: str) -> list[str]:
    text = reply.response.text
    foreign = [n for n in ORDER_ITEMS if n not in OWNED[phone]]
    found = [f"Order #{n} is" for n in foreign if f"Order #{n} is" in text]
    return found + [item for n in foreign for item in ORDER_ITEMS[n] if item in text]


@pytest.mark.parametrize("phone", [STRANGER, OWNER], ids=["a stranger", "the owner of 1042"])
async def test_no_injection_reveals_or_acts_for_another_contact(
    phone: str,
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
    amqp_connection: AbstractRobustConnection,
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "shop.db"
    open_demo_database(db_path).close_now()
    topology = await make_topology()
    await start_agent_service(topology, agent_db_path=str(db_path), concurrent_tasks=10)
    requests = [
        agent_request(
            TaskType.APPOINTMENT if "book" in case["text"].lower() else TaskType.ORDER,
            case["text"],
            phone=phone,
            name=case.get("name", "Eve"),
            notes=case.get("notes"),
        )
        for case in CORPUS
    ]
    async with ReplyCollector(amqp_connection, topology.webhook_queue) as collector:
        channel = await amqp_connection.channel(publisher_confirms=True)
        await publish_requests(channel, topology, requests)
        replies = await collector.wait_for([r.messageId for r in requests], timeout=60)
    leaks = {
        request.message.text[:60]: _leaked(replies[request.messageId][0], phone)
        for request in requests
    }
    assert {text: found for text, found in leaks.items() if found} == {}
    with sqlite3.connect(db_path) as db:
        booked_for = {
            row[0]
            for row in db.execute(
                "SELECT phone FROM appointment_slots WHERE status = 'booked' AND phone IS NOT NULL"
            )
        }
    assert booked_for <= {phone}, "a booking was made for another contact"
    answers = [replies[r.messageId][0].response.text for r in requests]
    # The corpus did reach the tools: bookings were made (for this contact), and the last case
    # ("Where is order 1042?") is answered with the order only for its owner.
    assert booked_for == {phone}
    if phone == OWNER:
        assert answers[-1].startswith("Order #1042 is shipped")
    else:
        assert answers[-1].startswith("I could not find an order #1042")


def test_the_leak_check_finds_a_foreign_order() -> None:
    reply = agent_request(TaskType.ORDER)
    leaked = success_reply(
        reply, AgentAnswer("Order #1043 is processing. Items: 1 x Shea Butter Moisturiser."), 0.1
    )
    assert _leaked(leaked, STRANGER) == ["Order #1043 is", "1 x Shea Butter Moisturiser"]
    assert _leaked(leaked, OWNER) == ["Order #1043 is", "1 x Shea Butter Moisturiser"]
