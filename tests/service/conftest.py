"""A background daemon per test: real `runtimed` processes on a temporary socket."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from runtimed.service.lock import process_alive
from tests.conftest import short_socket_dir

RUNTIMED = [sys.executable, "-m", "runtimed.cli"]


@dataclass
class Service:
    """Paths of one test's daemon; the environment points every `runtimed` at them."""

    socket: Path
    data_dir: Path
    state_dir: Path
    runtime_dir: Path

    @property
    def log_file(self) -> Path:
        return self.state_dir / "runtimed.log"

    def cli(
        self, *args: str, check: bool = True, timeout: float = 90
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*RUNTIMED, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"runtimed {' '.join(args)} exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def daemons(self) -> list[psutil.Process]:
        """Every live process serving this test's socket."""
        found = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            cmdline = proc.info["cmdline"] or []
            if (
                str(self.socket) in cmdline
                and "serve" in cmdline
                and proc.info["status"] != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
        return found


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    sock_dir = short_socket_dir()
    svc = Service(
        socket=sock_dir / "runtimed.sock",
        data_dir=tmp_path / "data",
        state_dir=tmp_path / "state",
        runtime_dir=tmp_path / "jupyter-runtime",
    )
    svc.runtime_dir.mkdir()
    monkeypatch.setenv("RUNTIMED_SOCKET", str(svc.socket))
    monkeypatch.setenv("RUNTIMED_DATA_DIR", str(svc.data_dir))
    monkeypatch.setenv("RUNTIMED_STATE_DIR", str(svc.state_dir))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(svc.runtime_dir))
    yield svc
    try:
        svc.cli("stop", check=False, timeout=60)
    finally:
        for proc in svc.daemons():  # whatever a failed test left behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        shutil.rmtree(sock_dir, ignore_errors=True)


def wait_gone(pid: int, timeout: float = 30) -> None:
    """Poll until a process we did not spawn (so cannot wait on) has exited."""
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} still runs after {timeout} s"
        time.sleep(0.02)
