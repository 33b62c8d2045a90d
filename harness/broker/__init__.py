"""Real RabbitMQ brokers for the harness: external, private node, or container."""

from harness.broker.base import Broker, BrokerError, ControllableBroker, NotControllable, amqp_url
from harness.broker.container import ContainerBroker
from harness.broker.external import ExternalBroker
from harness.broker.private_node import PrivateNode
from harness.broker.select import choose_broker

__all__ = [
    "Broker",
    "BrokerError",
    "ContainerBroker",
    "ControllableBroker",
    "ExternalBroker",
    "NotControllable",
    "PrivateNode",
    "amqp_url",
    "choose_broker",
]
