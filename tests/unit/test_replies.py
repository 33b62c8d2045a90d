"""The wb_queue reply built for a request: every field the Node side reads, success and error."""

from __future__ import annotations

import traceback

import pytest

from agent_service.contract.messages import FALLBACK_TEXT, ReplyStatus, reply_id_for
from agent_service.pipeline.engine import AgentAnswer
from agent_service.pipeline.failures import Failure, FailureKind
from agent_service.pipeline.replies import error_reply, success_reply
from harness.message_factory import agent_request

pytestmark = pytest.mark.unit


def test_a_success_reply_carries_the_answer_and_the_agents_metadata() -> None:
    request = agent_request(name="Ann", phone="+256703722777")
    answer = AgentAnswer("hi Ann", ("search_faq",), ("looked it up",), tokens_used=42)
    reply = success_reply(request, answer, 1.23456)
    assert (reply.messageId, reply.originalMessageId) == (
        reply_id_for(request.messageId),
        request.messageId,
    )
    assert reply.status is ReplyStatus.SUCCESS and reply.response.text == "hi Ann"
    assert reply.contact.name == "Ann" and reply.contact.phoneNumber == "+256703722777"
    assert reply.contact.remoteJid == request.contact.remoteJid
    meta = reply.agentMetadata
    assert (meta.toolsUsed, meta.reasoningSteps, meta.tokensUsed) == (
        ["search_faq"],
        ["looked it up"],
        42,
    )
    assert meta.processingTime == 1.235  # milliseconds, not more


def test_an_error_reply_has_the_fallback_the_code_and_no_stack_by_default() -> None:
    request = agent_request(name="Ann")
    failure = Failure(FailureKind.PERMANENT, "AGENT_FAILED", "the agent gave up")
    try:
        raise ValueError("inner")
    except ValueError as caught:
        exc = caught
        reply = error_reply(request, failure, 0.98765, exc=exc)
        with_stack = error_reply(request, failure, 0.1, exc=exc, include_stack=True)
    assert reply.status is ReplyStatus.ERROR and reply.response.text == FALLBACK_TEXT
    assert reply.error is not None and reply.error.stack is None
    assert (reply.error.code, reply.error.message) == ("AGENT_FAILED", "the agent gave up")
    assert reply.agentMetadata.processingTime == 0.988 and reply.contact.name == "Ann"
    assert with_stack.error is not None and with_stack.error.stack is not None
    assert "Traceback (most recent call last):\n" in with_stack.error.stack
    assert with_stack.error.stack == "".join(traceback.format_exception(exc))


def test_an_error_message_is_bounded_and_never_empty() -> None:
    request = agent_request()
    long = error_reply(request, Failure(FailureKind.TRANSIENT, "C", "x" * 900), 0.1)
    empty = error_reply(request, Failure(FailureKind.TRANSIENT, "CODE", ""), 0.1)
    assert long.error is not None and long.error.message == "x" * 500
    assert empty.error is not None and empty.error.message == "CODE"
