"""Valid ag_queue requests for tests, scenarios and load profiles."""

from __future__ import annotations

import uuid
from typing import Any

from agent_service.contract.codec import now_ms
from agent_service.contract.messages import AgentRequest, TaskType

SAMPLE_TEXTS: dict[TaskType, list[str]] = {
    TaskType.CONVERSATION: ["Hello, what are your opening hours?", "Thanks, that helps!"],
    TaskType.APPOINTMENT: ["Can I book an appointment tomorrow?", "Any free slots on Friday?"],
    TaskType.ORDER: ["Where is my order 1042?", "What is the status of order 1043?"],
    TaskType.SEARCH: ["Do you have a phone charger in stock?", "Find me headphones"],
}


def agent_request(
    task_type: TaskType | str = TaskType.CONVERSATION,
    text: str | None = None,
    *,
    phone: str = "+256703722777",
    name: str | None = "John Doe",
    history: list[tuple[str, str]] | None = None,
    notes: str | None = None,
    message_id: str | None = None,
    retry_count: int = 0,
    max_retries: int = 3,
    priority: str = "normal",
    previous: str | None = None,
    timestamp: int | None = None,
) -> AgentRequest:
    task = TaskType(task_type)
    digits = phone.lstrip("+")
    data: dict[str, Any] = {
        "messageId": message_id or str(uuid.uuid4()),
        "timestamp": timestamp if timestamp is not None else now_ms(),
        "taskType": task.value,
        "contact": {
            "remoteJid": f"{digits}@s.whatsapp.net",
            "phoneNumber": phone,
            "name": name,
            "countryCode": digits[:3],
        },
        "message": {
            "text": text or SAMPLE_TEXTS[task][0],
            "messageId": "3EB0" + uuid.uuid4().hex[:16].upper(),
            "timestamp": now_ms(),
        },
        "context": {
            "conversationHistory": [
                {"role": role, "content": content} for role, content in history or []
            ],
            "userNotes": notes,
            "sessionData": {},
        },
        "metadata": {"priority": priority, "retryCount": retry_count, "maxRetries": max_retries},
    }
    if previous is not None:
        data["metadata"]["previousMessageId"] = previous
    return AgentRequest.model_validate(data)
