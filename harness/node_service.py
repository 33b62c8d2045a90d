"""Runs against the Node team's real service (``--node-url``): its broker, its queue names.

The harness owns nothing there. It checks the live topology against the contract before the
run and stops with the differences (a drifted queue would make the run measure the drift),
creates only what is missing, deletes nothing afterwards, and waits for the service's
webhook to answer before the first message, with a clear error when it never does.
"""

from __future__ import annotations

import aiohttp
from aio_pika.abc import AbstractConnection

from agent_service.contract.topology import Topology
from harness.broker import BrokerError
from harness.topology_provision import Declared, declare_missing
from harness.waiting import WaitTimeout, wait_until

# The environment variables of `harness simulate --node-url`; the key's and the secret's are
# those `harness fakes` and `harness conformance` read (ENV_OF_KEY, ENV_OF_SIGNATURE there).
ENV_NODE_URL = "HARNESS_NODE_URL"
ENV_WASENDER_PORT = "HARNESS_WASENDER_PORT"


class NodeServiceError(BrokerError):
    """The run cannot start against the Node service (exit status 2, no traceback)."""


async def prepare_topology(connection: AbstractConnection, topology: Topology) -> Declared:
    """Stop on drift from the contract; otherwise declare only what is missing."""
    from harness.topology_check import verify

    drifts = [d for d in await verify(connection, topology) if d.setting != "missing"]
    if drifts:
        lines = "\n".join(f"  - {d}" for d in drifts)
        raise NodeServiceError(
            "the live queues differ from the contract (agent_service/contract/topology.py);"
            f" nothing was changed:\n{lines}\n(`harness topology verify --url ...` shows the"
            " same; fix the declarations of the side that differs)"
        )
    return await declare_missing(connection, topology)


async def wait_answering(url: str, timeout: float) -> None:
    """Until anything answers HTTP at ``url`` (any status: a webhook may refuse a GET)."""
    seen = {"last": "no answer"}

    async def answers() -> bool:
        try:
            async with http.get(url) as response:
                await response.read()
                return True
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            seen["last"] = str(exc) or type(exc).__name__
            return False

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        try:
            await wait_until(answers, timeout=timeout, what="the Node service", interval=0.2)
        except WaitTimeout:
            raise NodeServiceError(
                f"the Node service at {url} did not answer within {timeout:g} s"
                f" ({seen['last']}); start it first, with the settings printed above"
            ) from None
