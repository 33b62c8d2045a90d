"""The spec's Node-side behaviours as named checks (docs/conformance.md lists them).

Each check is an async function of the ``Target`` that returns its evidence (one line) or
raises ``CheckFailed`` with the evidence of what went wrong. Every check writes as a contact of
its own (``new_phone``), so checks cannot see each other's messages or faults.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agent_service.contract.codec import ContractError, decode_request
from agent_service.contract.messages import FALLBACK_TEXT, AgentRequest
from fakes.wasender_faults import RateLimited, ServerError
from harness.conformance.agent_double import SeenRequest, new_phone
from harness.conformance.target import CheckFailed, CheckSkipped, Target
from harness.queue_tools import queue_depth
from harness.waiting import WaitTimeout, wait_until

CheckFn = Callable[[Target], Awaitable[str]]

WEBHOOK_POSTS = 20
WEBHOOK_P99_LIMIT = 1.0  # seconds: the spec's "answers at once"


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    run: CheckFn


async def _sent_to(target: Target, phone: str, text: str) -> str:
    """Wait for a send to ``phone``; its text must be ``text``. Returns the evidence."""
    try:
        await wait_until(
            lambda: bool(target.wasender.sends_to(phone)),
            timeout=target.patience,
            what="a send to the contact",
            interval=0.02,
        )
    except WaitTimeout:
        attempts = _attempts_to(target, phone)
        raise CheckFailed(
            f"nothing was sent to the contact within {target.patience:g} s; attempts {attempts}"
        ) from None
    sent = target.wasender.sends_to(phone)
    if sent[0].text != text:
        raise CheckFailed(f"sent {sent[0].text!r}, expected {text!r}")
    return f"sent to the contact: {text[:60]!r}"


async def webhook_answers_at_once(target: Target) -> str:
    phone = new_phone()
    latencies = []
    for n in range(WEBHOOK_POSTS):
        began = time.perf_counter()
        await target.say(phone, f"message {n} while the agent is slow")
        latencies.append(time.perf_counter() - began)
    await target.agent.wait_requests(phone, WEBHOOK_POSTS, target.patience)
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    evidence = (
        f"{WEBHOOK_POSTS} posts answered 200 with no reply from the agent: p50"
        f" {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    )
    if p99 >= WEBHOOK_P99_LIMIT:
        raise CheckFailed(evidence + f" (limit {WEBHOOK_P99_LIMIT:g} s)")
    return evidence


def _conformance_problems(request: SeenRequest) -> list[str]:
    import jsonschema  # type: ignore[import-untyped]  # the test extra

    from harness.contract_files import json_schema

    problems = [
        f"schema: {e.json_path}: {e.message[:100]}"
        for e in jsonschema.Draft202012Validator(
            json_schema(AgentRequest, "ag_queue.request")
        ).iter_errors(request.json())
    ]
    try:
        decoded = decode_request(request.body)
    except ContractError as exc:
        return [*problems, f"contract: {str(exc)[:200]}"]
    props = request.properties
    wanted = {
        "content_type": "application/json",
        "delivery_mode": 2,
        "message_id": decoded.messageId,
        "type": decoded.taskType.value,
    }
    problems += [
        f"AMQP {k} is {props[k]!r}, expected {v!r}" for k, v in wanted.items() if props[k] != v
    ]
    if props["timestamp"] is None:
        problems.append("AMQP timestamp is missing")
    return problems


async def request_conforms(target: Target) -> str:
    phone, text = new_phone(), "Where is my order 1042?"
    request = await target.request_for(phone, text)
    problems = _conformance_problems(request)
    body = request.json()
    if body.get("contact", {}).get("phoneNumber") != phone:
        problems.append("contact.phoneNumber is not the sender's number")
    if body.get("message", {}).get("text") != text:
        problems.append("message.text is not the text sent")
    if problems:
        raise CheckFailed("; ".join(problems))
    return "JSON Schema valid; content_type, delivery_mode 2, message_id, timestamp, type set"


async def history_grows(target: Target) -> str:
    phone = new_phone()
    first = await target.request_for(phone, "Hello, what are your opening hours?")
    await target.agent.reply(first, "We open at 9.")
    await _sent_to(target, phone, "We open at 9.")
    await target.say(phone, "And on Sunday?")
    try:
        second = (await target.agent.wait_requests(phone, 2, target.patience))[1]
    except TimeoutError:
        raise CheckFailed("the second message made no request") from None
    before = first.json()["context"]["conversationHistory"]
    after = second.json()["context"]["conversationHistory"]
    turns = [(t.get("role"), t.get("content")) for t in after]
    wanted = [("user", "Hello, what are your opening hours?"), ("assistant", "We open at 9.")]
    if turns[-2:] != wanted:
        raise CheckFailed(f"second request's history ends {turns[-2:]}, expected {wanted}")
    return f"history {len(before)} -> {len(after)} turns, ending with the first turn and its reply"


async def duplicate_event_once(target: Target) -> str:
    phone = new_phone()
    upsert, received = target.whatsapp.duplicate_pair(phone, "Any free slots on Friday?")
    answers = [(await target.post(event)).status for event in (upsert, received)]
    seen = await target.requests_before_sentinel(phone)
    if len(seen) != 1:
        raise CheckFailed(
            f"messages.upsert + messages.received of one id made {len(seen)} requests"
        )
    return f"answers {answers}; one request"


async def ignores_from_me_and_non_text(target: Target) -> str:
    phone = new_phone()
    whatsapp = target.whatsapp
    events = {
        "fromMe": whatsapp.from_me_event(phone, "Sent by the business", shape="current"),
        "image without caption": whatsapp.image_event(phone, None, shape="current"),
        "message.sent": {"event": "message.sent", "timestamp": 1, "data": {"msgId": 1}},
        "session.status": {"event": "session.status", "timestamp": 1, "data": {"status": "x"}},
    }
    answers = {name: (await target.post(event)).status for name, event in events.items()}
    failed = {name: status for name, status in answers.items() if status >= 500}
    if failed:
        raise CheckFailed(f"answered {failed}")
    seen = await target.requests_before_sentinel(phone)
    if seen:
        texts = [r.json().get("message", {}).get("text") for r in seen]
        raise CheckFailed(f"{len(seen)} request(s) from events owed none: {texts}")
    return f"answers {answers}; no request"


async def reply_sent(target: Target) -> str:
    phone = new_phone()
    request = await target.request_for(phone, "Do you have a phone charger in stock?")
    await target.agent.reply(request, "Yes, 3 in stock.")
    return await _sent_to(target, phone, "Yes, 3 in stock.")


async def error_reply_fallback(target: Target) -> str:
    phone = new_phone()
    request = await target.request_for(phone, "Hello")
    await target.agent.reply(request, FALLBACK_TEXT, error=True)
    return "status error: " + await _sent_to(target, phone, FALLBACK_TEXT)


async def dead_letter_fallback(target: Target) -> str:
    phone = new_phone()
    target.agent.reject_from.add(phone)
    await target.request_for(phone, "Hello")
    return f"rejected to {target.topology.dlx_agent}: " + await _sent_to(
        target, phone, FALLBACK_TEXT
    )


def _attempts_to(target: Target, phone: str) -> list[int | None]:
    return [a.status for a in target.wasender.attempts if a.to and phone[1:] in a.to]


async def wasender_5xx_retried(target: Target) -> str:
    phone = new_phone()
    target.wasender.inject(ServerError(503), times=1, only_to=phone)
    request = await target.request_for(phone, "Hello")
    await target.agent.reply(request, "Retried answer.")
    evidence = await _sent_to(target, phone, "Retried answer.")
    return f"attempts {_attempts_to(target, phone)}; {evidence}"


async def invalid_number_parked(target: Target) -> str:
    phone = new_phone()
    target.wasender.mark_invalid(phone)
    alerts_before = len(target.alerts.alerts)
    request = await target.request_for(phone, "Hello")
    await target.agent.reply(request, "You will not get this.")
    request_id = request.json()["messageId"]
    whatsapp_id = request.json()["message"]["messageId"]

    def alerted() -> bool:
        return any(
            request_id in str(a.body) or whatsapp_id in str(a.body)
            for a in target.alerts.alerts[alerts_before:]
        )

    try:
        await wait_until(alerted, timeout=target.patience, what="an admin alert", interval=0.05)
    except WaitTimeout:
        attempts = _attempts_to(target, phone)
        raise CheckFailed(f"no admin alert naming the message; attempts {attempts}") from None
    if target.wasender.sends_to(phone):
        raise CheckFailed("alerted, but the reply was also sent")
    parked = await queue_depth(target.connection, target.topology.webhook_parking)
    if parked < 1:
        raise CheckFailed(f"alerted, but {target.topology.webhook_parking} is empty")
    return f"attempts {_attempts_to(target, phone)}; alert sent; parked ({parked} in parking)"


async def rate_limit_waits(target: Target) -> str:
    phone = new_phone()
    wait = 2
    target.wasender.inject(RateLimited(retry_after=wait), times=1, only_to=phone)
    request = await target.request_for(phone, "Hello")
    await target.agent.reply(request, "After the wait.")
    await _sent_to(target, phone, "After the wait.")
    attempts = [a for a in target.wasender.attempts if a.to and phone[1:] in a.to]
    limited = next(i for i, a in enumerate(attempts) if a.status == 429)
    gap = attempts[limited + 1].received_at - attempts[limited].received_at
    evidence = f"429 with retry_after {wait}; next attempt {gap:.2f} s later, then sent"
    if gap < wait - 0.05:  # the fake's clock and ours are the same; allow rounding only
        raise CheckFailed(evidence)
    return evidence


async def wrong_signature_refused(target: Target) -> str:
    if not target.secret:
        raise CheckSkipped("no webhook secret is set")
    phone = new_phone()
    event = target.whatsapp.text_event(phone, "Forged", shape="current")
    statuses = {
        "wrong": (await target.post(event, signature=target.secret + "x")).status,
        "missing": (await target.post(event, signature=None)).status,
    }
    seen = await target.requests_before_sentinel(phone)
    if any(s not in (401, 403) for s in statuses.values()) or seen:
        raise CheckFailed(f"answers {statuses}, {len(seen)} request(s) from them")
    return f"answers {statuses}; no request"


CHECKS: list[Check] = [
    Check("webhook-answers-at-once", "the webhook answers 200 at once while the agent is"
          f" slow (p99 under {WEBHOOK_P99_LIMIT:g} s)", webhook_answers_at_once),
    Check("request-conforms", "a request conforms to the JSON Schema and carries the"
          " contract's AMQP properties", request_conforms),
    Check("history-grows", "the conversation history grows across turns", history_grows),
    Check("duplicate-event-once", "messages.upsert and messages.received of one id make one"
          " request", duplicate_event_once),
    Check("ignores-from-me-and-non-text", "fromMe and non-text events make no request",
          ignores_from_me_and_non_text),
    Check("reply-sent", "a reply is sent through Wasender to the right number with the"
          " agent's text", reply_sent),
    Check("error-reply-fallback", "an error reply sends the fallback text", error_reply_fallback),
    Check("dead-letter-fallback", "a request dead-lettered to dlx_agent gets the fallback",
          dead_letter_fallback),
    Check("wasender-5xx-retried", "a Wasender 5xx is retried and delivered",
          wasender_5xx_retried),
    Check("invalid-number-parked", "an invalid number is parked with an admin alert",
          invalid_number_parked),
    Check("rate-limit-waits", "a 429 waits retry_after before the next attempt",
          rate_limit_waits),
    Check("wrong-signature-refused", "a wrong or missing webhook signature is refused when a"
          " secret is set", wrong_signature_refused),
]  # fmt: skip
