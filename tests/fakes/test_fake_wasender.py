"""FakeWasender over real HTTP: the API it imitates, its faults, and its control API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from fakes import (
    DropConnection,
    FakeServerError,
    FakeWasender,
    Fault,
    InvalidNumber,
    RateLimited,
    ServerError,
    SlowResponse,
    SoftFailure,
    Timeout,
)
from fakes.wasender_faults import FaultEffect

pytestmark = pytest.mark.unit

KEY = "test-key"
PHONE = "+256703722777"
OTHER = "+256700000001"


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


class FakeClock:
    """Epoch seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 1_764_290_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


@pytest.fixture
async def wasender() -> AsyncIterator[FakeWasender]:
    async with FakeWasender(api_key=KEY) as fake:
        yield fake


async def send(
    http: aiohttp.ClientSession,
    fake: FakeWasender,
    body: Any = None,
    *,
    key: str | None = KEY,
    raw: bytes | None = None,
    client_timeout: float | None = None,
) -> Reply:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
    if client_timeout is not None:
        kwargs["timeout"] = aiohttp.ClientTimeout(total=client_timeout)
    url = fake.url + "/api/send-message"
    async with http.post(url, headers=headers, **kwargs) as response:
        return Reply(response.status, await response.json(), dict(response.headers))


def text(to: str = PHONE, message: str = "hello") -> dict[str, Any]:
    return {"to": to, "text": message}


# -- the API it imitates ---------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "wrong-key"])
async def test_rejects_missing_or_wrong_key(
    http: aiohttp.ClientSession, wasender: FakeWasender, key: str | None
) -> None:
    reply = await send(http, wasender, text(), key=key)
    assert (reply.status, reply.body) == (401, {"success": False, "message": "Unauthenticated."})
    assert wasender.sends == []
    assert [a.outcome for a in wasender.attempts] == ["unauthenticated"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"text": "hi"}, "to", "The to field is required."),
        ({"to": "0703722777", "text": "hi"}, "to", "The to field format is invalid."),
        ({"to": "256703722777@lid", "text": "hi"}, "to", "The to field format is invalid."),
        ({"to": PHONE}, "text", "The text field is required when none of"),
        ({"to": PHONE, "imageUrl": "ftp://x"}, "imageUrl", "must be a valid URL"),
        ({"to": PHONE, "imageUrl": "https://a", "videoUrl": "https://b"}, "videoUrl", "Only one"),
        (None, "to", "The to field is required."),
    ],
)
async def test_validation_errors_are_422(
    http: aiohttp.ClientSession, wasender: FakeWasender, body: Any, field: str, message: str
) -> None:
    reply = await send(http, wasender, body, raw=b"not json" if body is None else None)
    assert reply.status == 422
    assert reply.body["success"] is False
    assert reply.body["message"] == "Validation failed"
    assert message in reply.body["errors"][field][0]
    assert wasender.sends == []
    assert wasender.attempts[0].outcome == "validation_failed"


async def test_success_body_headers_and_increasing_ids(
    http: aiohttp.ClientSession, wasender: FakeWasender
) -> None:
    first = await send(http, wasender, text())
    second = await send(http, wasender, text(to="256703722777@s.whatsapp.net"))
    assert first.status == 200
    assert first.body == {
        "success": True,
        "data": {"msgId": 100000, "jid": PHONE, "status": "in_progress"},
    }
    assert second.body["data"] == {
        "msgId": 100001,
        "jid": "256703722777@s.whatsapp.net",
        "status": "in_progress",
    }
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert first.headers[header].isdigit()
    assert "Retry-After" not in first.headers
    assert len(wasender.sends_to("256703722777@s.whatsapp.net")) == 2
    assert wasender.sends_to(OTHER) == []


@pytest.mark.parametrize(
    ("field", "kind"),
    [
        (None, "text"),
        ("imageUrl", "image"),
        ("videoUrl", "video"),
        ("documentUrl", "document"),
        ("audioUrl", "audio"),
        ("stickerUrl", "sticker"),
    ],
)
async def test_records_every_message_kind(
    http: aiohttp.ClientSession, wasender: FakeWasender, field: str | None, kind: str
) -> None:
    body: dict[str, Any] = {"to": PHONE, "text": "caption"}
    if field is not None:
        body[field] = "https://cdn.example.invalid/file"
    if field == "documentUrl":
        body["fileName"] = "invoice.pdf"
    before = time.monotonic()
    assert (await send(http, wasender, body)).status == 200
    [sent] = wasender.sends
    assert (sent.msg_id, sent.to, sent.text, sent.kind) == (100000, PHONE, "caption", kind)
    assert sent.payload == body
    assert sent.received_at >= before
    assert abs(sent.wall_time - time.time()) < 5


