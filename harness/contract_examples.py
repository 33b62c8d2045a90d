"""The examples in ``contracts/examples/``: one request and one reply with the values each side
really sends, checked by the models when they are generated.

Before 1.2.0 they were the spec's examples, with a seconds timestamp the Node side never writes
and tool names (``database_query``, ``web_search``) the agent does not have.
"""

from __future__ import annotations

from typing import Any

from agent_service.contract.messages import AgentReply, AgentRequest, reply_id_for

REQUEST_ID = "6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a10"
# 2025-12-01 10:00:00.123 UTC: the Node side's Date.now(), in milliseconds.
REQUEST_MS = 1_764_583_200_123
# WhatsApp's messageTimestamp of the same message (seconds, as the webhook gives it).
WHATSAPP_SECONDS = 1_764_583_199
# Tools of agent_service/agent/tools.py that answer this question.
TOOLS_USED = ["search_catalogue", "search_faq"]


def request() -> dict[str, Any]:
    body: dict[str, Any] = {
        "messageId": REQUEST_ID,
        "timestamp": REQUEST_MS,
        "taskType": "search",
        "contact": {
            "remoteJid": "256703722777@s.whatsapp.net",
            "phoneNumber": "+256703722777",
            "name": "John Doe",
            "countryCode": "256",
        },
        "message": {
            "text": "Do you have the argan hair oil in stock, and can I pay on delivery?",
            "messageId": "wamid-3EB0-hair-oil",
            "timestamp": WHATSAPP_SECONDS,
        },
        "context": {
            "conversationHistory": [
                {"role": "user", "content": "Hi, are you open on Saturday?"},
                {"role": "assistant", "content": "Yes, Saturday 9:00 to 17:00."},
            ],
            "userNotes": "VIP customer - priority support",
            "sessionData": {},
        },
        "metadata": {
            "priority": "normal",
            "retryCount": 0,
            "maxRetries": 3,
            "previousMessageId": "2a7d9c1e-4b3f-4e8a-9d6c-5f1e0a2b3c4d",
        },
    }
    AgentRequest.model_validate(body)  # an example that breaks the contract is not generated
    return body


def reply() -> dict[str, Any]:
    body: dict[str, Any] = {
        "messageId": reply_id_for(REQUEST_ID),
        "originalMessageId": REQUEST_ID,
        "timestamp": REQUEST_MS + 2_480,
        "status": "success",
        "contact": {
            "remoteJid": "256703722777@s.whatsapp.net",
            "phoneNumber": "+256703722777",
            "name": "John Doe",
        },
        "response": {
            "text": "Yes, the argan hair oil (100 ml) is in stock at 45,000 UGX, and you can"
            " pay cash on delivery.",
            "type": "text",
            "attachments": [],
        },
        "agentMetadata": {
            "toolsUsed": TOOLS_USED,
            "reasoningSteps": [
                "called search_catalogue",
                "called search_faq",
                "answered",
            ],
            "processingTime": 2.48,
            "tokensUsed": 412,
        },
    }
    AgentReply.model_validate(body)
    return body
