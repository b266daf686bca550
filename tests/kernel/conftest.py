"""Fixtures for the kernel bridge: real ipykernel kernels, recorded sinks, temp kernelspecs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
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
def scripted_kernel(tmp_path: Path) -> Iterator[ScriptedKernel]:
    kernel = ScriptedKernel(tmp_path)
    kernel.start()
    try:
        yield kernel
    finally:
        kernel.stop()
