"""Choosing how to get a broker: automatically, or as the environment says.

``HARNESS_BROKER`` = ``auto`` (default) | ``external`` | ``private`` | ``container`` | ``cluster``.
``HARNESS_BROKER_URL`` = the AMQP URL for ``external`` (setting it alone also selects it).
``HARNESS_BROKER_URLS`` = comma-separated AMQP URLs of a real cluster's nodes (setting it alone
also selects it; with ``cluster`` it is used instead of starting one).

``cluster`` starts three private nodes joined into one cluster (``harness.broker.cluster``).

``auto`` takes, in order: an external URL if one is set; a private ``rabbitmq-server`` node if
the binaries are installed; a testcontainers container if a Docker engine answers; otherwise
the local broker at amqp://guest:guest@127.0.0.1:5672/ as an external broker (never altered).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from harness.broker.base import Broker, BrokerError
from harness.broker.cluster import BrokerCluster, ExternalCluster, parse_urls
from harness.broker.container import ContainerBroker, docker_available
from harness.broker.external import ExternalBroker
from harness.broker.private_node import PrivateNode, rabbitmq_available

LOCAL_URL = "amqp://guest:guest@127.0.0.1:5672/"
CHOICES = ("auto", "external", "private", "container", "cluster")


def choose_broker(env: Mapping[str, str] | None = None) -> Broker:
    """A broker (not yet started): use it as ``async with choose_broker() as broker``."""
    env = os.environ if env is None else env
    choice = env.get("HARNESS_BROKER", "auto").strip().lower() or "auto"
    url = env.get("HARNESS_BROKER_URL", "").strip()
    urls = parse_urls(env.get("HARNESS_BROKER_URLS", ""))
    if choice not in CHOICES:
        raise BrokerError(f"HARNESS_BROKER={choice!r}: expected one of {', '.join(CHOICES)}")
    if urls and choice in ("auto", "external", "cluster"):
        return ExternalCluster(urls)
    if choice == "cluster":
        if not rabbitmq_available():
            raise BrokerError(
                "HARNESS_BROKER=cluster but rabbitmq-server is not installed: install it, or"
                " give a real cluster's nodes in HARNESS_BROKER_URLS"
            )
        return BrokerCluster()
    if choice == "external" or (choice == "auto" and url):
        return ExternalBroker(url or LOCAL_URL)
    if choice == "private" or (choice == "auto" and rabbitmq_available()):
        if not rabbitmq_available():
            raise BrokerError("HARNESS_BROKER=private but rabbitmq-server is not installed")
        return PrivateNode()
    if choice == "container" or docker_available():
        return ContainerBroker()
    return ExternalBroker(LOCAL_URL)
