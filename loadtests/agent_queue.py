"""Locust profile: the agent service alone, over AMQP (no Node side, no HTTP).

Each user publishes a request to the agent queue with pika (a BlockingConnection per user,
cooperative under gevent's patches; aio-pika's asyncio cannot run in Locust's process) and
times it until its reply reaches the webhook queue, reported as type ``amqp``. One consumer
greenlet per Locust process reads the webhook queue and hands each reply to the user waiting
for it by ``correlation_id`` (the request's messageId). The stack must be the agent-only one,
or the Node simulator would take the replies:

    locust -f loadtests/ --headless AgentQueueUser --stack agent -u 5 -r 5 -t 30s
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from typing import Any, ClassVar

import gevent
import pika
from _stack_runtime import Stack, enabled
from gevent.event import AsyncResult
from locust import User, constant, task

from agent_service.contract.codec import to_json_bytes
from agent_service.contract.messages import TaskType
from harness.message_factory import agent_request

logging.getLogger("pika").setLevel(logging.WARNING)  # a line per connection otherwise


class NoReply(Exception):
    """No reply within the answer timeout."""


class _Replies:
    """The process's one consumer of the webhook queue; waiters by request id."""

    waiting: ClassVar[dict[str, AsyncResult]] = {}
    consumer: ClassVar[gevent.Greenlet | None] = None

    @classmethod
    def ensure(cls, endpoints: dict[str, str]) -> None:
        if cls.consumer is None or cls.consumer.dead:
            cls.consumer = gevent.spawn(cls._consume, endpoints)

    @classmethod
    def _consume(cls, endpoints: dict[str, str]) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(endpoints["amqp_url"]))
        try:
            channel = connection.channel()
            for method, properties, body in channel.consume(
                endpoints["webhook_queue"], auto_ack=True, inactivity_timeout=0.5
            ):
                if method is None:
                    continue  # idle: let the loop notice a kill
                waiter = cls.waiting.pop(properties.correlation_id or "", None)
                if waiter is not None:
                    waiter.set(len(body))
        finally:
            with contextlib.suppress(Exception):
                connection.close()


class AgentQueueUser(User):
    """Publish a request, wait for its reply, publish the next (closed loop, no think time)."""

    abstract = not enabled("AgentQueueUser")
    wait_time = constant(0)

    def on_start(self) -> None:
        process = Stack.process
        self.endpoints: dict[str, str] | None = process.agent if process else None
        self.connection: Any = None
        if self.endpoints is None:
            return
        _Replies.ensure(self.endpoints)
        self.connection = pika.BlockingConnection(pika.URLParameters(self.endpoints["amqp_url"]))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.timeout = process.settings.answer_timeout if process else 30.0

    def on_stop(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()

    @task
    def ask(self) -> None:
        task_type = random.choice(list(TaskType))
        began = time.perf_counter()
        length, exception = 0, None
        if self.endpoints is None:
            exception = RuntimeError(Stack.error or "no agent-only stack: run with --stack agent")
        else:
            request = agent_request(task_type, phone=f"+2569{random.randrange(10**8):08d}")
            waiter = _Replies.waiting[request.messageId] = AsyncResult()
            self.channel.basic_publish(
                "",
                self.endpoints["agent_queue"],
                to_json_bytes(request),
                pika.BasicProperties(
                    content_type="application/json",
                    delivery_mode=2,
                    message_id=request.messageId,
                    timestamp=request.timestamp // 1000,
                    type=task_type.value,
                ),
            )
            try:
                length = waiter.get(timeout=self.timeout)
            except gevent.Timeout:
                _Replies.waiting.pop(request.messageId, None)
                exception = NoReply(f"no reply within {self.timeout:g} s")
        self.environment.events.request.fire(
            request_type="amqp",
            name=task_type.value,
            response_time=(time.perf_counter() - began) * 1000,
            response_length=length,
            exception=exception,
        )
