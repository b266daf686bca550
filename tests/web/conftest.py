"""Fixtures for the browser-facing side: a daemon with its WebSocket listener, node, Chromium.

Nothing here skips: a missing build or browser fails with the command that fixes it
(`make test` runs them all first).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtimed.config import Settings
from runtimed.daemon.web_responses import WEB_ROOT
from tests.conftest import RunningDaemon, short_socket_dir

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "js"
HERE = Path(__file__).parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def require(condition: bool, what: str) -> None:
    if not condition:
        pytest.fail(f"{what} (`make test` sets this up)", pytrace=False)


def require_js() -> str:
    """The node binary, with js/'s dependencies installed."""
    node = shutil.which("node")
    require(node is not None, "node is not installed")
    require((JS_DIR / "node_modules" / "@automerge" / "automerge").is_dir(), "run `make web`")
    assert node is not None
    return node


class WebDaemon(RunningDaemon):
    """A running daemon whose WebSocket listener is on a free loopback port."""

    @property
    def port(self) -> int:
        assert self.daemon is not None
        assert self.daemon.web is not None
        return self.daemon.web.port

    @property
    def token(self) -> str:
        assert self.daemon is not None
        assert self.daemon.web is not None
        return self.daemon.web.token

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def page_url(self, notebook_id: str) -> str:
        assert self.daemon is not None
        assert self.daemon.web is not None
        return self.daemon.web.url(notebook_id)


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, ws=("127.0.0.1", 0))


@pytest.fixture
async def web(web_settings: Settings) -> AsyncIterator[WebDaemon]:
    handle = WebDaemon(web_settings)
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


async def run_node(script: str, *args: str, timeout: float = 60) -> Any:
    """Run a node script of this folder; its last stdout line is JSON, its exit must be 0."""
    proc = await asyncio.create_subprocess_exec(
        require_js(),
        str(HERE / script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "RUNTIMED_JS_DIR": str(JS_DIR)},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, f"{script} {args} failed:\n{err.decode()}"
    return json.loads(out.decode().strip().splitlines()[-1])


class Browser:
    """Headless Chromium behind browser_driver.cjs: one JSON command, one JSON reply."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        proc: asyncio.subprocess.Process | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.proc = proc  # a driver of its own; None: a connection to the session's

    @classmethod
    async def launch(cls) -> Browser:
        """The driver, its Chromium started at its first page (the bench's)."""
        proc = await asyncio.create_subprocess_exec(
            require_js(),
            str(HERE / "browser_driver.cjs"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=sys.stderr,
            env=driver_env(),
        )
        assert proc.stdout is not None
        assert proc.stdin is not None
        return cls(proc.stdout, proc.stdin, proc)

    @classmethod
    async def connect(cls, socket_path: Path) -> Browser:
        """A driver of its own in the session's Chromium (see `browser_server`)."""
        reader, writer = await asyncio.open_unix_connection(str(socket_path))
        return cls(reader, writer)

    async def call(self, cmd: str, timeout: float = 60, **params: Any) -> Any:
        self.writer.write(json.dumps({"cmd": cmd, **params}).encode() + b"\n")
        await self.writer.drain()
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        if not line:
            raise AssertionError(f"the browser driver exited (during {cmd})")
        reply = json.loads(line)
        if not reply["ok"]:
            raise AssertionError(f"browser {cmd} {params}: {reply['error']}")
        return reply["value"]

    async def wait(self, page: str, js: str, timeout: float = 20) -> Any:
        """Until the JS expression is truthy in the page (polled there, with a deadline)."""
        return await self.call("wait", timeout=timeout + 10, page=page, js=js, ms=timeout * 1000)

    async def quit(self) -> None:
        """Its pages closed: the driver's process exits, or the connection ends."""
        with contextlib.suppress(ConnectionError):
            self.writer.write(b'{"cmd": "quit"}\n')
            await self.writer.drain()
        if self.proc is None:
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(self.reader.read(), 15)  # until its end
            self.writer.close()
            return
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def driver_env() -> dict[str, str]:
    return {**os.environ, "RUNTIMED_JS_DIR": str(JS_DIR), "CHROMIUM": CHROMIUM}


@pytest.fixture(scope="session")
def browser_server() -> Iterator[Path]:
    """One headless Chromium for the session (a start costs about half a second, and so
    does a driver's): each test's `browser` is a connection to it with pages of its own,
    each in a browser context of its own, closed when the test ends, and errors of its
    own, so no test sees another's pages, storage or errors."""
    require(Path(CHROMIUM).exists(), f"Chromium is not installed at {CHROMIUM}")
    require((JS_DIR / "node_modules" / "playwright-core").is_dir(), "run `make web`")
    sock_dir = short_socket_dir()
    socket_path = sock_dir / "browser.sock"
    server = subprocess.Popen(
        [require_js(), str(HERE / "browser_driver.cjs"), "--serve", str(socket_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=driver_env(),
    )
    assert server.stdin is not None
    assert server.stdout is not None
    try:
        ready = server.stdout.readline()
        assert ready == b"ready\n", f"the browser server did not start: {ready!r}"
        yield socket_path
    finally:
        server.stdin.close()  # it closes Chromium and exits
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()
        shutil.rmtree(sock_dir, ignore_errors=True)


@pytest.fixture
async def browser(browser_server: Path) -> AsyncIterator[Browser]:
    require((WEB_ROOT / "dist" / "app.js").is_file(), "the page is not built: run `make web`")
    driver = await Browser.connect(browser_server)
    try:
        yield driver
    finally:
        await driver.quit()
