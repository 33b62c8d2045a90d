"""FakeWhatsApp: builds the webhook events Wasender posts and posts them to a webhook URL.

    whatsapp = FakeWhatsApp(webhook_secret="s3cret")
    event = whatsapp.text_event("+256703722777", "Hello", name="John Doe", shape="current")
    result = await whatsapp.post(receiver_url, event)

Events match the sample payloads in both shapes (see fakes.webhooks for the differences).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from fakes.phones import LID_JID_SUFFIX, PN_JID_SUFFIX, is_e164, mask, to_digits

logger = logging.getLogger(__name__)

Shape = Literal["legacy", "current"]
MessageEvent = Literal["messages.upsert", "messages.received"]
SIGNATURE_HEADER = "X-Webhook-Signature"


class _UseSecret:
    """Default for `signature`: send the configured secret (None means send no header)."""


USE_SECRET = _UseSecret()


@dataclass(frozen=True, slots=True)
class PostResult:
    """What the webhook receiver answered."""

    status: int
    body: str


class FakeWhatsApp:
    """Stands for WhatsApp users writing to the business number, as seen through Wasender."""

    def __init__(
        self,
        webhook_secret: str,
        session_id: str | None = "session-demo",
        *,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        """`seed` makes message ids repeatable; `clock` (epoch seconds) sets default timestamps."""
        self.webhook_secret = webhook_secret
        self.session_id = session_id
        self._rng = random.Random(seed)
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._issued_ids: set[str] = set()
        self._last_ts = 0

    # -- builders --------------------------------------------------------------------------

    def text_event(
        self,
        phone: str,
        text: str,
        *,
        name: str | None = None,
        shape: Shape = "legacy",
        event: MessageEvent = "messages.upsert",
        message_id: str | None = None,
        timestamp: int | None = None,
        lid: bool = False,
        extended: bool = False,
    ) -> dict[str, Any]:
        """An incoming text message. `lid` (current shape only) addresses it by LID."""
        content = {"extendedTextMessage": {"text": text}} if extended else {"conversation": text}
        return self._event(
            phone,
            content,
            text,
            name=name,
            shape=shape,
            event=event,
            message_id=message_id,
            timestamp=timestamp,
            lid=lid,
        )

    def from_me_event(
        self, phone: str, text: str, *, shape: Shape = "legacy", timestamp: int | None = None
    ) -> dict[str, Any]:
        """A message the business sent (`fromMe: true`); receivers must ignore it."""
        return self._event(
            phone,
            {"conversation": text},
            text,
            name=None,
            shape=shape,
            event="messages.upsert",
            timestamp=timestamp,
            from_me=True,
        )

    def image_event(
        self,
        phone: str,
        caption: str | None,
        *,
        shape: Shape = "legacy",
        name: str | None = None,
        event: MessageEvent = "messages.upsert",
        message_id: str | None = None,
        timestamp: int | None = None,
        lid: bool = False,
    ) -> dict[str, Any]:
        """An incoming image, with a caption unless `caption` is None."""
        image: dict[str, Any] = {
            "url": "https://example.invalid/media/" + self._hex(6).lower() + ".enc",
            "mimetype": "image/jpeg",
        }
        if caption is not None:
            image["caption"] = caption
        image["fileLength"] = "48213"
        # The sample image event has no messageBody, so body=None.
        return self._event(
            phone,
            {"imageMessage": image},
            None,
            name=name,
            shape=shape,
            event=event,
            message_id=message_id,
            timestamp=timestamp,
            lid=lid,
        )

    def duplicate_pair(
        self, phone: str, text: str, **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """One message delivered twice: as messages.upsert and as messages.received (same id)."""
        kwargs.pop("event", None)
        first = self.text_event(phone, text, event="messages.upsert", **kwargs)
        second = copy.deepcopy(first)
        second["event"] = "messages.received"
        return first, second

    def burst(self, phone: str, texts: Sequence[str], **kwargs: Any) -> list[dict[str, Any]]:
        """Several messages from one contact, timestamps strictly increasing."""
        kwargs.pop("timestamp", None)
        return [
            self.text_event(phone, text, timestamp=self._next_timestamp(strict=True), **kwargs)
            for text in texts
        ]

    # -- posting ---------------------------------------------------------------------------

    async def post(
        self,
        url: str,
        event: dict[str, Any],
        *,
        signature: str | _UseSecret | None = USE_SECRET,
    ) -> PostResult:
        """POST one event as Wasender does. `signature=None` leaves the header out."""
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            return await self._post(session, url, event, signature)

    async def post_many(
        self,
        url: str,
        events: Sequence[dict[str, Any]],
        *,
        concurrency: int = 10,
        signature: str | _UseSecret | None = USE_SECRET,
    ) -> list[PostResult]:
        """POST many events, at most `concurrency` at a time; results in the order given."""
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        gate = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(timeout=self._timeout) as session:

            async def one(event: dict[str, Any]) -> PostResult:
                async with gate:
                    return await self._post(session, url, event, signature)

            return list(await asyncio.gather(*(one(e) for e in events)))

    async def _post(
        self,
        session: aiohttp.ClientSession,
        url: str,
        event: dict[str, Any],
        signature: str | _UseSecret | None,
    ) -> PostResult:
        secret = self.webhook_secret if isinstance(signature, _UseSecret) else signature
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[SIGNATURE_HEADER] = secret
        async with session.post(url, json=event, headers=headers) as response:
            body = await response.text()
        logger.debug("webhook %s -> %s", event.get("event"), response.status)
        return PostResult(response.status, body)

    # -- internals -------------------------------------------------------------------------

    def _event(
        self,
        phone: str,
        content: dict[str, Any],
        body: str | None,
        *,
        name: str | None,
        shape: Shape,
        event: str,
        message_id: str | None = None,
        timestamp: int | None = None,
        lid: bool = False,
        from_me: bool = False,
    ) -> dict[str, Any]:
        if not is_e164(phone):
            raise ValueError(f"phone must be E.164 like +256703722777, got {mask(phone)}")
        if shape not in ("legacy", "current"):
            raise ValueError(f"shape must be 'legacy' or 'current', got {shape!r}")
        if lid and shape != "current":
            raise ValueError("LID addressing exists only in the current shape")
        digits = to_digits(phone)
        ts = timestamp if timestamp is not None else self._next_timestamp(strict=False)
        key: dict[str, Any] = {
            "remoteJid": self._lid(digits) if lid else digits + PN_JID_SUFFIX,
            "fromMe": from_me,
            "id": message_id or self._new_message_id(),
        }
        message: dict[str, Any] = {"key": key}
        if shape == "current":
            key.update(self._current_key_fields(digits, lid))
            if body is not None:
                message["messageBody"] = body
        message["message"] = content
        if name is not None:
            message["pushName"] = name
        message["messageTimestamp"] = ts
        return self._envelope(event, ts, [message] if shape == "legacy" else message)

    def _current_key_fields(self, digits: str, lid: bool) -> dict[str, Any]:
        if not lid:
            return {"addressingMode": "pn", "cleanedSenderPn": digits}
        return {
            "addressingMode": "lid",
            "senderLid": self._lid(digits),
            "senderPn": digits + PN_JID_SUFFIX,
            "cleanedSenderPn": digits,
        }

    def _envelope(self, event: str, ts: int, messages: Any) -> dict[str, Any]:
        envelope: dict[str, Any] = {"event": event, "timestamp": ts}
        if self.session_id is not None:
            envelope["sessionId"] = self.session_id
        envelope["data"] = {"messages": messages}
        return envelope

    def _lid(self, digits: str) -> str:
        """A stable 15-digit LID per phone, so one contact keeps one LID across events."""
        number = int.from_bytes(hashlib.sha256(digits.encode()).digest()[:8], "big")
        return str(10**14 + number % (9 * 10**14)) + LID_JID_SUFFIX

    def _new_message_id(self) -> str:
        """Ids like the real ones from WhatsApp Web clients: `3EB0` plus 16 hex digits."""
        while True:
            candidate = "3EB0" + self._hex(8)
            if candidate not in self._issued_ids:
                self._issued_ids.add(candidate)
                return candidate

    def _hex(self, n_bytes: int) -> str:
        return self._rng.getrandbits(8 * n_bytes).to_bytes(n_bytes, "big").hex().upper()

    def _next_timestamp(self, *, strict: bool) -> int:
        """Now, but never before the last one given (after it, when `strict`)."""
        self._last_ts = max(int(self._clock()), self._last_ts + (1 if strict else 0))
        return self._last_ts
