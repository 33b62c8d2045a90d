"""Hypothesis strategies of what Wasender may post to the Node side's webhook.

Each case is a body to post and what the Node side owes for it: one request on ag_queue per
distinct inbound text message, none for anything else. Ids are placeholders (``@ID3@``) that the
target replaces with fresh ones at post time, so an example replayed while shrinking is new
to the service and not deduplicated against its first run.

Kinds: text in both payload shapes (conversation, extendedTextMessage, messageBody only; phone
or LID addressing; upsert or received), the same message twice (upsert + received, or the
same event redelivered), a legacy array of two, ``fromMe``, images with and without a caption,
other media and message types, events of other names, and garbage (not JSON, JSON that is no
event, a messages event with broken parts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from hypothesis import strategies as st

Expect = Literal["one", "none", "at_most_one"]

# A caption is text the user wrote: a Node service may answer it or not, never twice.
IMAGE_CAPTION: Expect = "at_most_one"


@dataclass(frozen=True)
class Case:
    """One POST: its kind (for the figures), the body, and what each message id is owed."""

    kind: str
    body: Any  # a JSON value, or bytes sent as they are
    expect: dict[str, Expect] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # id -> the text a request must carry

    def raw(self, ids: dict[str, str]) -> bytes:
        data = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        for placeholder, real in ids.items():
            data = data.replace(placeholder.encode(), real.encode())
        return data


def placeholder(n: int) -> str:
    return f"@ID{n}@"


_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=120
).filter(lambda s: s.strip() != "")
_NAMES = st.none() | st.text(max_size=300)
_DIGITS = st.from_regex(r"\A256[1-9][0-9]{8}\Z")
_TS = st.integers(1_600_000_000, 1_900_000_000)
_OTHER_EVENTS = st.sampled_from(
    ["message.sent", "messages.update", "session.status", "messages.delete", "chats.upsert",
     "messages.reaction", "qrcode.updated", "call.received", "contacts.update"]
) | st.from_regex(r"\A[a-z]{1,10}\.[a-z]{1,10}\Z").filter(
    lambda e: e not in ("messages.upsert", "messages.received")
)  # fmt: skip
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _lid(digits: str) -> str:
    return str(10**14 + int(digits) % (9 * 10**14)) + "@lid"


@st.composite
def _message(
    draw: st.DrawFn, n: int, content: dict[str, Any] | None, body_text: str | None
) -> tuple[dict[str, Any], str, bool]:
    """A message object of either shape; returns it, its shape, and whether a phone is known."""
    digits = draw(_DIGITS)
    shape = draw(st.sampled_from(["legacy", "current"]))
    key: dict[str, Any] = {"fromMe": False, "id": placeholder(n)}
    message: dict[str, Any] = {"key": key}
    phone_known = True
    if shape == "legacy":
        key["remoteJid"] = digits + "@s.whatsapp.net"
    elif draw(st.booleans()):  # LID addressing: the phone only in cleanedSenderPn
        key |= {"remoteJid": _lid(digits), "addressingMode": "lid", "senderLid": _lid(digits)}
        if draw(st.integers(0, 9)) > 0:
            key["cleanedSenderPn"] = digits
            key["senderPn"] = digits + "@s.whatsapp.net"
        else:
            phone_known = False  # no phone anywhere: nobody to answer
    else:
        key |= {"remoteJid": digits + "@s.whatsapp.net", "addressingMode": "pn"}
        key["cleanedSenderPn"] = digits
    if shape == "current" and body_text is not None:
        message["messageBody"] = body_text
    if content is not None:
        message["message"] = content
    name = draw(_NAMES)
    if name is not None:
        message["pushName"] = name
    ts = draw(_TS)
    message["messageTimestamp"] = str(ts) if draw(st.integers(0, 4)) == 0 else ts
    return message, shape, phone_known


def _envelope(event: str, message: dict[str, Any], shape: str) -> dict[str, Any]:
    messages: Any = [message] if shape == "legacy" else message
    ts = message.get("messageTimestamp", 1_764_290_000)
    return {"event": event, "timestamp": ts, "sessionId": "fuzz", "data": {"messages": messages}}


_EVENT = st.sampled_from(["messages.upsert", "messages.received"])


@st.composite
def text_cases(draw: st.DrawFn, n: int) -> list[Case]:
    """An inbound text message, once, twice as upsert+received, or the same event twice."""
    text = draw(_TEXT)
    form = draw(st.sampled_from(["conversation", "extended", "body-only"]))
    forms: dict[str, dict[str, Any] | None] = {
        "conversation": {"conversation": text},
        "extended": {"extendedTextMessage": {"text": text}},
        "body-only": None,
    }
    content = forms[form]
    message, shape, phone_known = draw(_message(n, content, text))
    if form == "body-only" and shape == "legacy":
        message["message"] = {"conversation": text}
    lid = message["key"].get("addressingMode") == "lid"
    kind = f"text/{shape}{'/lid' if lid else ''}"
    if not phone_known:
        return [Case("text/lid-without-phone", _envelope("messages.upsert", message, shape),
                     {placeholder(n): "none"})]  # fmt: skip
    expect: dict[str, Expect] = {placeholder(n): "one"}
    texts = {placeholder(n): text}
    repeat = draw(st.sampled_from(["once", "upsert+received", "redelivered"]))
    if repeat == "once":
        return [Case(kind, _envelope(draw(_EVENT), message, shape), expect, texts)]
    if repeat == "upsert+received":
        return [
            Case("duplicate/upsert", _envelope("messages.upsert", message, shape), expect, texts),
            Case("duplicate/received", _envelope("messages.received", message, shape), expect),
        ]
    event = _envelope(draw(_EVENT), message, shape)
    return [Case(kind, event, expect, texts), Case("duplicate/redelivered", event, expect)]


@st.composite
def legacy_pair(draw: st.DrawFn, n: int) -> list[Case]:
    """Two text messages in one legacy array: one request each."""
    messages, texts = [], {}
    for index in (n, n + 1):
        text = draw(_TEXT)
        key = {"remoteJid": draw(_DIGITS) + "@s.whatsapp.net", "fromMe": False,
               "id": placeholder(index)}  # fmt: skip
        messages.append(
            {"key": key, "message": {"conversation": text}, "messageTimestamp": draw(_TS)}
        )
        texts[placeholder(index)] = text
    body = {"event": "messages.upsert", "timestamp": 1_764_290_000, "data": {"messages": messages}}
    return [Case("text/legacy-array-of-2", body, dict.fromkeys(texts, "one"), texts)]


@st.composite
def silent_cases(draw: st.DrawFn, n: int) -> list[Case]:
    """Messages owed no request: fromMe, media without caption, other message types."""
    kind = draw(st.sampled_from(["fromMe", "image", "media", "other-message"]))
    text = draw(_TEXT)
    expect: dict[str, Expect] = {placeholder(n): "none"}
    if kind == "fromMe":
        message, shape, _ = draw(_message(n, {"conversation": text}, text))
        message["key"]["fromMe"] = True
        return [Case("fromMe", _envelope("messages.upsert", message, shape), expect)]
    if kind == "image":
        caption = draw(st.none() | _TEXT)
        image: dict[str, Any] = {"url": "https://example.invalid/a.enc", "mimetype": "image/jpeg"}
        if caption is not None:
            image["caption"] = caption
        message, shape, phone_known = draw(_message(n, {"imageMessage": image}, None))
        owed: Expect = IMAGE_CAPTION if caption is not None and phone_known else "none"
        label = "image/caption" if caption is not None else "image/no-caption"
        texts = {placeholder(n): caption} if caption is not None else {}
        return [Case(label, _envelope(draw(_EVENT), message, shape), {placeholder(n): owed}, texts)]
    if kind == "media":
        field_ = draw(st.sampled_from(["videoMessage", "documentMessage", "audioMessage",
                                       "stickerMessage"]))  # fmt: skip
        content: dict[str, Any] = {field_: {"url": "https://example.invalid/m.enc"}}
    else:
        content = draw(st.sampled_from([
            {"reactionMessage": {"text": "👍"}},
            {"locationMessage": {"degreesLatitude": 0.31, "degreesLongitude": 32.58}},
            {"contactMessage": {"displayName": "Jane"}},
            {"protocolMessage": {"type": 0}},
        ]))  # fmt: skip
    message, shape, _ = draw(_message(n, content, None))
    return [Case(f"silent/{kind}", _envelope(draw(_EVENT), message, shape), expect)]


@st.composite
def other_event(draw: st.DrawFn) -> list[Case]:
    """An event of another name, with any data."""
    body = {"event": draw(_OTHER_EVENTS), "timestamp": draw(_TS), "data": draw(_JSON)}
    return [Case("unknown-event", body)]


@st.composite
def garbage(draw: st.DrawFn, n: int) -> list[Case]:
    """Bodies that are no valid messages event: never a 5xx for them, and no request."""
    form = draw(st.sampled_from(["bytes", "json", "broken-messages", "broken-key"]))
    if form == "bytes":
        return [Case("garbage/not-json", draw(st.binary(max_size=200)))]
    if form == "json":
        return [Case("garbage/json-not-event", draw(_JSON))]
    event = draw(_EVENT)
    if form == "broken-messages":
        data = draw(st.none() | _JSON | st.fixed_dictionaries({"messages": _JSON}))
        return [Case("garbage/broken-messages", {"event": event, "timestamp": 1, "data": data})]
    message, shape, _ = draw(_message(n, {"conversation": "hi"}, "hi"))
    broken = dict(message["key"])
    field_ = draw(st.sampled_from(["id", "remoteJid", "fromMe", "key"]))
    if field_ == "key":
        message["key"] = draw(_JSON.filter(lambda v: not isinstance(v, dict)))
    else:
        broken[field_] = draw(_JSON.filter(lambda v: v is None or not isinstance(v, str | bool)))
        message["key"] = broken
    # A key with one broken field may still be read (say, a fromMe that is no boolean):
    # whatever the service makes of it, never a 5xx and never two requests.
    expect: dict[str, Expect] = {placeholder(n): "at_most_one"} if field_ != "key" else {}
    return [Case("garbage/broken-key", _envelope(event, message, shape), expect)]


@st.composite
def webhook_batches(draw: st.DrawFn, max_items: int = 6) -> list[Case]:
    """1 to ``max_items`` items of any kind, posted in order (duplicates add a second post)."""
    cases: list[Case] = []
    for index in range(draw(st.integers(1, max_items))):
        n = 2 * index
        cases += draw(
            st.one_of(
                text_cases(n), text_cases(n), legacy_pair(n), silent_cases(n),
                other_event(), garbage(n),
            )
        )  # fmt: skip
    return cases
