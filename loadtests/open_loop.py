"""Locust profile: open-loop arrivals, a constant rate of messages whatever the answers.

The closed-loop contacts (whatsapp_users.py) wait for each answer before writing again, so a
slow system gets fewer messages and hides its queueing. Here each Locust user is a stream of
``--arrival-rate`` messages per second on a fixed schedule (the n-th at start + n / rate, so a
late answer never delays the next message). Each arrival is a new contact's message, or, for
``--burst-share`` of the arrivals, a burst of 2-4 messages from one contact 0.1-0.3 s apart
(a contact typing several lines). Every message is sent and waited for in a greenlet of its
own and reported as a request of type ``whatsapp-open``. More users, more streams: a shape
(shapes.py, LOCUST_SHAPE) varies the rate by varying the users.

Runs only when named:

    locust -f loadtests/ --headless OpenLoopContacts -u 2 -r 2 -t 30s --arrival-rate 10

A message that would exceed ``MAX_IN_FLIGHT`` outstanding ones is reported as a failure
(``overloaded``) instead of being sent: the generator never falls behind its schedule silently.
"""

from __future__ import annotations

import itertools
import os
import random
import time

import gevent
from _stack_runtime import Stack, enabled, send_turn
from gevent.pool import Group
from locust import User, constant, task

from harness.scenarios.conversation import contact_phone

MAX_IN_FLIGHT = 500
# Phone numbers of their own, far from the closed-loop contacts' and from each other's per
# process (a worker's pid), so bursts are the only messages sharing a contact.
_contacts = itertools.count(1_000_000 + (os.getpid() % 1000) * 10_000)


class Overloaded(Exception):
    """More messages outstanding than MAX_IN_FLIGHT: this one was not sent."""


class OpenLoopContacts(User):
    """One arrival stream: ``--arrival-rate`` messages/s, answered or not."""

    abstract = not enabled("OpenLoopContacts")
    wait_time = constant(0)  # the task sleeps to its own schedule

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.rate = float(getattr(options, "arrival_rate", 5.0))
        self.burst_share = float(getattr(options, "burst_share", 0.2))
        if self.rate <= 0:
            raise ValueError(f"--arrival-rate must be above 0, not {self.rate}")
        self.messages = Group()
        self.started = time.monotonic()
        self.arrivals = 0

    def on_stop(self) -> None:
        # Messages already sent still get their outcome reported.
        timeout = Stack.process.settings.answer_timeout if Stack.process else 0.0
        self.messages.join(timeout=timeout + 5.0)

    @task
    def arrive(self) -> None:
        due = self.started + self.arrivals / self.rate
        self.arrivals += 1
        gevent.sleep(max(0.0, due - time.monotonic()))
        phone = contact_phone(next(_contacts))
        burst = random.randint(2, 4) if random.random() < self.burst_share else 1
        self.messages.spawn(self._burst, phone, burst)

    def _burst(self, phone: str, count: int) -> None:
        for index in range(count):
            if index:
                gevent.sleep(random.uniform(0.1, 0.3))
            if len(self.messages) > MAX_IN_FLIGHT:
                self.environment.events.request.fire(
                    request_type="whatsapp-open",
                    name="overloaded",
                    response_time=0.0,
                    response_length=0,
                    exception=Overloaded(f"more than {MAX_IN_FLIGHT} messages outstanding"),
                )
                continue
            self.messages.spawn(self._one, phone)

    def _one(self, phone: str) -> None:
        client = Stack.process.client() if Stack.process is not None else None
        try:
            send_turn(self.environment, client, phone, "whatsapp-open")
        finally:
            if client is not None:
                client.close()
