"""Fixtures for the kernel bridge: real ipykernel kernels, recorded sinks, temp kernelspecs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from jupyter_client.manager import AsyncKernelManager
from kernel_helpers import Recorder, ScriptedKernel

from runtimed.kernel import KernelSession


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def kernel(recorder: Recorder) -> AsyncIterator[KernelSession]:
    session = await KernelSession.launch(**recorder.sinks)
    try:
        yield session
    finally:
        await session.shutdown()


@pytest.fixture
async def external_kernel() -> AsyncIterator[AsyncKernelManager]:
    """A kernel started with plain jupyter_client, as another tool would."""
    manager = AsyncKernelManager(kernel_name="python3")
    await manager.start_kernel()
    try:
        yield manager
    finally:
        await manager.shutdown_kernel(now=True)


@pytest.fixture
def scripted_kernel(tmp_path: Path) -> Iterator[ScriptedKernel]:
    kernel = ScriptedKernel(tmp_path)
    kernel.start()
    try:
        yield kernel
    finally:
        kernel.stop()
