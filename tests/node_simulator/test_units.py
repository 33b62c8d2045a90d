"""The node simulator's parts on their own: routing, calling codes, the store, the ledger,
reading dead letters, and how Wasender's answers are sorted (against FakeWasender, no broker)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_service.contract.messages import TaskType
from agent_service.contract.topology import Topology
from fakes import FakeWasender, InvalidNumber, RateLimited, ServerError, SoftFailure, Timeout
from fakes.node_simulator import NodeSimulatorConfig, country_code, route_task
from fakes.node_simulator.dead_letters import read_dead_request
from fakes.node_simulator.store import OutcomeLedger, Store
from fakes.node_simulator.wasender_client import SendResult, WasenderClient, send_until_verdict
from fakes.webhooks import InboundMessage
from harness.waiting import wait_until

pytestmark = pytest.mark.unit

PHONE = "+256703722777"
OTHER = "+254712345678"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Can I book a slot for Friday?", TaskType.APPOINTMENT),
        ("I need an appointment", TaskType.APPOINTMENT),
        ("Where is my order #4411?", TaskType.ORDER),
        ("when is the delivery", TaskType.ORDER),
        ("status of #123", TaskType.ORDER),
        ("Do you have size 42?", TaskType.SEARCH),
        ("what's the price of rice", TaskType.SEARCH),
        ("find me a blue shirt", TaskType.SEARCH),
        ("Hello there", TaskType.CONVERSATION),
        ("a bookshelf, an ordinary one", TaskType.CONVERSATION),
    ],
)
def test_route_task_by_keywords(text: str, expected: TaskType) -> None:
    assert route_task(text) is expected


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("256703722777", "256"),
        ("254712345678", "254"),
        ("14155550123", "1"),
        ("447911123456", "44"),
        ("919812345678", "91"),
        ("27821234567", "27"),
        ("8801712345678", None),
    ],
)
def test_country_code_takes_the_longest_known_prefix(digits: str, expected: str | None) -> None:
    assert country_code(digits) == expected


def _inbound(message_id: str, text: str, phone: str = PHONE) -> InboundMessage:
    return InboundMessage(
        message_id, phone[1:] + "@s.whatsapp.net", phone, "Ann", text, "text", 1, "messages.upsert"
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "node.db")


def test_store_deduplicates_on_whatsapp_id_and_reads_history_oldest_first(store: Store) -> None:
    first = store.insert_inbound(_inbound("A", "one"), PHONE)
    assert first is not None
    assert store.insert_inbound(_inbound("A", "one again"), PHONE) is None
    store.set_request_id(first, "req-1")
    store.add_assistant(PHONE, "reply one", "req-1")
    current = store.insert_inbound(_inbound("B", "two"), PHONE)
    store.insert_inbound(_inbound("C", "other contact", "+254712345678"), "+254712345678")

    turns = store.history(PHONE, 10, before_id=current)
    assert [(t.role, t.text) for t in turns] == [("user", "one"), ("assistant", "reply one")]
    assert [t.text for t in store.history(PHONE, 1, before_id=current)] == ["reply one"]
    assert store.whatsapp_id_for("req-1") == "A"


def test_store_contacts_keep_settings_and_latest_name(tmp_path: Path) -> None:
    store = Store(tmp_path / "n.db", ai_enabled_by_default=False)
    store.ensure_contact(PHONE, "Ann")
    store.set_user_notes(PHONE, "VIP")
    store.ensure_contact(PHONE, None)
    contact = store.contact(PHONE)
    assert contact is not None
    assert (contact.name, contact.ai_enabled, contact.user_notes) == ("Ann", False, "VIP")


def test_ledger_allows_one_outcome_per_request(store: Store) -> None:
    ledger = OutcomeLedger(store)
    assert ledger.claim("r1")
    assert not ledger.claim("r1"), "a twin arriving while the first is active is a duplicate"
    ledger.wait("r1")
    assert not ledger.claim("r1"), "only the retry queue's copy may carry on"
    assert ledger.claim("r1", continuation=True)
    ledger.finish("r1", "reply")
    assert not ledger.claim("r1", continuation=True)
    assert store.outcomes() == {"r1": "reply"}
    assert ledger.claim("r2")
    ledger.release("r2")
    assert ledger.claim("r2"), "a released claim is free for the redelivery"


def test_read_dead_request_is_tolerant() -> None:
    body = {"messageId": "m-1", "contact": {"phoneNumber": PHONE}, "taskType": "nonsense"}
    dead = read_dead_request(json.dumps(body).encode())
    assert dead is not None
    assert (dead.request_id, dead.phone) == ("m-1", PHONE)
    by_jid = read_dead_request(b'{"contact": {"remoteJid": "256703722777@s.whatsapp.net"}}')
    assert by_jid is not None
    assert by_jid.phone == PHONE
    assert by_jid.request_id.startswith("body-sha256:")
    for unreadable in (b"not json", b"[1]", b'{"contact": {"phoneNumber": "12"}}', b"{}"):
        assert read_dead_request(unreadable) is None


def test_config_refuses_retries_without_wait_queues() -> None:
    with pytest.raises(ValueError, match="retry delay"):
        NodeSimulatorConfig("amqp://", Topology(webhook_retry_delays_ms=()), "http://x", "k", "s")


@pytest.fixture
async def wasender() -> AsyncIterator[FakeWasender]:
    async with FakeWasender(api_key="key") as fake:
        yield fake


@pytest.fixture
async def client(wasender: FakeWasender) -> AsyncIterator[WasenderClient]:
    client = WasenderClient(wasender.url, "key", timeout=0.2, rate_limit_max_wait=1)
    yield client
    await client.close()


async def test_client_sorts_answers(wasender: FakeWasender, client: WasenderClient) -> None:
    assert (await client.send(PHONE, "hi")).ok
    wasender.inject(SoftFailure(), times=1)
    wasender.inject(ServerError(503), times=1)
    wasender.inject(Timeout(), times=1)
    wasender.inject(InvalidNumber(), times=1)
    results = [await client.send(PHONE, "hi") for _ in range(4)]
    assert [(r.status, r.reason) for r in results] == [
        ("transient", "soft_failure"),
        ("transient", "server_error"),
        ("transient", "timeout"),
        ("permanent", "invalid_number"),
    ]
    bad_key = WasenderClient(wasender.url, "wrong", timeout=1, rate_limit_max_wait=1)
    unauthorised = await bad_key.send(PHONE, "hi")
    await bad_key.close()
    assert (unauthorised.status, unauthorised.reason) == ("permanent", "client_error")


@pytest.fixture
async def limited() -> AsyncIterator[FakeWasender]:
    """A fake that, like an account's rate limit, takes two sends per second and refuses more."""
    async with FakeWasender(
        api_key="key", rate_limit_per_minute=2, rate_limit_window_seconds=1.0
    ) as fake:
        yield fake


