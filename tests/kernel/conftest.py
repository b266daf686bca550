"""Fixtures for the kernel bridge: real ipykernel kernels, recorded sinks, temp kernelspecs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
from kernel_helpers import Recorder, ScriptedKernel

from runtimed.daemon.tasks import TaskOwner
from runtimed.kernel import KernelSession


@pytest.fixture
async def tasks() -> AsyncIterator[TaskOwner]:
    """The owner of the sessions' runners, as a room's group is in the daemon. A task of
    the test's loop holds its group: a fixture's setup and teardown run in two tasks."""
    owner = TaskOwner("test kernels")

    async def hold(ready: asyncio.Event) -> None:
        async with anyio.create_task_group() as group:
            await group.start(owner.run)
            ready.set()

    ready = asyncio.Event()
    holder = asyncio.create_task(hold(ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield owner
    finally:
        await owner.close()  # a session left running is cancelled
        await holder


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def kernel(tasks: TaskOwner, recorder: Recorder) -> AsyncIterator[KernelSession]:
    session = await KernelSession.launch(tasks=tasks, **recorder.sinks)
    try:
        yield session
    finally:
        await session.shutdown()


@pytest.fixture
def scripted_kernel(tmp_path: Path) -> Iterator[ScriptedKernel]:
    kernel = ScriptedKernel(tmp_path)
    kernel.start()
    try:
        yield kernel
    finally:
        kernel.stop()
