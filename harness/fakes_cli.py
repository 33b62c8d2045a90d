"""``harness fakes``: the fakes as standalone servers, and fake WhatsApp events for any webhook.

    harness fakes serve --wasender-port 8081 --alerts-port 8082 --api-key dev-key
    harness fakes send-webhook http://127.0.0.1:3000/webhook --secret s3cret \\
        --phone +256703722777 --text "Where is my order?" --shape current --duplicate

For the Node team's own development loop: point their ``server.js`` at the fake Wasender
(``WASENDER_API_URL=http://127.0.0.1:8081/api``) and at the alert receiver, post events at it, and
read what it sent through the control API (``GET /_control/sends``, fakes/wasender_control.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from fakes.alert_receiver import AlertReceiver
from fakes.wasender import FakeWasender
from fakes.whatsapp import FakeWhatsApp, Shape

ENV_OF_KEY = "HARNESS_WASENDER_API_KEY"
ENV_OF_SIGNATURE = "HARNESS_WEBHOOK_SECRET"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="fakes_action", required=True)
    serve = sub.add_parser(
        "serve",
        help="the fake Wasender (with its control API) and the alert receiver, until Ctrl-C",
        description="Run the fake Wasender API (POST /api/send-message, control API under "
        "/_control/) and the admin-alert receiver (POST /alerts) on 127.0.0.1 until Ctrl-C or "
        "SIGTERM. Port 0 takes any free port; the URLs are printed once both listen.",
    )
    serve.add_argument("--wasender-port", type=int, default=0, help="default: any free port")
    serve.add_argument("--alerts-port", type=int, default=0, help="default: any free port")
    serve.add_argument(
        "--api-key",
        default=os.environ.get(ENV_OF_KEY),
        help=f"the Bearer key the fake accepts (default ${ENV_OF_KEY}, else a generated one,"
        " printed)",
    )
    serve.add_argument(
        "--rate-limit", type=int, default=None, help="sends per window (default: unlimited)"
    )
    serve.add_argument(
        "--rate-window", type=float, default=60.0, help="the rate-limit window in seconds"
    )
    serve.set_defaults(func=_serve)

    send = sub.add_parser(
        "send-webhook",
        help="post fake WhatsApp events (as Wasender sends them) to a webhook URL",
        description="Build one Wasender webhook event (or a file's events) and POST it to URL "
        "with X-Webhook-Signature. Prints each answer; exit 0 when every answer is 2xx, else 1.",
    )
    send.add_argument("url", help="the webhook, e.g. http://127.0.0.1:3000/webhook")
    send.add_argument(
        "--secret",
        default=os.environ.get(ENV_OF_SIGNATURE),
        help=f"sent as X-Webhook-Signature (default ${ENV_OF_SIGNATURE}; none: no header)",
    )
    send.add_argument("--phone", default="+256703722777", help="the contact (E.164)")
    send.add_argument("--text", default="Hello", help="the message text (or image caption)")
    send.add_argument("--name", default=None, help="the contact's pushName")
    send.add_argument("--shape", choices=["legacy", "current"], default="current")
    send.add_argument(
        "--event", choices=["messages.upsert", "messages.received"], default="messages.upsert"
    )
    send.add_argument("--lid", action="store_true", help="address by LID (current shape)")
    send.add_argument("--message-id", default=None, help="the WhatsApp message id (key.id)")
    kind = send.add_mutually_exclusive_group()
    kind.add_argument(
        "--duplicate", action="store_true", help="post it twice: upsert then received"
    )
    kind.add_argument("--from-me", action="store_true", help="a message the business sent")
    kind.add_argument("--image", action="store_true", help="an image; --text is its caption")
    kind.add_argument(
        "--file", type=Path, default=None, help="post this JSON event (or a list of events)"
    )
    send.add_argument("--no-caption", action="store_true", help="with --image: no caption")
    send.set_defaults(func=_send_webhook)


def main(args: argparse.Namespace) -> int:
    return int(args.func(args))


# -- serve -------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    api_key = args.api_key or secrets.token_hex(16)
    try:
        return asyncio.run(_run_servers(args, api_key, generated=not args.api_key))
    except OSError as exc:  # a port in use
        print(f"error: {exc}", file=sys.stderr)
        return 2


async def _run_servers(args: argparse.Namespace, api_key: str, *, generated: bool) -> int:
    wasender = FakeWasender(
        api_key=api_key,
        port=args.wasender_port,
        rate_limit_per_minute=args.rate_limit,
        rate_limit_window_seconds=args.rate_window,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with wasender, AlertReceiver(port=args.alerts_port) as alerts:
        key_note = " (generated)" if generated else ""
        print(f"fake Wasender:   {wasender.url}/api  (send: POST /api/send-message)")
        print(f"  API key{key_note}: {api_key}")
        print(f"  control API:   {wasender.url}/_control/  (sends, attempts, faults)")
        print(f"alert receiver:  {alerts.url}")
        print("Ctrl-C stops both.", flush=True)
        await stop.wait()
        print(f"stopped: {len(wasender.sends)} send(s), {len(alerts.alerts)} alert(s)")
    return 0


# -- send-webhook ------------------------------------------------------------------------------


def _events(args: argparse.Namespace, whatsapp: FakeWhatsApp) -> list[dict[str, Any]]:
    if args.file is not None:
        loaded = json.loads(args.file.read_text())
        return loaded if isinstance(loaded, list) else [loaded]
    shape: Shape = args.shape
    common: dict[str, Any] = {"shape": shape, "name": args.name, "message_id": args.message_id}
    if args.from_me:
        return [whatsapp.from_me_event(args.phone, args.text, shape=shape)]
    if args.image:
        caption = None if args.no_caption else args.text
        return [whatsapp.image_event(args.phone, caption, lid=args.lid, **common)]
    if args.duplicate:
        return list(whatsapp.duplicate_pair(args.phone, args.text, lid=args.lid, **common))
    return [whatsapp.text_event(args.phone, args.text, event=args.event, lid=args.lid, **common)]


def _send_webhook(args: argparse.Namespace) -> int:
    whatsapp = FakeWhatsApp(args.secret or "")
    try:
        events = _events(args, whatsapp)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_post_all(args.url, whatsapp, events, signed=bool(args.secret)))


async def _post_all(
    url: str, whatsapp: FakeWhatsApp, events: list[dict[str, Any]], *, signed: bool
) -> int:
    failed = 0
    for event in events:
        try:
            result = await whatsapp.post(url, event, **({} if signed else {"signature": None}))
        except Exception as exc:  # any transport failure is reported, not raised
            print(f"{event.get('event')}: no answer ({type(exc).__name__}: {exc})")
            failed += 1
            continue
        print(f"{event.get('event')}: {result.status} {result.body[:500]}")
        failed += not 200 <= result.status < 300
    return 1 if failed else 0