async def test_a_429_pauses_every_send_for_retry_after_capped(limited: FakeWasender) -> None:
    client = WasenderClient(limited.url, "key", timeout=5, rate_limit_max_wait=1)
    try:
        for n in (1, 2):  # the account's two sends for this second
            assert (await client.send(OTHER, f"earlier {n}")).ok
        limited.inject(RateLimited(retry_after=30), times=1)
        failures: list[SendResult] = []
        sending = asyncio.create_task(
            send_until_verdict(
                client, PHONE, "hi", attempts=0, max_retries=3, on_failure=failures.append
            )
        )
        await wait_until(lambda: bool(failures), timeout=5, what="the 429")
        assert failures[0].retry_after == 1.0, "retry_after 30 s is capped at rate_limit_max_wait"
        # Sent during the pause: it waits too. The fake refuses whatever comes before the
        # second is over, so a send that did not wait would come back rate_limited.
        other = await client.send(OTHER, "during the pause")
        verdict = await sending
    finally:
        await client.close()
    assert other.ok, "the pause holds every send of the client, not only the refused one"
    assert (verdict.action, verdict.attempts) == ("sent", 1), "the 429 counts as an attempt"
    assert [a.status for a in limited.attempts] == [200, 200, 429, 200, 200]


async def test_a_message_published_again_is_the_same_request(tmp_path: Path) -> None:
    """A confirm lost after the broker took the message: the publish fails, the store forgets
    the message, Wasender redelivers the webhook, and the second publish must carry the same
    request id (so the agent service answers it once), not a new one."""
    from fakes.node_simulator.metrics import NodeMetrics
    from fakes.node_simulator.webhook import Intake, PublishFailed

    published: list[str] = []

    async def publish(queue: str, message: object) -> None:
        published.append(json.loads(message.body)["messageId"])  # type: ignore[attr-defined]
        if len(published) == 1:
            raise ConnectionError("confirm lost")

    store = Store(tmp_path / "node.db")
    intake = Intake(store, publish, "ag_queue", NodeMetrics(), history_turns=5)
    with pytest.raises(PublishFailed):
        await intake.accept(_inbound("wamid-1", "Where is my order?"))
    assert await intake.accept(_inbound("wamid-1", "Where is my order?")) == "queued"
    await intake.accept(_inbound("wamid-2", "And my booking?"))
    assert published[0] == published[1]
    assert published[2] != published[0]
    store.close()


