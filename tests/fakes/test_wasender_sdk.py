"""The fakes against the official Wasender SDK (PyPI ``wasenderapi``) as their client.

If the fakes drift from what the real API sends and accepts, the vendor's own client is the
first to notice: every message kind it can send, its rate-limit header parsing, its 429 retry,
and its webhook handler (signature check and event parsing) on our fake WhatsApp's events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from wasenderapi import WasenderAPIError, WasenderAsyncClient, create_async_wasender
from wasenderapi.models import RetryConfig
from wasenderapi.webhook import MessagesUpsertData, UnknownWebhookEvent, WasenderWebhookEventType

from fakes import FakeWasender, RateLimited
from fakes.whatsapp import FakeWhatsApp

pytestmark = pytest.mark.unit

KEY = "sdk-key"
SIGNATURE = "sdk-secret"
PHONE = "+256703722777"
SAMPLES = Path(__file__).parent.parent / "data" / "wasender-webhooks"

Send = Callable[[WasenderAsyncClient], Awaitable[Any]]


@pytest.fixture
async def wasender() -> AsyncIterator[FakeWasender]:
    async with FakeWasender(api_key=KEY, rate_limit_per_minute=50) as fake:
        yield fake


def sdk(fake: FakeWasender, **kwargs: Any) -> WasenderAsyncClient:
    # The SDK's paths are relative to ".../api", as on the real service.
    return create_async_wasender(KEY, base_url=fake.url + "/api", **kwargs)


# Every send method of the SDK, with the kind the fake must record for it.
SENDS: list[tuple[str, Send]] = [
    ("text", lambda c: c.send_text(PHONE, "Hello")),
    ("image", lambda c: c.send_image(PHONE, "https://example.com/a.jpg", caption="An image")),
    ("video", lambda c: c.send_video(PHONE, "https://example.com/a.mp4")),
    ("document", lambda c: c.send_document(PHONE, "https://example.com/a.pdf", "a.pdf")),
    ("audio", lambda c: c.send_audio(PHONE, "https://example.com/a.mp3")),
    ("sticker", lambda c: c.send_sticker(PHONE, "https://example.com/a.webp")),
    ("contact", lambda c: c.send_contact(PHONE, "Jane Doe", "+256700000001")),
    ("location", lambda c: c.send_location(PHONE, 0.3136, 32.5811, "Kampala", "Plot 1")),
    ("poll", lambda c: c.send_poll(PHONE, "Which day?", ["Monday", "Tuesday"])),
]


@pytest.mark.parametrize(("kind", "call"), SENDS, ids=[k for k, _ in SENDS])
async def test_every_kind_the_sdk_sends_is_accepted(
    wasender: FakeWasender, kind: str, call: Send
) -> None:
    async with sdk(wasender) as client:
        result = await call(client)
    assert result.response.success is True
    assert result.response.data.message_id == wasender.sends[0].msg_id
    assert [s.kind for s in wasender.sends] == [kind]


async def test_a_malformed_location_is_a_validation_error(wasender: FakeWasender) -> None:
    async with sdk(wasender) as client:
        with pytest.raises(WasenderAPIError) as caught:
            await client.send_location(PHONE, 123.0, 32.5)
    assert caught.value.status_code == 422
    assert "location.latitude" in (caught.value.error_details or {})


async def test_rate_limit_headers_parse(wasender: FakeWasender) -> None:
    async with sdk(wasender) as client:
        first = await client.send_text(PHONE, "one")
        second = await client.send_text(PHONE, "two")
    assert first.rate_limit is not None and second.rate_limit is not None
    assert (first.rate_limit.limit, first.rate_limit.remaining) == (50, 49)
    assert second.rate_limit.remaining == 48
    assert second.rate_limit.reset_timestamp == first.rate_limit.reset_timestamp
    assert second.rate_limit.get_reset_timestamp_as_date() is not None


async def test_a_429_without_retries_reports_retry_after(wasender: FakeWasender) -> None:
    wasender.inject(RateLimited(retry_after=7), times=1)
    async with sdk(wasender) as client:
        with pytest.raises(WasenderAPIError) as caught:
            await client.send_text(PHONE, "hi")
    assert (caught.value.status_code, caught.value.retry_after) == (429, 7)
    assert wasender.sends == []


async def test_the_sdk_retries_a_429_after_retry_after(wasender: FakeWasender) -> None:
    wasender.inject(RateLimited(retry_after=1), times=1)
    async with sdk(wasender, retry_options=RetryConfig(max_retries=2, enabled=True)) as client:
        result = await client.send_text(PHONE, "hi")
    assert result.response.success is True
    assert [a.status for a in wasender.attempts] == [429, 200]
    assert len(wasender.sends) == 1


async def test_invalid_number_and_wrong_key_are_errors(wasender: FakeWasender) -> None:
    wasender.mark_invalid(PHONE)
    async with sdk(wasender) as client:
        with pytest.raises(WasenderAPIError) as invalid:
            await client.send_text(PHONE, "hi")
    async with create_async_wasender("wrong", base_url=wasender.url + "/api") as client:
        with pytest.raises(WasenderAPIError) as unauthenticated:
            await client.send_text("+256700000001", "hi")
    assert invalid.value.status_code == 422
    assert "to" in (invalid.value.error_details or {})
    assert unauthenticated.value.status_code == 401


# -- the SDK's webhook handler on our fake WhatsApp's events ---------------------------------


def events() -> list[tuple[str, dict[str, Any]]]:
    whatsapp = FakeWhatsApp(SIGNATURE, seed=3)
    upsert, received = whatsapp.duplicate_pair(PHONE, "Hi", shape="current", name="John Doe")
    return [
        ("legacy text", whatsapp.text_event(PHONE, "Hi", shape="legacy")),
        ("current text", upsert),
        ("current received", received),
        ("LID", whatsapp.text_event(PHONE, "Hi", shape="current", lid=True)),
        ("extended", whatsapp.text_event(PHONE, "Hi", extended=True, shape="current")),
        ("image", whatsapp.image_event(PHONE, "A caption", shape="current")),
        ("from me", whatsapp.from_me_event(PHONE, "Sent", shape="current")),
    ]


def message_of(event: dict[str, Any]) -> dict[str, Any]:
    messages = event["data"]["messages"]
    return dict(messages[0] if isinstance(messages, list) else messages)


@pytest.mark.parametrize(("name", "event"), events(), ids=[n for n, _ in events()])
async def test_sdk_webhook_handler_reads_our_events(name: str, event: dict[str, Any]) -> None:
    client = create_async_wasender(KEY, webhook_secret=SIGNATURE)
    body = json.dumps(event).encode()
    parsed = await client.handle_webhook_event(body, SIGNATURE)
    assert parsed.timestamp == event["timestamp"]
    assert parsed.session_id == event["sessionId"]
    if event["event"] == "messages.upsert":
        assert parsed.event == WasenderWebhookEventType.MESSAGES_UPSERT
    else:
        # The SDK spells it "messages.recieved" (sic), so a real messages.received event falls
        # through to its catch-all model, with the data kept as sent.
        assert isinstance(parsed, UnknownWebhookEvent)
        assert parsed.event == "messages.received"
        assert parsed.data == event["data"]
    # The SDK's message model (it expects it directly under `data`, the documented payloads
    # put it under `data.messages`): every field our fake sends fits it.
    message = message_of(event)
    read = MessagesUpsertData.model_validate(message)
    key = message["key"]
    assert read.key is not None and read.message is not None
    assert (read.key.id, read.key.from_me, read.key.remote_jid) == (
        key["id"],
        key["fromMe"],
        key["remoteJid"],
    )
    assert read.key.sender_lid == key.get("senderLid")
    assert read.key.addressing_mode == key.get("addressingMode")
    assert read.message_timestamp == message["messageTimestamp"]
    if "imageMessage" in message["message"]:
        assert read.message.image_message == message["message"]["imageMessage"]
    else:
        assert read.message.conversation == message["message"].get("conversation")


@pytest.mark.parametrize("signature", [None, "", "sdk-secreT", SIGNATURE + " "])
async def test_sdk_webhook_handler_refuses_a_wrong_signature(signature: str | None) -> None:
    client = create_async_wasender(KEY, webhook_secret=SIGNATURE)
    event = FakeWhatsApp(SIGNATURE).text_event(PHONE, "Hi")
    with pytest.raises(WasenderAPIError, match="Invalid webhook signature"):
        await client.handle_webhook_event(json.dumps(event).encode(), signature)


SAMPLE_BODIES = {p.stem: p.read_bytes() for p in sorted(SAMPLES.glob("*.json"))}


@pytest.mark.parametrize("raw", SAMPLE_BODIES.values(), ids=SAMPLE_BODIES.keys())
async def test_sdk_reads_the_documented_samples_like_our_fake(raw: bytes) -> None:
    """The samples and the fake's events fit the SDK's models the same way."""
    client = create_async_wasender(KEY, webhook_secret=SIGNATURE)
    parsed = await client.handle_webhook_event(raw, SIGNATURE)
    event = json.loads(raw)
    assert parsed.timestamp == event["timestamp"]
    read = MessagesUpsertData.model_validate(message_of(event))
    assert read.key is not None and read.key.id == message_of(event)["key"]["id"]
