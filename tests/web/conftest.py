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
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runtimed.config import Settings
from runtimed.daemon.web_responses import WEB_ROOT
from tests.conftest import RunningDaemon

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

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def call(self, cmd: str, timeout: float = 60, **params: Any) -> Any:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **params}).encode() + b"\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
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
        assert self.proc.stdin is not None
        with contextlib.suppress(ConnectionError):
            self.proc.stdin.write(b'{"cmd": "quit"}\n')
            await self.proc.stdin.drain()
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require(Path(CHROMIUM).exists(), f"Chromium is not installed at {CHROMIUM}")
    require((JS_DIR / "node_modules" / "playwright-core").is_dir(), "run `make web`")
    require((WEB_ROOT / "dist" / "app.js").is_file(), "the page is not built: run `make web`")
    proc = await asyncio.create_subprocess_exec(
        require_js(),
        str(HERE / "browser_driver.cjs"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=sys.stderr,
        env={**os.environ, "RUNTIMED_JS_DIR": str(JS_DIR), "CHROMIUM": CHROMIUM},
    )
    driver = Browser(proc)
    try:
        yield driver
    finally:
        await driver.quit()
