"""ag_queue consumer pact: what the agent service needs of the Node service's requests.

Every interaction is handed to the agent service's real decoding code (``decode_request`` on the
body bytes, the checks of the AMQP properties it relies on), then to the real reply builder, so
the pact can only describe messages the service accepts. The pact file is written into a
temporary folder and compared with ``contracts/pacts/`` (``PACT_UPDATE=1`` replaces it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pact import Pact, match
from pact.error import PactVerificationError

from agent_service.contract.amqp import CONTENT_TYPE
from agent_service.contract.codec import ContractError, decode_request
from agent_service.contract.messages import AgentRequest, Priority, Role, TaskType
from agent_service.pipeline.engine import AgentAnswer
from agent_service.pipeline.replies import success_reply
from harness import pacts

pytestmark = pytest.mark.contract

os.environ.setdefault("PACT_DO_NOT_TRACK", "true")

# Fixed examples: the pact file changes only when the contract does.
REQUEST_ID = "6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a10"
SENT_AT_MS = 1_700_000_000_000  # Date.now() on the Node side: milliseconds
WHATSAPP_SENT_AT = 1_699_999_990  # WhatsApp's messageTimestamp: seconds


@dataclass(frozen=True)
class RequestCase:
    """One ag_queue interaction and what the agent service must read out of it."""

    description: str
    task_type: TaskType
    priority: Priority
    text: str
    retry_count: int = 0
    named_contact: bool = True
    with_history: bool = False
    state: str | None = None
    state_params: dict[str, object] = field(default_factory=dict)


CASES = [
    RequestCase(
        "a conversation request with history and notes",
        TaskType.CONVERSATION,
        Priority.NORMAL,
        "Do you deliver on Sundays?",
        with_history=True,
        state="a VIP customer with two earlier turns",
    ),
    RequestCase(
        "an appointment request", TaskType.APPOINTMENT, Priority.HIGH, "Book me for Friday 10am"
    ),
    RequestCase("an order request", TaskType.ORDER, Priority.URGENT, "Where is order 1042?"),
    RequestCase(
        "a search request from a contact without a name",
        TaskType.SEARCH,
        Priority.NORMAL,
        "Find a pharmacy near Kampala Road",
        named_contact=False,
    ),
    RequestCase(
        "a retried conversation request",
        TaskType.CONVERSATION,
        Priority.HIGH,
        "Are you open today?",
        retry_count=2,
        state="the first two attempts failed",
        state_params={"retryCount": 2},
    ),
]


def _contact(case: RequestCase) -> dict[str, Any]:
    contact: dict[str, Any] = {
        "remoteJid": pacts.jid("256703722777@s.whatsapp.net"),
        "phoneNumber": pacts.phone("+256703722777"),
    }
    if case.named_contact:
        contact["name"] = match.str("John Doe")
        contact["countryCode"] = match.regex("256", regex=r"^[0-9]{1,4}$")
    return contact


def _context(case: RequestCase) -> dict[str, Any]:
    if not case.with_history:
        # A first message: Node sends the empty containers, never null.
        return {"conversationHistory": [], "sessionData": {}}
    turn = {"role": pacts.one_of(Role.USER), "content": match.str("Do you sell rice?")}
    return {
        "conversationHistory": match.each_like(turn, min=1),
        "userNotes": match.str("VIP customer - priority support"),
        "sessionData": {},
    }


def request_body(case: RequestCase) -> dict[str, Any]:
    return {
        "messageId": pacts.uuid(REQUEST_ID),
        "timestamp": pacts.epoch(SENT_AT_MS),
        "taskType": pacts.one_of(case.task_type),
        "contact": _contact(case),
        "message": {
            "text": pacts.non_empty(case.text),
            "messageId": pacts.non_empty("3EB0C431C26A1916E2F7"),
            "timestamp": pacts.epoch(WHATSAPP_SENT_AT),
        },
        "context": _context(case),
        "metadata": {
            "priority": pacts.one_of(case.priority),
            "retryCount": match.int(case.retry_count),
            "maxRetries": match.int(3),
        },
    }


# The AMQP properties the service relies on: it reads JSON, and logs and dead-letters by the
# message id (DESIGN.md section 3: message_id = body messageId).
REQUEST_METADATA = {"contentType": CONTENT_TYPE, "messageId": pacts.uuid(REQUEST_ID)}


def add_interaction(pact: Pact, case: RequestCase) -> None:
    interaction = pact.upon_receiving(case.description, "Async")
    if case.state is not None:
        interaction.given(case.state, case.state_params or None)
    interaction.with_body(request_body(case), CONTENT_TYPE).with_metadata(REQUEST_METADATA)


def new_pact() -> Pact:
    return Pact(pacts.AGENT_SERVICE, pacts.NODE_SERVICE).with_specification("V4")


def accept(body: str | bytes | None, metadata: dict[str, object]) -> AgentRequest:
    """What the agent service does with a delivery before the agent runs, or raises."""
    assert body is not None, "a request without a body"
    raw = body if isinstance(body, bytes) else str(body).encode("utf-8")
    content_type = metadata.get("contentType")
    assert content_type == CONTENT_TYPE, f"contentType {content_type!r}, not {CONTENT_TYPE}"
    request = decode_request(raw)  # raises ContractError naming the field
    assert metadata.get("messageId") == request.messageId, "AMQP messageId != body messageId"
    # The service must be able to answer it: the reply is built from the request's contact.
    success_reply(request, AgentAnswer(text="ok"), processing_time=0.1)
    return request


def accepts(body: str | bytes | None, metadata: dict[str, object]) -> None:
    accept(body, metadata)


def checking(case: RequestCase) -> Callable[[str | bytes | None, dict[str, object]], None]:
    """A pact handler (sync: an async one would pass without running) for one case."""

    def handler(body: str | bytes | None, metadata: dict[str, object]) -> None:
        request = accept(body, metadata)
        assert request.taskType is case.task_type
        assert request.metadata.priority is case.priority
        assert request.metadata.retryCount == case.retry_count
        assert request.message.text == case.text
        assert (request.contact.name is not None) == case.named_contact
        assert bool(request.context.conversationHistory) == case.with_history
        assert (request.context.userNotes is not None) == case.with_history

    return handler


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.description)
def test_agent_service_accepts_the_request(case: RequestCase) -> None:
    pact = new_pact()
    add_interaction(pact, case)
    pact.verify(checking(case), "Async")


def test_cases_cover_every_task_type_priority_and_a_retry() -> None:
    assert {c.task_type for c in CASES} == set(TaskType)
    assert {c.priority for c in CASES} == set(Priority)
    assert any(c.retry_count > 0 for c in CASES) and any(c.retry_count == 0 for c in CASES)
    assert any(c.with_history for c in CASES)
    assert len({c.description for c in CASES}) == len(CASES)


def test_pact_file_matches_the_committed_one(tmp_path: Path) -> None:
    pact = new_pact()
    for case in CASES:
        add_interaction(pact, case)
    # Each case's own checks ran in the parametrized test; here every interaction of the file
    # must pass the service's decoding, in one verify (it re-runs all registered interactions).
    pact.verify(accepts, "Async")
    # overwrite: write_file merges by default, which keeps deleted interactions forever.
    pact.write_file(tmp_path, overwrite=True)
    drift = pacts.settle(tmp_path / pacts.AG_QUEUE_PACT)
    assert drift is None, drift


def test_a_request_the_service_rejects_fails_the_pact() -> None:
    # The handler really runs the service's validation: an unknown taskType cannot get into
    # the pact, and the failure names the field.
    pact = new_pact()
    body = request_body(CASES[1])
    body["taskType"] = "poetry"
    pact.upon_receiving("a request with an unknown task type", "Async").with_body(
        body, CONTENT_TYPE
    ).with_metadata(REQUEST_METADATA)
    with pytest.raises(PactVerificationError) as failure:
        pact.verify(checking(CASES[1]), "Async")
    error = failure.value.errors[0].error
    assert isinstance(error, ContractError)
    assert "taskType" in str(error)


def test_metadata_the_service_relies_on_is_checked() -> None:
    pact = new_pact()
    pact.upon_receiving("a request sent as text/plain", "Async").with_body(
        request_body(CASES[1]), CONTENT_TYPE
    ).with_metadata({"contentType": "text/plain", "messageId": REQUEST_ID})
    with pytest.raises(PactVerificationError) as failure:
        pact.verify(checking(CASES[1]), "Async")
    assert "contentType 'text/plain'" in str(failure.value.errors[0].error)
