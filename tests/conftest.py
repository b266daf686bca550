"""Fixtures shared by every layer: a real daemon on a real Unix socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import AsyncKernelManager

from runtimed.client import Client
from runtimed.config import Settings
from runtimed.daemon.server import Daemon


def short_socket_dir() -> Path:
    """AF_UNIX paths are capped near 108 bytes; pytest's tmp_path can be longer."""
    return Path(tempfile.mkdtemp(prefix="rtd-", dir="/tmp"))


def quick_settings(data_dir: Path, sock_dir: Path) -> Settings:
    """Settings with the short timings tests use, on a socket in `sock_dir`."""
    return Settings(
        socket_path=sock_dir / "runtimed.sock",
        data_dir=data_dir,
        room_grace=0.2,
        save_debounce=0.05,
        save_max_interval=0.5,
        gateway_url=None,  # local kernels, whatever $RUNTIMED_GATEWAY_URL says
        gateway_token=None,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    sock_dir = short_socket_dir()
    yield quick_settings(tmp_path / "data", sock_dir)
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

    @contextlib.asynccontextmanager
    async def kernel_pair(self, notebook_id: str) -> AsyncIterator[tuple[Client, Client]]:
        """An actor that launched the room's kernel (shut down after) and an observer
        that only syncs the doc."""
        async with self.client(notebook_id) as actor, self.client(notebook_id) as observer:
            await actor.request("launch_kernel")
            yield actor, observer
            await actor.request("shutdown_kernel")


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


@pytest.fixture
def make_kernelspec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Write a kernelspec under a temporary JUPYTER_PATH; returns its name."""
    root = tmp_path / "jupyter"
    monkeypatch.setenv("JUPYTER_PATH", str(root))

    def make(name: str, argv: list[str]) -> str:
        spec_dir = root / "kernels" / name
        spec_dir.mkdir(parents=True)
        spec = {"argv": argv, "display_name": name, "language": "python"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        return name

    return make


UNBOUNDED_KERNEL = Path(__file__).with_name("unbounded_iopub_kernel.py")


@pytest.fixture
def unbounded_kernel(make_kernelspec: Callable[..., str]) -> str:
    """A kernelspec for real ipykernel whose IOPub never drops (for tests that count)."""
    return make_kernelspec(
        "unbounded", [sys.executable, str(UNBOUNDED_KERNEL), "-f", "{connection_file}"]
    )


@pytest.fixture
async def external_kernel() -> AsyncIterator[AsyncKernelManager]:
    """A real ipykernel started with plain jupyter_client, as another tool would."""
    manager = AsyncKernelManager(kernel_name="python3")
    await manager.start_kernel()
    try:
        yield manager
    finally:
        await manager.shutdown_kernel(now=True)
