"""Real RabbitMQ brokers for the harness: external, private node, container, or a cluster."""

from harness.broker.base import (
    Broker,
    BrokerError,
    ControllableBroker,
    NotControllable,
    amqp_url,
    broker_urls,
)
from harness.broker.cluster import BrokerCluster, ExternalCluster
from harness.broker.container import ContainerBroker
from harness.broker.external import ExternalBroker
from harness.broker.private_node import PrivateNode
from harness.broker.select import choose_broker

__all__ = [
    "Broker",
    "BrokerCluster",
    "BrokerError",
    "ContainerBroker",
    "ControllableBroker",
    "ExternalBroker",
    "ExternalCluster",
    "NotControllable",
    "PrivateNode",
    "amqp_url",
    "broker_urls",
    "choose_broker",
]
