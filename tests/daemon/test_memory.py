"""Giving memory back (runtimed/daemon/memory.py): the allocator setting, in a fresh
process each (it holds for the threads started after it; glibc reports its heaps
itself), and trims asked for by the rooms."""

from __future__ import annotations

import asyncio
import platform
import subprocess
import sys

import pytest

from runtimed.daemon import memory
from runtimed.daemon.memory import share_one_heap

HEAPS_AFTER_A_THREAD = """
import ctypes, sys, tempfile, threading
from runtimed.daemon.memory import share_one_heap

if sys.argv[1] == "one":
    assert share_one_heap()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
thread = threading.Thread(target=lambda: [bytearray(100_000) for _ in range(50)])
thread.start()
thread.join()
with tempfile.NamedTemporaryFile() as report:
    stream = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(open(report.name).read().count("<heap nr="))
"""


def heaps_after_a_thread(mode: str) -> int:
    """How many malloc heaps a process has once a thread has allocated."""
    done = subprocess.run(
        [sys.executable, "-c", HEAPS_AFTER_A_THREAD, mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout.split()[-1])


def test_threads_share_the_main_heap_once_asked() -> None:
    if platform.libc_ver()[0] != "glibc":  # nothing to set: said so
        assert not share_one_heap()
        return
    assert heaps_after_a_thread("default") >= 2  # a guard: the thread got its own
    assert heaps_after_a_thread("one") == 1


async def test_trims_asked_for_during_one_run_once_more_and_not_when_closing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = 0

    async def counted() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:  # asked while a trim runs: one more after it, not one each
            trims.ask()
            trims.ask()
        await asyncio.sleep(0)

    monkeypatch.setattr(memory, "give_back_in_thread", counted)
    tasks: list[asyncio.Task[None]] = []
    trims = memory.TrimRequests(lambda func: tasks.append(asyncio.create_task(func())))
    trims.ask()
    trims.ask()  # before it started: the same run covers it
    assert len(tasks) == 1
    await tasks[0]
    assert runs == 2
    trims.ask()  # done: a new request starts a new run
    await tasks[-1]
    assert (len(tasks), runs) == (2, 3)

    def closing(func: object) -> None:
        raise RuntimeError("runs no more tasks")

    closed = memory.TrimRequests(closing)
    closed.ask()  # said nothing, raised nothing: the periodic trim remains
    closed.ask()
