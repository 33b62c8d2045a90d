"""wb_queue provider verification: the agent service's replies against the Node consumer pact.

The pact (contracts/pacts/whatsapp-node-service-whatsapp-agent-service.json) is written by the
Node project's consumer test (contracts/node/test/wb_queue.consumer.test.js). Each message is
produced by the service's real code: ``success_reply`` / ``error_reply`` on a fixed request,
then ``reply_message`` for the body bytes and the AMQP properties. A provider state picks what
the agent came up with; the interaction's description picks the reply path. The last test
plays each state through the running service on a broker and verifies what it published.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest
from aiohttp import ServerDisconnectedError
from pact import Verifier
from pact.types import Message

from agent_service.contract.amqp import reply_message
from agent_service.contract.codec import decode_request
from agent_service.contract.messages import AgentReply, AgentRequest
from agent_service.pipeline.engine import AgentAnswer
from agent_service.pipeline.failures import Failure, FailureKind
from agent_service.pipeline.replies import error_reply, success_reply
from agent_service.testing import FakeEngine
from harness import pacts
from harness.queue_tools import drain, publish_requests
from harness.waiting import wait_until

pytestmark = pytest.mark.contract

os.environ.setdefault("PACT_DO_NOT_TRACK", "true")

PACT_FILE = pacts.PACTS_DIR / pacts.WB_QUEUE_PACT

REQUEST: AgentRequest = decode_request(
    json.dumps(
        {
            "messageId": "6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a10",
            "timestamp": 1_700_000_000_000,
            "taskType": "order",
            "contact": {
                "remoteJid": "256703722777@s.whatsapp.net",
                "phoneNumber": "+256703722777",
                "name": "John Doe",
            },
            "message": {
                "text": "Do you have rice?",
                "messageId": "3EB0C431C26A1916E2F7",
                "timestamp": 1_699_999_990,
            },
        }
    ).encode()
)


@dataclass(frozen=True)
class Outcome:
    """What the agent came up with for REQUEST: an answer, or a failure it gave up on."""

    processing_time: float
    answer: AgentAnswer | None = None
    failure: Failure | None = None


# One per provider state of the Node consumer pact.
OUTCOMES = {
    "the agent answered using tools": Outcome(
        2.5,
        answer=AgentAnswer(
            text="We have rice: 25 kg bags at 95,000 UGX.",
            tools_used=("search_catalogue", "search_faq"),
            reasoning_steps=("looked up stock", "checked prices"),
            tokens_used=150,
        ),
    ),
    "a tool failed but the agent still answered": Outcome(
        3.1,
        answer=AgentAnswer(
            text="I could not check stock, but we usually have rice.",
            tools_used=("get_order_status",),
            tokens_used=90,
            tool_failed=True,
        ),
    ),
    "the model stayed unavailable after every retry": Outcome(
        0.8,
        failure=Failure(
            FailureKind.TRANSIENT,
            "MODEL_UNAVAILABLE",
            "model API answered 503 (gave up after 3 retries)",
        ),
    ),
}

SuccessBuilder = Callable[[AgentRequest, AgentAnswer, float], AgentReply]
Encoder = Callable[[AgentReply], aio_pika.Message]


class ReplyProducer:
    """The agent service's reply path, as the verifier drives it."""

    def __init__(
        self, build_success: SuccessBuilder = success_reply, encode: Encoder = reply_message
    ):
        self._build_success = build_success
        self._encode = encode
        self._state: str | None = None
        # The verifier reports a raising message handler only as an HTML error page: keep
        # the reason for the assertion message.
        self.errors: list[str] = []

    def set_state(self, state: str, action: str, parameters: dict[str, Any] | None) -> None:
        # Must never raise: a raising state handler makes the verifier retry for about two
        # minutes. An unknown state is reported by the message handler instead.
        self._state = state if action == "setup" else None

    def _outcome(self) -> Outcome:
        outcome = OUTCOMES.get(self._state or "")
        if outcome is None:
            known = ", ".join(repr(s) for s in OUTCOMES)
            raise KeyError(f"no provider state {self._state!r} in this test (known: {known})")
        return outcome

    def _message(self, reply: AgentReply) -> Message:
        amqp = self._encode(reply)
        return Message(
            contents=amqp.body,
            metadata=pacts.amqp_metadata(amqp),
            content_type=amqp.content_type,
        )

    def answer(self) -> Message:
        """``status: success``, or ``partial`` when a tool failed (success_reply decides)."""
        outcome = self._outcome()
        assert outcome.answer is not None, f"state {self._state!r} has no answer"
        return self._message(self._build_success(REQUEST, outcome.answer, outcome.processing_time))

    def error(self) -> Message:
        outcome = self._outcome()
        assert outcome.failure is not None, f"state {self._state!r} has no failure"
        return self._message(error_reply(REQUEST, outcome.failure, outcome.processing_time))

    def _recording(self, description: str, produce: Callable[[], Message]) -> Callable[[], Message]:
        def handler() -> Message:
            try:
                return produce()
            except Exception as exc:
                self.errors.append(f"{description!r}: {type(exc).__name__}: {exc}")
                raise

        return handler

    def handlers(self) -> dict[str, Callable[..., Message] | Message | bytes]:
        """One message handler per interaction description of the Node consumer pact."""
        paths = {
            "a success reply": self.answer,
            "a partial reply": self.answer,
            "an error reply": self.error,
        }
        return {d: self._recording(d, produce) for d, produce in paths.items()}


