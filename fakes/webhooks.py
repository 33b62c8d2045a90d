"""Reading the webhook events Wasender posts: both payload shapes, and the shared-secret check.

Pure functions with no I/O, usable by a real webhook receiver as well as by tests.

- Older shape: `data.messages` is an array, the phone is in `key.remoteJid`.
- Newer shape: `data.messages` is one object; `key` gains `addressingMode`, `cleanedSenderPn`,
  `senderLid`, `senderPn`, and there is a unified `messageBody`. `remoteJid` may be a LID
  (`...@lid`), which is not a phone number, so the phone comes from `cleanedSenderPn`.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fakes.phones import LID_JID_SUFFIX, PN_JID_SUFFIX, mask, to_e164

MESSAGE_EVENTS = frozenset({"messages.upsert", "messages.received"})

InboundKind = Literal["text", "image", "video", "document", "audio", "sticker", "other"]

# message field -> kind, in the order a message is looked at.
_MEDIA_KINDS: dict[str, InboundKind] = {
    "imageMessage": "image",
    "videoMessage": "video",
    "documentMessage": "document",
    "audioMessage": "audio",
    "stickerMessage": "sticker",
}


class WebhookPayloadError(ValueError):
    """A messages event that does not have the structure Wasender sends."""


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message a contact sent, whichever payload shape it came in."""

    message_id: str
    remote_jid: str
    phone: str  # +E.164
    name: str | None
    text: str | None  # the text or caption; None when there is none
    kind: InboundKind
    timestamp: int
    event: str


def verify_signature(header_value: str | None, secret: str) -> bool:
    """Check `X-Webhook-Signature`, which carries the shared secret itself (not an HMAC).

    Constant-time, so the comparison does not leak how much of a guess was right.
    """
    if not header_value or not secret:
        return False
    return hmac.compare_digest(header_value.encode(), secret.encode())


def parse_webhook_event(event: Mapping[str, Any]) -> list[InboundMessage]:
    """The inbound messages in one webhook event, oldest first.

    Other event types (`message.sent`, `session.status`, ...) give an empty list, and messages
    we sent ourselves (`fromMe`) are skipped. The same message can arrive as both
    `messages.upsert` and `messages.received`: callers deduplicate on `message_id`.
    Raises WebhookPayloadError for a messages event with a malformed body.
    """
    if not isinstance(event, Mapping):
        raise WebhookPayloadError("event must be a JSON object")
    name = event.get("event")
    if not isinstance(name, str):
        raise WebhookPayloadError("event: expected the event name as a string")
    if name not in MESSAGE_EVENTS:
        return []
    data = event.get("data")
    if not isinstance(data, Mapping) or "messages" not in data:
        raise WebhookPayloadError(f"{name}: data.messages is missing")
    raw = data["messages"]
    items = raw if isinstance(raw, list) else [raw]
    fallback_ts = event.get("timestamp")
    messages = []
    for index, item in enumerate(items):
        where = f"data.messages[{index}]" if isinstance(raw, list) else "data.messages"
        parsed = _parse_message(item, where, name, fallback_ts)
        if parsed is not None:
            messages.append(parsed)
    return messages


def _parse_message(item: Any, where: str, event: str, fallback_ts: Any) -> InboundMessage | None:
    if not isinstance(item, Mapping):
        raise WebhookPayloadError(f"{where}: expected an object")
    key = item.get("key")
    if not isinstance(key, Mapping):
        raise WebhookPayloadError(f"{where}.key: expected an object")
    if key.get("fromMe") is True:
        return None
    message_id = _required_str(key, "id", f"{where}.key")
    remote_jid = _required_str(key, "remoteJid", f"{where}.key")
    kind, text = _content(item, where)
    push_name = item.get("pushName")
    return InboundMessage(
        message_id=message_id,
        remote_jid=remote_jid,
        phone=_phone(key, remote_jid, f"{where}.key"),
        name=push_name if isinstance(push_name, str) and push_name else None,
        text=text,
        kind=kind,
        timestamp=_timestamp(item.get("messageTimestamp"), fallback_ts, where),
        event=event,
    )


def _required_str(obj: Mapping[str, Any], field: str, where: str) -> str:
    value = obj.get(field)
    if not isinstance(value, str) or not value:
        raise WebhookPayloadError(f"{where}.{field}: expected a non-empty string")
    return value


def _phone(key: Mapping[str, Any], remote_jid: str, where: str) -> str:
    """The sender's phone: cleanedSenderPn first, a phone JID next, never a LID."""
    candidates = [
        (key.get("cleanedSenderPn"), "cleanedSenderPn"),
        (key.get("senderPn"), "senderPn"),
        (remote_jid, "remoteJid"),
    ]
    for value, field in candidates:
        if not isinstance(value, str) or not value or value.endswith(LID_JID_SUFFIX):
            continue
        if field == "remoteJid" and not value.endswith(PN_JID_SUFFIX):
            break  # a group or broadcast JID names no single sender
        try:
            return to_e164(value)
        except ValueError:
            message = f"{where}.{field}: not a phone number: {mask(value)}"
            raise WebhookPayloadError(message) from None
    raise WebhookPayloadError(
        f"{where}: no phone number (remoteJid {mask(remote_jid)} is not a phone JID and "
        "cleanedSenderPn is missing)"
    )


def _content(item: Mapping[str, Any], where: str) -> tuple[InboundKind, str | None]:
    """Kind and text (or caption) from `message`, falling back to the newer `messageBody`."""
    message = item.get("message")
    body = item.get("messageBody")
    body_text = body if isinstance(body, str) and body else None
    if message is None:
        return ("text", body_text) if body_text else ("other", None)
    if not isinstance(message, Mapping):
        raise WebhookPayloadError(f"{where}.message: expected an object")
    if isinstance(message.get("conversation"), str):
        return "text", message["conversation"] or body_text
    extended = message.get("extendedTextMessage")
    if isinstance(extended, Mapping) and isinstance(extended.get("text"), str):
        return "text", extended["text"] or body_text
    for field, kind in _MEDIA_KINDS.items():
        media = message.get(field)
        if isinstance(media, Mapping):
            caption = media.get("caption")
            return kind, caption if isinstance(caption, str) and caption else body_text
    return ("text", body_text) if body_text else ("other", None)


def _timestamp(value: Any, fallback: Any, where: str) -> int:
    for candidate in (value, fallback):
        if isinstance(candidate, bool):
            continue
        if isinstance(candidate, int):
            return candidate
        # Some gateways send Unix seconds as a numeric string.
        if isinstance(candidate, str) and candidate.isdigit():
            return int(candidate)
    raise WebhookPayloadError(f"{where}.messageTimestamp: expected Unix seconds")
