"""Posting fuzzed webhook events to a Node service and counting what reaches ag_queue.

The target consumes the agent queue itself (it stands in for the agent service, so run it with
no agent consuming there) and counts requests per WhatsApp message id (``message.messageId``).
After each batch it waits until every message owed a request has one, then checks: no answer
5xx or missing (a crash), no id with two requests, no request for what is owed none, and the
request carries the text that was sent. Counts are global over the run, so a late duplicate of
an earlier batch fails the batch in which it shows up.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aio_pika
import aiohttp
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from harness.waiting import WaitTimeout, wait_until

if TYPE_CHECKING:
    from harness.fuzzing.webhook_events import Case, Expect

SIGNATURE_HEADER = "X-Webhook-Signature"


@dataclass
class WebhookTally:
    """The run's figures."""

    examples: int = 0
    posts_by_kind: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    requests: int = 0
    owed: Counter[Expect] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def render(self, seconds: float) -> str:
        posts = sum(self.posts_by_kind.values())
        lines = [
            f"Webhook fuzzing: {self.examples} examples, {posts} posts, {seconds:.0f} s",
            "  answers         " + ", ".join(f"{k} x{v}" for k, v in sorted(self.statuses.items())),
            f"  requests        {self.requests} on the agent queue"
            f" (owed: one {self.owed['one']}, at most one {self.owed['at_most_one']},"
            f" none {self.owed['none']})",
            "  posts by kind",
        ]
        lines += [f"    {k:<28} {v}" for k, v in sorted(self.posts_by_kind.items())]
        lines.append(f"  failures        {len(self.failures)}")
        lines += [f"    {f}" for f in self.failures[:20]]
        lines.append("PASS" if not self.failures else "FAIL")
        return "\n".join(lines)


class WebhookTarget:
    """A webhook URL, its secret, and the broker queue its requests go to."""

    def __init__(
        self, webhook_url: str, secret: str | None, amqp_url: str, queue: str, *, wait: float = 10
    ) -> None:
        self.webhook_url = webhook_url
        self._secret = secret
        self._amqp_url = amqp_url
        self._queue = queue
        self._wait = wait
        self._run = secrets.token_hex(4).upper()
        self._next = 0
        self.requests: Counter[str] = Counter()
        self.texts: dict[str, list[str]] = {}
        self.owed: dict[str, Expect] = {}
        self.expected_text: dict[str, str] = {}
        self._reported: set[str] = set()  # ids already failed: each is reported once
        self._connection: AbstractRobustConnection | None = None
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self._amqp_url, timeout=10)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=100)
        # Passive: the queue is the Node service's (or the simulator's); never redeclare it.
        queue = await channel.declare_queue(self._queue, passive=True)
        await queue.consume(self._on_request, no_ack=True)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._connection is not None:
            await self._connection.close()

    async def _on_request(self, message: AbstractIncomingMessage) -> None:
        try:
            body = json.loads(message.body)
            whatsapp_id = str(body["message"]["messageId"])
            text = str(body["message"]["text"])
        except (ValueError, KeyError, TypeError):
            whatsapp_id, text = f"<unreadable {message.message_id}>", ""
        self.requests[whatsapp_id] += 1
        self.texts.setdefault(whatsapp_id, []).append(text)

    def _fresh_ids(self, cases: list[Case]) -> dict[str, str]:
        ids: dict[str, str] = {}
        for case in cases:
            for placeholder in sorted(set(case.expect) | set(case.texts)):
                if placeholder not in ids:
                    ids[placeholder] = f"3EB0FZ{self._run}{self._next:08X}"
                    self._next += 1
        return ids

    async def exchange(self, cases: list[Case], tally: WebhookTally) -> None:
        """Post one batch in order and check it; failures go to ``tally`` and raise."""
        assert self._http is not None, "start() first"
        ids = self._fresh_ids(cases)
        problems: list[str] = []
        for case in cases:
            tally.posts_by_kind[case.kind] += 1
            headers = {"Content-Type": "application/json"}
            if self._secret is not None:
                headers[SIGNATURE_HEADER] = self._secret
            try:
                async with self._http.post(
                    self.webhook_url, data=case.raw(ids), headers=headers
                ) as response:
                    status = response.status
                    detail = (await response.text())[:200]
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, detail = 0, repr(exc)
            tally.statuses[status] += 1
            if status == 0 or status >= 500:
                problems.append(f"{case.kind}: answered {status or 'nothing'} {detail}")
            for placeholder, expect in case.expect.items():
                real = ids[placeholder]
                if self.owed.get(real) != "one":  # a duplicate post keeps "one"
                    self.owed[real] = expect
            for placeholder, text in case.texts.items():
                self.expected_text[ids[placeholder]] = text
        tally.examples += 1
        for real in set(ids.values()):
            tally.owed[self.owed.get(real, "none")] += 1
        problems += await self._check(set(ids.values()))
        tally.requests = sum(self.requests.values())
        if problems:
            tally.failures += problems
            raise AssertionError("; ".join(problems))

    async def _check(self, batch: set[str]) -> list[str]:
        due = [i for i in batch if self.owed.get(i) == "one"]
        with contextlib.suppress(WaitTimeout):
            await wait_until(
                lambda: all(self.requests[i] >= 1 for i in due),
                timeout=self._wait,
                what="a request for every inbound text message",
                interval=0.01,
            )
        return self.problems()

    def problems(self) -> list[str]:
        """What is newly wrong (any batch so far): missing, extra or wrong requests."""
        found: list[str] = []
        for real, expect in self.owed.items():
            if real in self._reported:
                continue
            count = self.requests[real]
            before = len(found)
            if expect == "one" and count != 1:
                found.append(f"message {real}: {count} requests, owed exactly one")
            elif expect == "at_most_one" and count > 1:
                found.append(f"message {real}: {count} requests, owed at most one")
            elif expect == "none" and count:
                found.append(f"message {real}: {count} requests, owed none")
            wanted = self.expected_text.get(real)
            if count and wanted is not None and self.texts[real][0] != wanted:
                found.append(f"message {real}: the request's text differs from the message's")
            if len(found) > before:
                self._reported.add(real)
        foreign = [i for i in self.requests if i not in self.owed and i not in self._reported]
        self._reported.update(foreign)
        if foreign:
            found.append(f"{len(foreign)} request(s) for no message of this run: {foreign[:3]}")
        return found
