"""Ports and child processes on this machine: the small OS helpers every part of the harness
shares. Standard library only, on purpose: the Locust side (gevent) imports it too."""

from __future__ import annotations

import contextlib
import ctypes
import random
import signal
import socket
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A free port for a client-facing test server (from the kernel's ephemeral range)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As a broker node binds: connections of its previous life in TIME_WAIT don't count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def node_port() -> int:
    """A free port BELOW the ephemeral range, for a node that will be killed and restarted.

    While the node is down, clients reconnecting every half second take ephemeral source
    ports; one of them can land on the node's own port (even connect to itself, a TCP
    self-connect) and keep the node from binding it again. Ports outside the range are never
    handed out as source ports.
    """
    low = _ephemeral_range()[0]
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low - 1)
        if port_is_free(port):
            return port
    return free_port()


def dies_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``sig`` when its parent dies, so a crashed test run (or
    a killed Locust) leaves nothing running. SIGTERM lets a child clean up first."""

    def arrange() -> None:  # pragma: no cover - runs in the child between fork and exec
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)

    return arrange
