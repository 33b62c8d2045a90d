"""The Node webhook service of the spec, simulated in Python (DESIGN.md section 7).

Webhook in, AgentRequest to ag_queue; replies from wb_queue out through Wasender, with retries,
parking and admin alerts; fallbacks for dead agent requests; the spec's Node metrics.
"""

from fakes.node_simulator.metrics import Alert, NodeMetrics
from fakes.node_simulator.simulator import NodeSimulator, NodeSimulatorConfig
from fakes.node_simulator.store import RequestOutcome, StoredMessage
from fakes.node_simulator.task_router import route_task
from fakes.node_simulator.webhook import country_code

__all__ = [
    "Alert",
    "NodeMetrics",
    "NodeSimulator",
    "NodeSimulatorConfig",
    "RequestOutcome",
    "StoredMessage",
    "country_code",
    "route_task",
]