async def test_rate_limit_counts_down_then_429(http: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    async with FakeWasender(api_key=KEY, rate_limit_per_minute=3, clock=clock) as fake:
        replies = [await send(http, fake, text()) for _ in range(4)]
        assert [r.status for r in replies] == [200, 200, 200, 429]
        assert [r.headers["X-RateLimit-Remaining"] for r in replies] == ["2", "1", "0", "0"]
        assert {r.headers["X-RateLimit-Limit"] for r in replies} == {"3"}
        assert {r.headers["X-RateLimit-Reset"] for r in replies} == {str(int(clock.now) + 60)}
        clock.now += 15
        limited = await send(http, fake, text())
        assert limited.body == {"success": False, "message": "Too many requests", "retry_after": 45}
        assert "Retry-After" not in limited.headers
        assert len(fake.sends) == 3
        clock.now += 45  # the window is over
        assert (await send(http, fake, text())).status == 200


# -- faults ----------------------------------------------------------------------------------


async def test_server_error_for_the_next_n_calls(
    http: aiohttp.ClientSession, wasender: FakeWasender
) -> None:
    wasender.inject(ServerError(503), times=2)
    statuses = [(await send(http, wasender, text())).status for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert [a.outcome for a in wasender.attempts] == ["fault:server_error"] * 2 + ["sent"]
    assert len(wasender.sends) == 1
    assert wasender.faults == []  # spent


async def test_ratio_is_a_share_of_calls_and_repeatable(http: aiohttp.ClientSession) -> None:
    patterns = []
    for _ in range(2):
        async with FakeWasender(api_key=KEY, seed=7) as fake:
            fake.inject(ServerError(502), ratio=0.5)
            patterns.append([(await send(http, fake, text())).status for _ in range(20)])
    assert patterns[0] == patterns[1]
    assert 4 <= patterns[0].count(502) <= 16
    assert set(patterns[0]) == {200, 502}


async def test_duration_is_a_time_window(http: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    async with FakeWasender(api_key=KEY, clock=clock) as fake:
        fake.inject(RateLimited(retry_after=2), duration=3)
        limited = await send(http, fake, text())
        assert limited.status == 429
        assert limited.body == {"success": False, "message": "Too many requests", "retry_after": 2}
        clock.now += 3
        assert (await send(http, fake, text())).status == 200


async def test_only_to_limits_a_fault_to_one_recipient(
    http: aiohttp.ClientSession, wasender: FakeWasender
) -> None:
    wasender.inject(InvalidNumber(), only_to="256700000001@s.whatsapp.net")
    bad = await send(http, wasender, text(to=OTHER))
    assert bad.status == 422
    assert bad.body["message"] == "The phone number is not registered on WhatsApp"
    assert "to" in bad.body["errors"]
    assert (await send(http, wasender, text())).status == 200
    assert [s.to for s in wasender.sends] == [PHONE]


async def test_mark_invalid_always_answers_not_on_whatsapp(
    http: aiohttp.ClientSession, wasender: FakeWasender
) -> None:
    wasender.mark_invalid(OTHER)
    for to in (OTHER, "256700000001@s.whatsapp.net", OTHER):
        reply = await send(http, wasender, text(to=to))
        assert reply.status == 422
        assert reply.body["success"] is False
    assert (await send(http, wasender, text())).status == 200
    wasender.clear_faults()
    assert (await send(http, wasender, text(to=OTHER))).status == 200


async def test_latency_delays_then_answers_and_faults_stack(
    http: aiohttp.ClientSession, wasender: FakeWasender
) -> None:
    wasender.inject(SlowResponse(0.2), times=1)
    wasender.inject(SoftFailure(), times=1)
    started = time.monotonic()
    reply = await send(http, wasender, text())
    assert time.monotonic() - started >= 0.2
    assert (reply.status, reply.body["success"]) == (200, False)  # 2xx yet a failure
    assert (await send(http, wasender, text())).body["success"] is True


async def test_drop_connection_gives_a_client_error(
    http: aiohttp.ClientSession, wasender: FakeWasender
) -> None:
    wasender.inject(DropConnection(), times=1)
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await send(http, wasender, text())
    [attempt] = wasender.attempts
    assert (attempt.status, attempt.outcome) == (None, "fault:drop_connection")
    assert (await send(http, wasender, text())).status == 200


async def test_timeout_holds_until_the_client_gives_up(
    http: aiohttp.ClientSession, wasender: FakeWasender
) -> None:
    wasender.inject(Timeout(), times=1)
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await send(http, wasender, text(), client_timeout=0.2)
    assert time.monotonic() - started < 1.0
    assert wasender.attempts[0].outcome == "fault:timeout"
    assert wasender.sends == []


async def test_stop_releases_held_requests_promptly(http: aiohttp.ClientSession) -> None:
    fake = FakeWasender(api_key=KEY)
    await fake.start()
    fake.inject(Timeout())
    pending = asyncio.ensure_future(send(http, fake, text(), client_timeout=30))
    while not fake.attempts:  # noqa: ASYNC110 - the fake has no hook for "request arrived"
        await asyncio.sleep(0.01)
    started = time.monotonic()
    await fake.stop()
    await fake.stop()  # idempotent
    assert time.monotonic() - started < 1.0
    with pytest.raises(aiohttp.ClientError):
        await pending


async def test_a_crashing_handler_fails_the_test_on_exit(http: aiohttp.ClientSession) -> None:
    class Boom(Fault):
        name = "boom"

        def outcome(self) -> FaultEffect:
            raise RuntimeError("bug in a fault")

    with pytest.raises(FakeServerError, match="bug in a fault"):
        async with FakeWasender(api_key=KEY) as fake:
            fake.inject(Boom())
            assert (await send(http, fake, text())).status == 500


async def test_lifecycle_is_idempotent() -> None:
    fake = FakeWasender()
    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.url
    async with fake:
        url = fake.url
        await fake.start()
        assert fake.url == url
        assert url.startswith("http://127.0.0.1:")
    await fake.stop()


# -- waiting and the control API --------------------------------------------------------------


async def test_wait_for_sends(http: aiohttp.ClientSession, wasender: FakeWasender) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await send(http, wasender, text())

    task = asyncio.ensure_future(later())
    sends = await wasender.wait_for_sends(1, timeout=2)
    await task
    assert [s.msg_id for s in sends] == [100000]


async def test_wait_for_sends_timeout_explains_what_arrived(
    http: aiohttp.ClientSession, wasender: FakeWasender
) -> None:
    await send(http, wasender, text(message="first message"))
    wasender.inject(ServerError(503), times=1)
    await send(http, wasender, text())
    with pytest.raises(TimeoutError) as caught:
        await wasender.wait_for_sends(2, timeout=0.1)
    message = str(caught.value)
    assert "expected 2 send(s) within 0.1 s, got 1" in message
    assert "#100000 text to +2567******77: 'first message'" in message
    assert "503 fault:server_error x1" in message


async def control(
    http: aiohttp.ClientSession, fake: FakeWasender, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    async with http.request(method, f"{fake.url}/_control/{path}", json=body) as response:
        return response.status, await response.json()


async def test_control_api_reads_and_clears_records(
    http: aiohttp.ClientSession, wasender: FakeWasender
) -> None:
    assert await control(http, wasender, "GET", "health") == (200, {"status": "ok"})
    await send(http, wasender, text())
    await send(http, wasender, text(), key="nope")
    _, sends = await control(http, wasender, "GET", "sends")
    assert [(s["msg_id"], s["to"], s["kind"]) for s in sends["sends"]] == [(100000, PHONE, "text")]
    _, attempts = await control(http, wasender, "GET", "attempts")
    assert [a["status"] for a in attempts["attempts"]] == [200, 401]
    assert (await control(http, wasender, "DELETE", "sends"))[0] == 200
    assert wasender.sends == [] and wasender.attempts == []


async def test_control_api_injects_and_clears_faults(
    http: aiohttp.ClientSession, wasender: FakeWasender
) -> None:
    requests = [
        {"fault": "server_error", "status": 503, "times": 2},
        {"fault": "latency", "seconds": 0.01, "ratio": 0.5},
        {"fault": "rate_limited", "retry_after": 2, "duration": 3},
        {"fault": "invalid_number", "number": OTHER},
    ]
    for body in requests:
        status, _ = await control(http, wasender, "POST", "faults", body)
        assert status == 201
    _, listed = await control(http, wasender, "GET", "faults")
    assert [f["fault"] for f in listed["faults"]] == ["server_error", "latency", "rate_limited"]
    assert listed["invalid_numbers"] == ["256700000001"]
    assert (await send(http, wasender, text())).status == 503
    assert (await control(http, wasender, "DELETE", "faults"))[0] == 200
    assert wasender.faults == [] and wasender.invalid_numbers == set()
    assert (await send(http, wasender, text(to=OTHER))).status == 200


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"fault": "meteor"}, "unknown fault 'meteor'"),
        ({"fault": "server_error", "status": "503"}, "'status' must be a int"),
        ({"fault": "server_error", "status": 404}, "must be 500, 502, 503 or 504"),
        ({"fault": "latency", "seconds": 1, "colour": "red"}, "unknown field(s) for latency"),
        ({"fault": "timeout", "times": 0}, "times must be >= 1"),
        ({"fault": "drop_connection", "ratio": 1.5}, "ratio must be between 0 and 1"),
        ({"fault": "invalid_number", "number": "abc"}, "not a phone number"),
        ([1, 2], "JSON object"),
    ],
)
async def test_control_api_rejects_bad_input(
    http: aiohttp.ClientSession, wasender: FakeWasender, body: Any, needle: str
) -> None:
    status, reply = await control(http, wasender, "POST", "faults", body)
    assert status == 400
    assert needle in reply["error"]
    assert wasender.faults == []
