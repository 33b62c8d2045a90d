"""``harness fakes serve`` and ``harness fakes send-webhook`` as the Node team runs them.

One ``serve`` process on fixed ports with a given key, driven by the official Wasender SDK;
``send-webhook`` (the command in this process) posting to a receiver built on the SDK's own
webhook handler.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from wasenderapi import WasenderAPIError, create_async_wasender

from harness import cli
from harness.process_tools import free_port

pytestmark = pytest.mark.unit

HARNESS = str(Path(sys.executable).parent / "harness")
KEY = "node-team-key"
SIGNATURE = "node-team-secret"
PHONE = "+256703722777"


@pytest.fixture
async def served() -> AsyncIterator[tuple[asyncio.subprocess.Process, int, int]]:
    wasender_port, alerts_port = free_port(), free_port()
    process = await asyncio.create_subprocess_exec(
        HARNESS,
        "fakes",
        "serve",
        "--wasender-port",
        str(wasender_port),
        "--alerts-port",
        str(alerts_port),
        "--api-key",
        KEY,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    banner: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not banner or "Ctrl-C" not in banner[-1]:
                line = (await process.stdout.readline()).decode()
                assert line, "serve exited early:\n" + "".join(banner)
                banner.append(line)
        assert f"127.0.0.1:{wasender_port}/api" in "".join(banner)
        yield process, wasender_port, alerts_port
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)


async def test_serve_answers_the_sdk_and_records_alerts(
    served: tuple[asyncio.subprocess.Process, int, int],
) -> None:
    process, wasender_port, alerts_port = served
    base = f"http://127.0.0.1:{wasender_port}"
    async with create_async_wasender(KEY, base_url=base + "/api") as client:
        sent = await client.send_contact(PHONE, "Jane Doe", "+256700000001")
    async with create_async_wasender("not-the-key", base_url=base + "/api") as client:
        with pytest.raises(WasenderAPIError) as refused:
            await client.send_text(PHONE, "hi")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"http://127.0.0.1:{alerts_port}/alerts", json={"reason": "test"}
        ) as response:
            assert response.status == 201
        async with http.get(base + "/_control/sends") as response:
            sends = (await response.json())["sends"]
    assert refused.value.status_code == 401
    assert [(s["kind"], s["msg_id"]) for s in sends] == [("contact", sent.response.data.message_id)]
    process.send_signal(signal.SIGTERM)
    assert process.stdout is not None
    rest = (await asyncio.wait_for(process.stdout.read(), 30)).decode()
    assert await process.wait() == 0
    assert "1 send(s), 1 alert(s)" in rest


@pytest.fixture
async def sdk_receiver() -> AsyncIterator[tuple[str, list[Any]]]:
    """A webhook receiver built on the SDK's handler: 200 with what it parsed, or 401."""
    client = create_async_wasender(KEY, webhook_secret=SIGNATURE)
    parsed: list[Any] = []

    async def webhook(request: web.Request) -> web.Response:
        try:
            event = await client.handle_webhook_event(
                await request.read(), request.headers.get("X-Webhook-Signature")
            )
        except WasenderAPIError as exc:
            return web.json_response({"error": exc.message}, status=401)
        parsed.append(event)
        return web.json_response({"event": str(event.event)})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/webhook", parsed
    finally:
        await runner.cleanup()


async def send_webhook(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    # In a thread: the command runs its own event loop (asyncio.run), as from a shell.
    code = await asyncio.to_thread(cli.main, ["fakes", "send-webhook", *args])
    return code, capsys.readouterr().out


async def test_send_webhook_posts_signed_events(
    sdk_receiver: tuple[str, list[Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, parsed = sdk_receiver
    code, out = await send_webhook(
        capsys, url, "--secret", SIGNATURE, "--duplicate", "--lid", "--phone", PHONE
    )
    assert code == 0, out
    assert [str(e.event) for e in parsed] == [
        "WasenderWebhookEventType.MESSAGES_UPSERT",
        "messages.received",
    ]
    ids = {e.data["messages"]["key"]["id"] for e in parsed[1:]}
    assert len(ids) == 1
    sample = tmp_path / "event.json"
    sample.write_text(json.dumps({"event": "session.status", "timestamp": 1, "data": {}}))
    code, out = await send_webhook(capsys, url, "--secret", "wrong", "--file", str(sample))
    assert code == 1, out
    assert "401" in out
    assert len(parsed) == 2
