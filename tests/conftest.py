"""Fixtures shared by every layer: a real daemon on a real Unix socket."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtimed.client import Client
from runtimed.config import Settings
from runtimed.server import Daemon


def short_socket_dir() -> Path:
    """AF_UNIX paths are capped near 108 bytes; pytest's tmp_path can be longer."""
    return Path(tempfile.mkdtemp(prefix="rtd-", dir="/tmp"))


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    sock_dir = short_socket_dir()
    yield Settings(
        socket_path=sock_dir / "runtimed.sock",
        data_dir=tmp_path / "data",
        room_grace=0.2,
        save_debounce=0.05,
        save_max_interval=0.5,
    )
    shutil.rmtree(sock_dir, ignore_errors=True)


class RunningDaemon:
    """A daemon served by a task of the test's loop, stoppable and restartable."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.daemon: Daemon | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> Daemon:
        self.daemon = Daemon(self.settings)
        ready = asyncio.Event()
        self._task = asyncio.create_task(self.daemon.serve(ready.set))
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait(
            {waiter, self._task}, timeout=30, return_when="FIRST_COMPLETED"
        )
        if self._task in done:
            waiter.cancel()
            self._task.result()  # raises the start-up error
        assert waiter in done, "daemon did not start within 30 s"
        return self.daemon

    async def stop(self) -> None:
        if self.daemon is not None and self._task is not None:
            self.daemon.request_shutdown()
            await asyncio.wait_for(self._task, 60)
            self.daemon = None
            self._task = None

    def client(self, notebook_id: str | None = None, **kwargs: Any) -> Client:
        return Client(notebook_id, socket_path=self.settings.socket_path, **kwargs)


@pytest.fixture
async def running(settings: Settings) -> AsyncIterator[RunningDaemon]:
    handle = RunningDaemon(settings)
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


async def eventually(
    check: Callable[[], Any], *, timeout: float = 15.0, what: str = "condition"
) -> Any:
    """Poll a condition with a deadline (for state that is not announced by an event)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
