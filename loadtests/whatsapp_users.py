"""Locust profile: WhatsApp contacts writing to the business number.

Each Locust user is one contact with its own phone number. It sends a realistic message of a
random task type (harness.scenarios.conversation.TEXTS), waits for what the contact gets back
and reports it as a request of type ``whatsapp`` named after the task type: the response time
runs from the webhook post to the outcome (the reply's send at the fake Wasender, or the admin
alert of a parked reply). A reply is a success; the fallback text, a parked message and no
outcome within ``--answer-timeout`` are failures. Then the contact thinks for 0.5 to 2 s.

The system under test is a whole SimulationStack that the profile runs itself, in a stack
service process (harness/load/stack_service.py says why not in Locust's process; when it starts
and stops: loadtests/_stack_runtime.py). This closed-loop contact is what ``locust -f loadtests/``
runs; the other profiles run when named: OpenLoopContacts (open_loop.py), AgentQueueUser
(agent_queue.py), and the shapes of shapes.py by LOCUST_SHAPE.

    locust -f loadtests/ --headless -u 5 -r 5 -t 30s
    locust -f loadtests/                 # web UI on http://127.0.0.1:8089
"""

from __future__ import annotations

import itertools

from _stack_client import StackClient
from _stack_runtime import Stack, send_turn
from locust import User, between, task

from harness.scenarios.conversation import contact_phone

_phones = itertools.count()


class WhatsAppContact(User):
    """One contact: write, wait for the answer, think, write again."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.phone = contact_phone(next(_phones))
        self.client: StackClient | None = None
        if Stack.process is not None:
            self.client = Stack.process.client()

    def on_stop(self) -> None:
        if self.client is not None:
            self.client.close()

    @task
    def send_message(self) -> None:
        send_turn(self.environment, self.client, self.phone, "whatsapp")
