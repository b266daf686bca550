"""Fixtures for fault tests: the daemon as a real process that can be SIGKILLed and
measured, and a kernel that lives outside it (so it survives the daemon's death)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from runtimed.client import Client, ClientError
from runtimed.config import Settings

RUNNER = Path(__file__).with_name("daemon_process.py")


def free_port() -> int:
    """A loopback port nobody listens on (for a daemon started with `--ws`)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DaemonProcess:
    """`daemon_process.py` as a child process: start, wait until it answers, kill, measure."""

    def __init__(self, settings: Settings, log_file: Path, knobs: dict[str, float]) -> None:
        self.settings = settings
        self.log_file = log_file
        self.knobs = knobs
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 60) -> None:
        """Spawn the process and return once it answers a ping."""
        self.spawn()
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            assert self.alive, f"daemon exited: {self.log_tail()}"
            try:
                async with self.client(timeout=2) as control:
                    await control.request("ping")
                return
            except ClientError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.05)

    def spawn(self) -> None:
        command = [
            sys.executable,
            str(RUNNER),
            "--socket",
            str(self.settings.socket_path),
            "--data-dir",
            str(self.settings.data_dir),
            "--log-file",
            str(self.log_file),
        ]
        for name, value in self.knobs.items():
            command += ["--set", f"{name}={value}"]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss(self) -> int:
        """Resident memory of the daemon process, in bytes."""
        return psutil.Process(self.pid).memory_info().rss

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, notebook_id: str | None = None, **kwargs: Any) -> Client:
        return Client(notebook_id, socket_path=self.settings.socket_path, **kwargs)

    def logs(self) -> list[dict]:
        lines = self.log_file.read_text().splitlines() if self.log_file.exists() else []
        return [json.loads(line) for line in lines if line.startswith("{")]

    def log_tail(self) -> str:
        return (
            "\n".join(self.log_file.read_text().splitlines()[-20:])
            if self.log_file.exists()
            else ""
        )


def quick_timings(settings: Settings) -> dict[str, float]:
    """The test settings' short timings, as a daemon process's knobs."""
    return {
        "save_debounce": settings.save_debounce,
        "save_max_interval": settings.save_max_interval,
        "room_grace": settings.room_grace,
    }


@pytest.fixture
def daemon_process(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Build daemon processes on the test's socket and data dir; all stopped at the end."""
    made: list[DaemonProcess] = []

    def make(**knobs: float) -> DaemonProcess:
        timings = quick_timings(settings) | knobs
        daemon = DaemonProcess(settings, tmp_path / f"daemon-{len(made)}.log", timings)
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.stop()
