"""The daemon's allocator settings (runtimed/daemon/memory.py), in a fresh process each:
they hold for the threads started after them, and glibc reports its heaps itself."""

from __future__ import annotations

import platform
import subprocess
import sys

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
