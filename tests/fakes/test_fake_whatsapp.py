"""FakeWhatsApp's events against the sample payloads, parse_webhook_event, and posting."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from fakes import (
    FakeWhatsApp,
    InboundMessage,
    WebhookPayloadError,
    parse_webhook_event,
    verify_signature,
)
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.unit

SAMPLES = SHARED_DATA / "wasender-webhooks"
PHONE = "+256703722777"
SECRET = "webhook-secret"
UPSERT = "messages.upsert"


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return data


def john(message_id: str, text: str | None, ts: int, event: str, **kw: Any) -> InboundMessage:
    defaults: dict[str, Any] = {
        "remote_jid": "256703722777@s.whatsapp.net",
        "phone": PHONE,
        "name": "John Doe",
        "kind": "text",
    }
    return InboundMessage(message_id, text=text, timestamp=ts, event=event, **(defaults | kw))


EXPECTED = {
    "messages-upsert-legacy-array.json": [
        john(
            "BAE5A93B52084A3B", "Hello, what are your opening hours?", 1764290000, "messages.upsert"
        )
    ],
    "messages-upsert-extended-text.json": [
        john(
            "BAE5A93B52084A3C", "Can I book an appointment tomorrow?", 1764290005, "messages.upsert"
        )
    ],
    "messages-received-current-lid.json": [
        john(
            "3EB0C431D3A1F5B2E7A9",
            "Where is my order 1042?",
            1764290010,
            "messages.received",
            remote_jid="123456789012345@lid",
        )
    ],
    "messages-upsert-from-me.json": [],
    "messages-received-image-caption.json": [
        john(
            "3EB0C431D3A1F5B2E7B0",
            "Is this charger in stock?",
            1764290030,
            "messages.received",
            kind="image",
        )
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_files_parse(name: str) -> None:
    assert parse_webhook_event(sample(name)) == EXPECTED[name]


def test_every_sample_file_is_covered() -> None:
    assert {p.name for p in SAMPLES.glob("*.json")} == set(EXPECTED)


def skeleton(value: Any) -> Any:
    """Structure only: keys in order and value types, not the values."""
    if isinstance(value, dict):
        return [(k, skeleton(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [skeleton(v) for v in value]
    return type(value).__name__


def build(name: str) -> dict[str, Any]:
    with_session = FakeWhatsApp(SECRET)
    without_session = FakeWhatsApp(SECRET, session_id=None)
    builders = {
        "messages-upsert-legacy-array.json": lambda: with_session.text_event(
            PHONE, "hi", name="John Doe"
        ),
        "messages-upsert-extended-text.json": lambda: without_session.text_event(
            PHONE, "hi", name="John Doe", extended=True
        ),
        "messages-received-current-lid.json": lambda: with_session.text_event(
            PHONE, "hi", name="John Doe", shape="current", event="messages.received", lid=True
        ),
        "messages-upsert-from-me.json": lambda: without_session.from_me_event(PHONE, "hi"),
        "messages-received-image-caption.json": lambda: without_session.image_event(
            PHONE, "cap", name="John Doe", shape="current", event="messages.received"
        ),
    }
    return builders[name]()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_generated_events_have_the_sample_structure(name: str) -> None:
    assert skeleton(build(name)) == skeleton(sample(name))


def message_of(event: dict[str, Any]) -> dict[str, Any]:
    messages = event["data"]["messages"]
    return messages[0] if isinstance(messages, list) else messages  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("shape", "lid", "extended"),
    [
        ("legacy", False, False),
        ("legacy", False, True),
        ("current", False, False),
        ("current", True, False),
        ("current", True, True),
    ],
)
def test_text_events_round_trip(shape: Any, lid: bool, extended: bool) -> None:
    event = FakeWhatsApp(SECRET).text_event(
        PHONE, "Hi there", name="Ann", shape=shape, lid=lid, extended=extended, timestamp=1700000000
    )
    [message] = parse_webhook_event(event)
    assert (message.phone, message.text, message.name, message.kind) == (
        PHONE,
        "Hi there",
        "Ann",
        "text",
    )
    assert message.timestamp == event["timestamp"] == 1700000000
    assert message.message_id == message_of(event)["key"]["id"]
    assert message.remote_jid.endswith("@lid" if lid else "@s.whatsapp.net")


@pytest.mark.parametrize("shape", ["legacy", "current"])
def test_images_from_me_and_names(shape: Any) -> None:
    whatsapp = FakeWhatsApp(SECRET)
    [captioned] = parse_webhook_event(whatsapp.image_event(PHONE, "Price?", shape=shape))
    [bare] = parse_webhook_event(whatsapp.image_event(PHONE, None, shape=shape))
    assert (captioned.kind, captioned.text, captioned.name) == ("image", "Price?", None)
    assert (bare.kind, bare.text) == ("image", None)
    assert parse_webhook_event(whatsapp.from_me_event(PHONE, "We open at 9", shape=shape)) == []


def test_lid_contacts_keep_one_lid() -> None:
    whatsapp = FakeWhatsApp(SECRET)
    jids = {
        message_of(whatsapp.text_event(PHONE, str(i), shape="current", lid=True))["key"][
            "remoteJid"
        ]
        for i in range(3)
    }
    [jid] = jids
    assert re.fullmatch(r"[1-9]\d{14}@lid", jid)


def test_duplicate_pair_is_one_message_under_two_events() -> None:
    upsert, received = FakeWhatsApp(SECRET).duplicate_pair(PHONE, "Hello", shape="current")
    assert (upsert["event"], received["event"]) == ("messages.upsert", "messages.received")
    first, second = parse_webhook_event(upsert)[0], parse_webhook_event(received)[0]
    assert first.message_id == second.message_id
    assert (first.text, second.text) == ("Hello", "Hello")


def test_burst_has_increasing_timestamps_and_unique_ids() -> None:
    clock_value = 1_700_000_000.0
    whatsapp = FakeWhatsApp(SECRET, seed=3, clock=lambda: clock_value)
    events = whatsapp.burst(PHONE, ["a", "b", "c", "d"])
    later = whatsapp.text_event(PHONE, "e")
    messages = [parse_webhook_event(e)[0] for e in [*events, later]]
    stamps = [m.timestamp for m in messages]
    assert stamps[:4] == [1_700_000_000, 1_700_000_001, 1_700_000_002, 1_700_000_003]
    assert stamps[4] >= stamps[3]
    ids = [m.message_id for m in messages]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"3EB0[0-9A-F]{16}", i) for i in ids)
    assert [m.text for m in messages] == ["a", "b", "c", "d", "e"]


def test_builders_reject_bad_input() -> None:
    whatsapp = FakeWhatsApp(SECRET)
    with pytest.raises(ValueError, match=r"E\.164"):
        whatsapp.text_event("0703722777", "hi")
    with pytest.raises(ValueError, match="current shape"):
        whatsapp.text_event(PHONE, "hi", lid=True)


def lid_without_phone() -> dict[str, Any]:
    event = FakeWhatsApp(SECRET).text_event(PHONE, "hi", shape="current", lid=True)
    for field_name in ("cleanedSenderPn", "senderPn"):
        del event["data"]["messages"]["key"][field_name]
    return event


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        ([], "JSON object"),
        ({"data": {}}, "event name"),
        ({"event": "messages.upsert"}, "data.messages is missing"),
        ({"event": "messages.upsert", "data": {"messages": ["x"]}}, "messages[0]: expected an"),
        ({"event": "messages.upsert", "data": {"messages": [{}]}}, "messages[0].key"),
        (
            {"event": "messages.received", "data": {"messages": {"key": {"remoteJid": "1@s"}}}},
            "data.messages.key.id",
        ),
        (lid_without_phone(), "no phone number"),
    ],
)
def test_malformed_events_raise(event: Any, needle: str) -> None:
    with pytest.raises(WebhookPayloadError, match=re.escape(needle)):
        parse_webhook_event(event)


def test_other_events_are_ignored() -> None:
    assert parse_webhook_event({"event": "session.status", "data": {"status": "connected"}}) == []


def test_verify_signature() -> None:
    assert verify_signature(SECRET, SECRET)
    assert not verify_signature("wrong", SECRET)
    assert not verify_signature(None, SECRET)
    assert not verify_signature("", "")


# -- posting to a receiver --------------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    requests: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver(url="")

    async def handle(request: web.Request) -> web.Response:
        state.in_flight += 1
        state.peak = max(state.peak, state.in_flight)
        await asyncio.sleep(0.01)
        state.requests.append((dict(request.headers), await request.json()))
        state.in_flight -= 1
        ok = verify_signature(request.headers.get("X-Webhook-Signature"), SECRET)
        return web.json_response({"received": ok}, status=200 if ok else 401)

    app = web.Application()
    app.router.add_post("/webhook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}/webhook"
    yield state
    await runner.cleanup()


async def test_post_sends_the_secret_and_the_event(receiver: Receiver) -> None:
    whatsapp = FakeWhatsApp(SECRET)
    event = whatsapp.text_event(PHONE, "Hello", shape="current", lid=True)
    result = await whatsapp.post(receiver.url, event)
    assert (result.status, json.loads(result.body)) == (200, {"received": True})
    [(headers, body)] = receiver.requests
    assert headers["X-Webhook-Signature"] == SECRET
    assert headers["Content-Type"] == "application/json"
    assert body == event


async def test_post_with_other_or_no_signature(receiver: Receiver) -> None:
    whatsapp = FakeWhatsApp(SECRET)
    event = whatsapp.text_event(PHONE, "Hello")
    assert (await whatsapp.post(receiver.url, event, signature="forged")).status == 401
    assert (await whatsapp.post(receiver.url, event, signature=None)).status == 401
    assert "X-Webhook-Signature" not in receiver.requests[1][0]


async def test_post_many_keeps_order_and_bounds_concurrency(receiver: Receiver) -> None:
    whatsapp = FakeWhatsApp(SECRET)
    events = whatsapp.burst(PHONE, [f"message {i}" for i in range(12)])
    results = await whatsapp.post_many(receiver.url, events, concurrency=3)
    assert [r.status for r in results] == [200] * 12
    assert 1 < receiver.peak <= 3
    assert sorted(json.dumps(b, sort_keys=True) for _, b in receiver.requests) == sorted(
        json.dumps(e, sort_keys=True) for e in events
    )