# -- the webhook's intake under a broken broker link (found by the network scenarios) --------


class _Publishes:
    """A publish function whose calls wait until the test lets each go (or fail)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, asyncio.Future[None]]] = []

    async def __call__(self, queue: str, message: object) -> None:
        outcome: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.calls.append((getattr(message, "message_id", ""), outcome))
        await outcome


def _intake(store: Store, publish: _Publishes) -> object:
    from fakes.node_simulator import NodeMetrics
    from fakes.node_simulator.webhook import Intake

    return Intake(store, publish, "ag_queue", NodeMetrics(), history_turns=10)


async def test_a_webhook_cancelled_mid_publish_leaves_the_message_new(store: Store) -> None:
    # Its client gave up (a timeout) while the publish waited on a broken link: Wasender's
    # redelivery must be published, not answered "duplicate" and lost.
    publish = _Publishes()
    intake: Any = _intake(store, publish)
    first = asyncio.ensure_future(intake.accept(_inbound("W1", "hello")))
    await wait_until(lambda: len(publish.calls) == 1, timeout=5, what="the first publish")
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    again = asyncio.ensure_future(intake.accept(_inbound("W1", "hello")))
    await wait_until(lambda: len(publish.calls) == 2, timeout=5, what="the second publish")
    publish.calls[1][1].set_result(None)
    assert await again == "queued"


async def test_a_twin_waits_for_the_first_delivery_and_takes_over_when_it_fails(
    store: Store,
) -> None:
    from fakes.node_simulator.webhook import request_id_for

    publish = _Publishes()
    intake: Any = _intake(store, publish)
    first = asyncio.ensure_future(intake.accept(_inbound("W2", "hello")))
    await wait_until(lambda: len(publish.calls) == 1, timeout=5, what="the first publish")
    twin = asyncio.ensure_future(intake.accept(_inbound("W2", "hello")))
    await asyncio.sleep(0)
    assert not twin.done()  # not "duplicate" while the first may still fail
    publish.calls[0][1].set_exception(TimeoutError())
    from fakes.node_simulator.webhook import PublishFailed

    with pytest.raises(PublishFailed):
        await first
    await wait_until(lambda: len(publish.calls) == 2, timeout=5, what="the twin's publish")
    publish.calls[1][1].set_result(None)
    assert await twin == "queued"
    # Both publishes carried the same request id: had the first reached the queue after all
    # (its confirm lost), the agent service would answer the two as one request.
    assert publish.calls[0][0] == publish.calls[1][0] == request_id_for(PHONE, "W2")
