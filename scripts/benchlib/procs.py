"""The processes a case measures: the daemon, kernels, and helper processes (readers).

Each lives in its own OS process so that its CPU, memory and event loop are its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil
from jupyter_client.manager import AsyncKernelManager

from runtimed.client import Client

SCRIPTS_DIR = Path(__file__).resolve().parent.parent
REPO = SCRIPTS_DIR.parent
# ipykernel with an IOPub that never drops on the kernel's side (sndhwm 0): a message
# lost in the bench is then the bridge's or the reader's, never the kernel's.
UNBOUNDED_KERNEL_SCRIPT = REPO / "tests" / "unbounded_iopub_kernel.py"
KERNEL_NAME = "bench-unbounded"
START_TIMEOUT = 60.0
RESULT_LINE_LIMIT = 256 * 1024 * 1024  # a helper's result is one JSON line, samples included


def install_kernelspec(root: Path) -> None:
    """Write the bench kernelspec under `root` and put it first on JUPYTER_PATH.

    Children (the daemon, jupyter_server) inherit the variable and find it too.
    """
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(UNBOUNDED_KERNEL_SCRIPT), "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": KERNEL_NAME, "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("JUPYTER_PATH")])]
    )


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(SCRIPTS_DIR), str(REPO), *filter(None, [env.get("PYTHONPATH")])]
    )
    return env


class Kernel:
    """A kernel the bench starts itself, so the daemon and a baseline can share it."""

    def __init__(self) -> None:
        self.manager = AsyncKernelManager(kernel_name=KERNEL_NAME)

    async def start(self, logdir: Path) -> Kernel:
        """Start it; its stderr (start-up chatter) goes to a log file in `logdir`."""
        with (logdir / "kernels.log").open("ab") as log:
            await self.manager.start_kernel(stderr=log)
        client = self.manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=START_TIMEOUT)
        finally:
            client.stop_channels()
        return self

    @property
    def connection_file(self) -> str:
        return self.manager.connection_file

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.manager.shutdown_kernel(now=True)


class Helper:
    """A child process that prints JSON lines: first readiness, then its result."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, *argv: str) -> Helper:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            stdout=asyncio.subprocess.PIPE,
            env=child_env(),
            cwd=SCRIPTS_DIR,
            limit=RESULT_LINE_LIMIT,
        )
        return cls(proc)

    async def line(self, timeout: float) -> dict[str, Any]:
        """The next JSON line; RuntimeError if the process ends without one."""
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not raw:
            code = await self.proc.wait()
            raise RuntimeError(f"helper {self.proc.pid} exited with {code} without a result")
        return json.loads(raw)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self.proc.wait()


class DaemonProcess:
    """`benchlib.daemon_main` in a child process, on its own socket and data dir."""

    def __init__(
        self,
        workdir: Path,
        *,
        probe: bool = False,
        profile: Path | None = None,
        ws_port: int = 0,
        compaction: bool = True,
    ) -> None:
        self.workdir = workdir
        self.ws_port = ws_port
        # A short path (sockets have a length limit) in a directory of its own (0700): the
        # daemon refuses a socket in a directory others can write to.
        self.socket_path = Path(tempfile.mkdtemp(prefix="rtd-bench-")) / "daemon.sock"
        self.data_dir = workdir / "data"
        self.stats_path = workdir / "loop-stats.json"
        self.log_path = workdir / "daemon.log"
        self.probe = probe
        self.profile = profile
        self.compaction = compaction
        self.proc: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None

    async def start(self) -> DaemonProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            "-m",
            "benchlib.daemon_main",
            "--socket",
            str(self.socket_path),
            "--data-dir",
            str(self.data_dir),
        ]
        if self.probe:
            argv += ["--probe", "--stats", str(self.stats_path)]
        if self.profile is not None:
            argv += ["--profile", str(self.profile)]
        if self.ws_port:
            argv += ["--ws-port", str(self.ws_port)]
        if not self.compaction:
            argv.append("--no-compaction")
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=child_env(),
                cwd=SCRIPTS_DIR,
            )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), START_TIMEOUT)
        if line.strip() != b"ready":
            raise RuntimeError(f"daemon did not start; see {self.log_path}")
        self.ps = psutil.Process(self.proc.pid)
        return self

    def client(self, notebook_id: str | None, **kwargs: Any) -> Client:
        return Client(notebook_id, socket_path=self.socket_path, timeout=60, **kwargs)

    async def room_info(self, notebook_id: str) -> dict[str, Any]:
        """The room's `daemon_info` entry: epoch, history, last compaction."""
        async with self.client(None, name="bench-control") as control:
            info = await control.request("daemon_info")
        return next(room for room in info["rooms"] if room["notebook_id"] == notebook_id)

    def rss(self) -> int:
        assert self.ps is not None
        return self.ps.memory_info().rss

    def cpu_seconds(self) -> float:
        assert self.ps is not None
        times = self.ps.cpu_times()
        return times.user + times.system

    async def loop_stats(self) -> dict[str, Any]:
        """The probe's figures since the last call (and a fresh start for the next)."""
        if self.proc is None or not self.probe:
            raise RuntimeError("loop_stats needs a started daemon with probe=True")
        self.stats_path.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR1)
        deadline = asyncio.get_running_loop().time() + 10
        while not self.stats_path.exists():
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("the daemon never wrote its loop stats")
            await asyncio.sleep(0.01)
        return json.loads(self.stats_path.read_text())

    async def stop(self) -> None:
        """SIGTERM: the daemon saves every room and exits."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 60)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self.socket_path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.socket_path.parent.rmdir()
