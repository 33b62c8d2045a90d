"""Valid documents of both envelopes, and the fixed base documents the mutations change."""

from __future__ import annotations

from hypothesis import strategies as st

from agent_service.contract.messages import (
    Priority,
    ReplyStatus,
    ResponseType,
    Role,
    TaskType,
)
from harness.fuzzing.values import (
    Json,
    country_codes,
    counts,
    durations,
    enum_values,
    error_codes,
    jids,
    json_objects,
    list_of,
    names,
    nonempty_texts,
    object_of,
    phones,
    texts,
    timestamps,
    uuids,
)

# --- valid documents -----------------------------------------------------------------------


def _contacts(full: bool, country: bool) -> st.SearchStrategy[dict[str, Json]]:
    optional = {"name": names, "countryCode": st.none() | country_codes}
    if not country:
        del optional["countryCode"]
    required = {"remoteJid": jids, "phoneNumber": phones}
    return object_of(required, optional, full=full, with_extras=True)


def _requests(full: bool) -> st.SearchStrategy[dict[str, Json]]:
    history_turns = object_of({"role": enum_values(Role), "content": texts})
    contexts = object_of(
        {},
        {
            "conversationHistory": list_of(history_turns, full),
            "userNotes": st.none() | texts,
            "sessionData": json_objects,
        },
        full=full,
    )
    metadata = object_of(
        {},
        {"priority": enum_values(Priority), "retryCount": counts, "maxRetries": counts},
        full=full,
    )
    user_messages = object_of(
        {"text": nonempty_texts, "messageId": nonempty_texts, "timestamp": timestamps}
    )
    return object_of(
        {
            "messageId": uuids,
            "timestamp": timestamps,
            "taskType": enum_values(TaskType),
            "contact": _contacts(full, country=True),
            "message": user_messages,
        },
        {"context": contexts, "metadata": metadata},
        full=full,
        with_extras=True,
    )


def _replies(full: bool) -> st.SearchStrategy[dict[str, Json]]:
    responses = object_of(
        {"text": nonempty_texts},
        {"type": enum_values(ResponseType), "attachments": list_of(json_objects, full)},
        full=full,
    )
    agent_metadata = object_of(
        {},
        {
            "toolsUsed": list_of(texts, full),
            "reasoningSteps": list_of(texts, full),
            "processingTime": durations,
            "tokensUsed": counts,
        },
        full=full,
    )
    error_infos = object_of(
        {"code": error_codes, "message": texts}, {"stack": st.none() | texts}, full=full
    )
    fields = object_of(
        {
            "messageId": uuids,
            "originalMessageId": uuids,
            "timestamp": timestamps,
            "status": enum_values(ReplyStatus),
            "contact": _contacts(full, country=False),
            "response": responses,
        },
        {"agentMetadata": agent_metadata},
        full=full,
        with_extras=True,
    )

    @st.composite
    def reply(draw: st.DrawFn) -> dict[str, Json]:
        doc = draw(fields)
        # The one cross-field rule: ``error`` is present exactly when status is "error".
        if doc["status"] == ReplyStatus.ERROR.value:
            doc["error"] = draw(error_infos)
        elif draw(st.booleans()):
            doc["error"] = None
        return doc

    return reply()


requests = _requests(full=False)
replies = _replies(full=False)
# Every optional field present and every list non-empty: what the mutations start from, so
# that every field of the table can be changed.
full_requests = _requests(full=True)
full_replies = _replies(full=True)

# What the mutations start from: fixed documents with every optional field present (so every
# field of the table can be changed) and every list non-empty. Drawing the base document would
# spend most of the time on fields the mutation does not touch; the round-trip tests vary them.
_REQUEST_BASE: dict[str, Json] = {
    "messageId": "6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a10",
    "timestamp": 1_234_567_890,
    "taskType": "conversation",
    "contact": {
        "remoteJid": "256703722777@s.whatsapp.net",
        "phoneNumber": "+256703722777",
        "name": "John Doe",
        "countryCode": "256",
    },
    "message": {"text": "User's message text", "messageId": "3EB0ABCD", "timestamp": 1_234_567_890},
    "context": {
        "conversationHistory": [
            {"role": "user", "content": "Previous message 1"},
            {"role": "assistant", "content": "Previous response 1"},
        ],
        "userNotes": "VIP customer - priority support",
        "sessionData": {"cart": [1, 2], "lang": "en"},
    },
    "metadata": {"priority": "normal", "retryCount": 0, "maxRetries": 3},
}
BASE_REQUESTS: list[dict[str, Json]] = [
    _REQUEST_BASE,
    {
        **_REQUEST_BASE,
        "messageId": "6F1C1C5E-8A4E-4C1E-9A51-3D2F0B7F9A10",
        "timestamp": 1_700_000_000_000,
        "taskType": "order",
        "contact": {
            "remoteJid": "120363025246125486-1609459200@g.us",
            "phoneNumber": "+4915112345678",
            "name": "Zoë 中文 😀",
            "countryCode": None,
            "avatar": "added by a newer Node version",
        },
        "context": {
            "conversationHistory": [{"role": "assistant", "content": ""}],
            "userNotes": None,
            "sessionData": {},
        },
        "metadata": {"priority": "urgent", "retryCount": 2, "maxRetries": 2},
        "schemaVersion": 2,
    },
]
_REPLY_BASE: dict[str, Json] = {
    "messageId": "0d3b8a52-2f0e-4d8c-9a3c-1f2e3d4c5b6a",
    "originalMessageId": "6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a10",
    "timestamp": 1_700_000_000_000,
    "status": "success",
    "contact": {
        "remoteJid": "256703722777@s.whatsapp.net",
        "phoneNumber": "+256703722777",
        "name": "John Doe",
    },
    "response": {"text": "Agent's response message", "type": "text", "attachments": [{}]},
    "agentMetadata": {
        "toolsUsed": ["database_query"],
        "reasoningSteps": ["Step 1"],
        "processingTime": 2.5,
        "tokensUsed": 150,
    },
}
ERROR_REPLY: dict[str, Json] = {
    **_REPLY_BASE,
    "status": "error",
    "response": {"text": "Sorry, something went wrong.", "attachments": [{"url": "x"}]},
    "error": {"code": "AGENT_TIMEOUT", "message": "took too long", "stack": "Traceback"},
}
BASE_REPLIES: list[dict[str, Json]] = [
    _REPLY_BASE,
    {
        **_REPLY_BASE,
        "status": "partial",
        "contact": {"remoteJid": "12345678@lid", "phoneNumber": "+12345678", "name": None},
        "response": {"text": "Here", "type": "image", "attachments": [{"url": "https://x/y.png"}]},
        "agentMetadata": {
            "toolsUsed": ["web_search", "database_query"],
            "reasoningSteps": ["a", "b"],
            "processingTime": 0,
            "tokensUsed": 0,
        },
        "error": None,
    },
    ERROR_REPLY,
]
