"""A private ``rabbitmq-server`` node the harness starts itself, on free ports, with its own folder.

It may stop, start, restart and kill (SIGKILL) this node at will: it never touches the machine's
own broker. Data survives stop/start/kill because the node name and folder stay the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

from harness.broker.base import BrokerError, amqp_url
from harness.broker.readiness import wait_until_ready
from harness.process_tools import dies_with_parent, node_port, port_is_free
from harness.waiting import WaitTimeout, wait_until

if TYPE_CHECKING:  # only a node with TLS needs ``cryptography`` (the test extra)
    from harness.broker.tls import TlsFiles

RABBITMQ_BIN_DIR = Path(os.environ.get("HARNESS_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))


def rabbitmq_available() -> bool:
    return (RABBITMQ_BIN_DIR / "rabbitmq-server").exists()


class PrivateNode:
    """A RabbitMQ node owned by the harness. Use ``async with PrivateNode() as node:``.

    With ``tls=``, it also serves those files on a TLS listener (``tls_port``, ``tls_url``).
    """

    kind = "private"

    def __init__(
        self,
        folder: Path | None = None,
        *,
        name: str | None = None,
        boot_timeout: float = 60.0,
        extra_config: str = "",
        tls: TlsFiles | None = None,
        plugins: tuple[str, ...] = (),
        cookie: str | None = None,
        cluster_name: str | None = None,
    ) -> None:
        self._own_folder = folder is None
        # Named now, made on entering: a node that is built and never entered (the broker
        # chooser's candidates) leaves no empty folder behind.
        self.folder = Path(
            folder or Path(tempfile.gettempdir()) / f"harness-rabbit-{secrets.token_hex(6)}"
        )
        self.name = name or f"harness-{os.getpid()}-{secrets.token_hex(3)}@localhost"
        # The nodes of one cluster share the Erlang cookie and the cluster name (cluster.py).
        self.cluster_name = cluster_name or f"harness-{secrets.token_hex(4)}"
        self._cookie = cookie or secrets.token_hex(16)
        self.port = node_port()
        self.dist_port = node_port()
        self.boot_timeout = boot_timeout
        self._extra_config = extra_config
        self.tls = tls
        self.tls_port = node_port() if tls else None
        # Plugins to enable at boot, e.g. ("rabbitmq_prometheus",): configure their ports in
        # extra_config, or two nodes on one machine would both take the plugin's default port.
        self.plugins = plugins
        self._process: subprocess.Popen[bytes] | None = None
        self._console: IO[bytes] | None = None
        self.start_seconds: float | None = None
        self._entered = False

    @property
    def url(self) -> str:
        return amqp_url("127.0.0.1", self.port)

    @property
    def tls_url(self) -> str:
        """The ``amqps://`` URL; its host ``localhost`` is a name in the test certificates."""
        if self.tls_port is None:
            raise BrokerError(f"{self.name} has no TLS listener: start it with tls=TlsFiles(...)")
        return amqp_url("localhost", self.tls_port, scheme="amqps")

    def describe(self) -> str:
        tls = f", TLS on {self.tls_port}" if self.tls_port else ""
        where = f"127.0.0.1:{self.port}{tls}"
        return f"private rabbitmq-server node {self.name} on {where} ({self.folder})"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    async def __aenter__(self) -> Self:
        try:
            self._prepare_folder()
            await self.start()
        except BaseException:
            await self._cleanup()
            raise
        self._entered = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._cleanup()

    async def _cleanup(self) -> None:
        if self.is_running():
            await self.stop()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _prepare_folder(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in ("mnesia", "log"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        cookie = self.folder / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(self._cookie)
            cookie.chmod(0o400)
        (self.folder / "rabbitmq.conf").write_text(
            f"cluster_name = {self.cluster_name}\n"
            "disk_free_limit.absolute = 50MB\n"
            "log.console = false\n"
            "log.file.level = info\n"
            + (self.tls.rabbitmq_config(self.tls_port) if self.tls and self.tls_port else "")
            + self._extra_config
        )
        (self.folder / "advanced.config").write_text("[].\n")
        (self.folder / "rabbitmq-env.conf").write_text("")
        (self.folder / "enabled_plugins").write_text(f"[{','.join(self.plugins)}].\n")

    def environment(self) -> dict[str, str]:
        """The environment of the node and of the CLI tools that talk to it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        f = self.folder
        env.update(
            HOME=str(f),
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(f / "mnesia"),
            RABBITMQ_LOG_BASE=str(f / "log"),
            RABBITMQ_PID_FILE=str(f / "node.pid"),
            RABBITMQ_CONFIG_FILE=str(f / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(f / "advanced.config"),
            RABBITMQ_CONF_ENV_FILE=str(f / "rabbitmq-env.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(f / "enabled_plugins"),
            # Makes the start script exec the Erlang VM instead of running it as a background
            # child and waiting: then the VM is the process we spawned, and the parent-death
            # signal reaches it. Without it, a crashed test run left the VMs running (found by
            # the cluster's half-failed start test). The script reads this variable nowhere else.
            RUNNING_UNDER_SYSTEMD="true",
        )
        return env

    def log_tail(self, lines: int = 40) -> str:
        chunks = []
        for path in (self.folder / "log" / f"{self.name}.log", self.folder / "console.log"):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                chunks.append(f"--- {path} (last {len(text)} lines) ---\n" + "\n".join(text))
        return "\n".join(chunks) or f"(no log found in {self.folder})"

    async def start(self) -> None:
        """Start the node (again, on the same data) and wait for an AMQP handshake."""
        if self.is_running():
            return
        if self.start_seconds is None:
            # First start: a taken port means another program; say so rather than boot into it.
            for port in self._ports():
                if not port_is_free(port):
                    raise BrokerError(f"port {port} of {self.name} is taken by another process")
        else:
            # Restart: connections of the killed node linger (FIN_WAIT) for a while and make
            # a plain bind test fail, but RabbitMQ binds with SO_REUSEADDR and gets the port.
            await self._wait_ports_free(10.0)
        began = time.monotonic()
        self._console = (self.folder / "console.log").open("ab")
        self._process = subprocess.Popen(
            [str(RABBITMQ_BIN_DIR / "rabbitmq-server")],
            env=self.environment(),
            cwd=self.folder,
            stdin=subprocess.DEVNULL,
            stdout=self._console,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill() reaches every child
            preexec_fn=dies_with_parent(signal.SIGKILL),
        )
        try:
            await wait_until_ready(
                self.url,
                timeout=self.boot_timeout,
                log_tail=self.log_tail,
                alive=self.is_running,
                expect_cluster_name=self.cluster_name,
            )
            if self.tls is not None:
                await self._wait_tls_ready(self.tls)
        except BaseException:
            await self.kill()
            raise
        if "BOOT FAILED" in self.log_tail(200):
            await self.kill()
            raise BrokerError(f"{self.name} reported BOOT FAILED\n{self.log_tail()}")
        self.start_seconds = time.monotonic() - began

    async def _wait_tls_ready(self, tls: TlsFiles) -> None:
        # Erlang reads the certificate and key at the first TLS handshake, not at boot: a
        # broken key file boots fine and then resets every TLS connection. Only the chain is
        # checked here, not the name: tests give a node a certificate for another host.
        await wait_until_ready(
            self.tls_url,
            timeout=10.0,
            log_tail=lambda: f"(booted, but no TLS handshake with {tls})\n{self.log_tail()}",
            alive=self.is_running,
            expect_cluster_name=self.cluster_name,
            ssl_context=tls.client_context(check_hostname=False),
        )

    def _ports(self) -> tuple[int, ...]:
        return (self.port, self.dist_port, *([self.tls_port] if self.tls_port else []))

    async def _wait_ports_free(self, timeout: float) -> None:
        # Best effort: RabbitMQ binds with SO_REUSEADDR and usually gets the port anyway.
        with contextlib.suppress(WaitTimeout):
            await wait_until(
                lambda: all(port_is_free(port) for port in self._ports()),
                timeout=timeout,
                what="the node's ports free",
                interval=0.2,
            )

    async def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop (SIGTERM: RabbitMQ shuts down in order); SIGKILL after ``timeout``."""
        process = self._process
        if process is None or process.poll() is not None:
            self._close_console()
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        if not await self._wait_exit(process, timeout):
            await self.kill()
        self._reap_group(process)
        self._close_console()

    async def kill(self) -> None:
        """SIGKILL the node and its helpers, as a crash would; its data folder stays."""
        process = self._process
        if process is None:
            return
        self._reap_group(process, signal.SIGKILL)
        await self._wait_exit(process, 10.0)
        self._close_console()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def _reap_group(self, process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        # Erlang's port helpers (erl_child_setup, inet_gethost) share the node's process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    async def _wait_exit(self, process: subprocess.Popen[bytes], timeout: float) -> bool:
        try:
            await wait_until(lambda: process.poll() is not None, timeout=timeout, what="exit")
        except WaitTimeout:
            return False
        return True

    def _close_console(self) -> None:
        if self._console is not None:
            self._console.close()
            self._console = None

    async def rabbitmqctl(self, *args: str, timeout: float = 30.0) -> str:
        """Run rabbitmqctl against this node (never against another broker)."""
        proc = await asyncio.create_subprocess_exec(
            str(RABBITMQ_BIN_DIR / "rabbitmqctl"),
            "-n",
            self.name,
            *args,
            env=self.environment(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            raise BrokerError(f"rabbitmqctl {' '.join(args)} failed: {text}")
        return text

    def stats(self) -> dict[str, Any]:
        return {"name": self.name, "port": self.port, "start_seconds": self.start_seconds}
