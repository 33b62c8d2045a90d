"""Headless Chromium for tests, driven over WebDriver by Debian's ``chromedriver``.

A few HTTP calls of the W3C WebDriver protocol (session, navigate, execute script, browser
log) with aiohttp, which the project has already: no Selenium and its dependencies for one
page check. ``make browser`` (and so ``make test`` and CI) installs ``chromium`` and
``chromium-driver`` with apt-get when they are missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any, Self

import aiohttp

from harness.process_tools import free_port
from harness.waiting import wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MISSING = "chromium or chromedriver is not installed: run `make browser` (apt-get)"


class WebDriverError(RuntimeError):
    pass


def installed() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


class HeadlessChromium:
    """``async with HeadlessChromium() as browser: await browser.open(url)``."""

    def __init__(self) -> None:
        self._port = free_port()
        self._base = f"http://127.0.0.1:{self._port}"
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        self._driver: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self._session: str | None = None

    async def __aenter__(self) -> Self:
        if not installed():
            raise WebDriverError(MISSING)
        try:
            await self._start()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def _start(self) -> None:
        self._driver = await asyncio.create_subprocess_exec(
            CHROMEDRIVER, f"--port={self._port}", "--allowed-ips=127.0.0.1",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        await wait_until(self._ready, timeout=20, what="chromedriver /status", interval=0.1)
        options = {
            "binary": CHROMIUM,
            # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--user-data-dir={self._profile.name}", "--window-size=1200,900"],
        }  # fmt: skip
        caps = {"browserName": "chrome", "goog:chromeOptions": options,
                "goog:loggingPrefs": {"browser": "ALL"}}  # fmt: skip
        value = await self._call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})
        self._session = str(value["sessionId"])

    async def _ready(self) -> bool:
        assert self._http is not None
        try:
            async with self._http.get(f"{self._base}/status") as response:
                return bool((await response.json())["value"]["ready"])
        except (aiohttp.ClientError, OSError):
            return False

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        assert self._http is not None
        async with self._http.request(method, self._base + path, json=body) as response:
            data = await response.json()
        if response.status != 200:
            raise WebDriverError(f"{method} {path}: {response.status} {data.get('value')}")
        return data["value"]

    async def open(self, url: str) -> None:
        await self._call("POST", f"/session/{self._session}/url", {"url": url})

    async def run(self, script: str, *args: Any) -> Any:
        """``script`` is a function body; ``arguments[0]``... are ``args``."""
        body = {"script": script, "args": list(args)}
        return await self._call("POST", f"/session/{self._session}/execute/sync", body)

    async def console(self) -> list[dict[str, Any]]:
        """The browser's log since the last call: uncaught errors come as level SEVERE."""
        entries = await self._call("POST", f"/session/{self._session}/se/log", {"type": "browser"})
        return list(entries)

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            with contextlib.suppress(WebDriverError, aiohttp.ClientError, OSError):
                await self._call("DELETE", f"/session/{self._session}")
            self._session = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._driver is not None and self._driver.returncode is None:
            self._driver.terminate()
            await self._driver.wait()
        self._profile.cleanup()