def from_broker() -> bool:
    """In CI with a broker, PACT_VERIFY_FROM_BROKER=true verifies the pacts the broker selects
    and publishes the result (can-i-deploy needs it); otherwise the committed file."""
    return os.environ.get("PACT_VERIFY_FROM_BROKER") == "true" and bool(
        os.environ.get("PACT_BROKER_BASE_URL")
    )


def verify(producer: ReplyProducer, *, broker: bool = False) -> tuple[bool, str]:
    """Verify every interaction in one call (each verify costs about 0.5 s)."""
    verifier = (
        Verifier(pacts.AGENT_SERVICE)
        .message_handler(producer.handlers())
        .state_handler(producer.set_state, teardown=True)
    )
    if broker:
        # URL and token come from PACT_BROKER_BASE_URL / PACT_BROKER_TOKEN.
        selector = verifier.broker_source(selector=True)
        selector.consumer_version(main_branch=True)
        selector.consumer_version(matching_branch=True)
        selector.consumer_version(deployed_or_released=True)
        selector.include_pending().build()
        verifier.set_publish_options(
            version=os.environ["GIT_COMMIT"], branch=os.environ.get("GIT_BRANCH")
        )
    else:
        verifier.add_source(PACT_FILE)
    try:
        verifier.verify()
    except RuntimeError:
        report = verifier.output(strip_ansi=True)
        errors = "".join(f"\nmessage handler failed: {e}" for e in producer.errors)
        return False, report + errors
    return True, verifier.output(strip_ansi=True)


def test_agent_service_replies_satisfy_the_node_consumer() -> None:
    assert PACT_FILE.exists(), f"{PACT_FILE} is missing: {pacts.REGENERATE}"
    ok, report = verify(ReplyProducer(), broker=from_broker())
    assert ok, f"the agent service's replies break the Node consumer pact:\n{report}"


def _altering(field: str, change: Callable[[Any], Any]) -> Encoder:
    """reply_message, then ``change`` applied to ``agentMetadata[field]`` of the body."""

    def encode(reply: AgentReply) -> aio_pika.Message:
        message = reply_message(reply)
        body = json.loads(message.body)
        body["agentMetadata"][field] = change(body["agentMetadata"][field])
        message.body = json.dumps(body).encode()
        return message

    return encode


@pytest.mark.parametrize(
    ("field", "change"),
    [("processingTime", str), ("tokensUsed", str)],
    ids=["processingTime as a string", "tokensUsed as a string"],
)
def test_a_changed_field_type_fails_naming_the_field(
    field: str, change: Callable[[Any], Any]
) -> None:
    ok, report = verify(ReplyProducer(encode=_altering(field, change)))
    assert not ok, f"a reply with {field} as a string passed the Node consumer pact:\n{report}"
    assert f"$.agentMetadata.{field}" in report, report


def test_a_missing_correlation_id_fails_naming_it() -> None:
    def without_correlation_id(reply: AgentReply) -> aio_pika.Message:
        message = reply_message(reply)
        message.correlation_id = None
        return message

    ok, report = verify(ReplyProducer(encode=without_correlation_id))
    assert not ok, f"a reply without a correlation id passed:\n{report}"
    assert "correlationId" in report, report


class PublishedReplies(ReplyProducer):
    """The messages the running agent service published to wb_queue, one per provider state:
    the bytes and AMQP properties as they left the service, not rebuilt in the test."""

    def __init__(self, published: dict[str, aio_pika.abc.AbstractIncomingMessage]) -> None:
        super().__init__()
        self._published = published

    def _captured(self) -> Message:
        self._outcome()  # an unknown state is reported as such
        amqp = self._published[self._state or ""]
        return Message(
            contents=amqp.body,
            metadata=pacts.amqp_metadata(amqp),  # type: ignore[arg-type]
            content_type=amqp.content_type,
        )

    def answer(self) -> Message:
        return self._captured()

    def error(self) -> Message:
        return self._captured()


@pytest.mark.e2e
async def test_the_replies_the_running_service_publishes_satisfy_the_node_consumer(
    make_topology: Any, start_agent_service: Any, amqp_connection: Any
) -> None:
    """Each provider state played through the real service on a broker (its handler, replies,
    codec and publisher), and the replies it put on wb_queue verified against the pact."""
    requests: dict[str, AgentRequest] = {}
    for n, (state, outcome) in enumerate(OUTCOMES.items()):
        update: dict[str, Any] = {"messageId": f"6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a1{n}"}
        if outcome.failure is not None:  # its last retry: the failure is answered at once
            update["metadata"] = REQUEST.metadata.model_copy(update={"retryCount": 3})
        requests[state] = REQUEST.model_copy(update=update)
    by_id = {r.messageId: state for state, r in requests.items()}

    def behaviour(request: AgentRequest) -> AgentAnswer:
        outcome = OUTCOMES[by_id[request.messageId]]
        if outcome.answer is None:
            raise ServerDisconnectedError()  # the model's link, transient
        return outcome.answer

    topology = await make_topology()
    await start_agent_service(topology, engine=FakeEngine(behaviour))
    channel = await amqp_connection.channel(publisher_confirms=True)
    await publish_requests(channel, topology, list(requests.values()))
    published: dict[str, aio_pika.abc.AbstractIncomingMessage] = {}

    async def all_published() -> bool:
        for message in await drain(amqp_connection, topology.webhook_queue):
            published[by_id[message.correlation_id or ""]] = message
        return len(published) == len(requests)

    await wait_until(all_published, timeout=30, what="a reply to every provider state")
    ok, report = await asyncio.to_thread(verify, PublishedReplies(published))
    assert ok, f"the running service's replies break the Node consumer pact:\n{report}"
