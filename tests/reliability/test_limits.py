"""Limits: idle TCP connections under a low fd limit, rooms and kernels per daemon, and a
hello whose path the file system cannot take.

The fd case runs the real `runtimed serve --ws` as a subprocess whose RLIMIT_NOFILE is
set low before it starts (soft 150, hard 200: the daemon raises the soft one itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from runtimed.client import ClientError
from runtimed.config import Settings, token_path
from runtimed.daemon.web_token import read_token
from tests.conftest import RunningDaemon, eventually
from tests.reliability.conftest import free_port

IDLE_CONNECTIONS = 250
FD_SOFT, FD_HARD = 150, 200


def low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_SOFT, FD_HARD))


def status(socket_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtimed.cli", "--socket", str(socket_path), "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_until_status_answers(daemon: subprocess.Popen, socket_path: Path, log: Path) -> None:
    deadline = time.monotonic() + 60
    while status(socket_path).returncode != 0:
        assert daemon.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the daemon did not answer"


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def soft_fd_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no fd limit in /proc")


async def test_idle_unauthenticated_connections_starve_nothing(settings: Settings) -> None:
    port = free_port()
    log = settings.data_dir.parent / "daemon.log"
    daemon = subprocess.Popen(  # noqa: ASYNC220 (waited for in finally)
        [
            sys.executable, "-m", "runtimed.cli", "--socket", str(settings.socket_path),
            "serve", "--data-dir", str(settings.data_dir), "--log-file", str(log),
            "--ws", f"127.0.0.1:{port}",
        ],
        preexec_fn=low_fd_limit,
    )  # fmt: skip
    idle: list[socket.socket] = []
    try:
        wait_until_status_answers(daemon, settings.socket_path, log)
        assert soft_fd_limit(daemon.pid) == FD_HARD  # raised to the hard limit at start
        for _ in range(IDLE_CONNECTIONS):
            idle.append(socket.create_connection(("127.0.0.1", port)))
        # Every connection beyond the cap was accepted and closed at once: once the
        # daemon has seen them all, the last one reads EOF.
        idle[-1].settimeout(30)
        with contextlib.suppress(ConnectionResetError):
            assert idle[-1].recv(1) == b""

        answered = status(settings.socket_path)
        assert answered.returncode == 0, answered.stderr
        assert json.loads(answered.stdout)["pid"] == daemon.pid
        assert open_fds(daemon.pid) < FD_HARD - 50

        text = log.read_text()
        assert "Traceback" not in text
        assert 1 <= text.count("connection_refused") <= 2  # per 10 s, not per socket (218)
        assert len(text) < 10_000

        for conn in idle:
            conn.close()
        token = read_token(token_path(settings.socket_path))

        async def web_answers() -> bool:
            async with connect(f"ws://127.0.0.1:{port}/ws?token={token}") as ws:
                await ws.send(json.dumps({"channel": "control", "protocol": 2}).encode())
                return json.loads(await ws.recv())["ok"]

        # The gate frees as the daemon sees the idle sockets close.
        deadline = time.monotonic() + 30
        while True:
            try:
                assert await web_answers()
                break
            except (OSError, InvalidHandshake, ConnectionClosed):
                assert time.monotonic() < deadline, "the WebSocket port did not recover"
                await asyncio.sleep(0.1)
    finally:
        for conn in idle:
            conn.close()
        daemon.terminate()
        daemon.wait(60)


def test_accept_errors_at_the_fd_limit_are_logged_once_per_interval(settings: Settings) -> None:
    """Under a limit so low (20) that even the gate's 32 places do not fit, accept()
    fails with EMFILE every second while the connections wait: asyncio's traceback is
    written once, then once more after the interval (2 s here, 10 s by default) with
    the count left out; the daemon lives on and answers again once the connections
    are gone."""
    port = free_port()
    log = settings.data_dir.parent / "daemon.log"
    daemon = subprocess.Popen(
        [
            sys.executable, "-m", "runtimed.cli", "--socket", str(settings.socket_path),
            "serve", "--data-dir", str(settings.data_dir), "--log-file", str(log),
            "--ws", f"127.0.0.1:{port}", "--log-repeat-interval", "2",
        ],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (20, 20)),
    )  # fmt: skip
    flood: list[socket.socket] = []
    try:
        wait_until_status_answers(daemon, settings.socket_path, log)
        for _ in range(60):  # within the listen backlog: no connect() waits
            conn = socket.socket()
            conn.setblocking(False)
            conn.connect_ex(("127.0.0.1", port))
            flood.append(conn)
        deadline = time.monotonic() + 40
        while "more like this were left out" not in log.read_text():
            assert daemon.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        text = log.read_text()
        assert text.count("socket.accept() out of system resource") == 2
        assert len(text) < 20_000
        for conn in flood:
            conn.close()
        flood.clear()
        wait_until_status_answers(daemon, settings.socket_path, log)
    finally:
        for conn in flood:
            conn.close()
        daemon.terminate()
        daemon.wait(60)


async def test_rooms_per_daemon_are_capped(settings: Settings) -> None:
    handle = RunningDaemon(dataclasses.replace(settings, max_rooms=2))
    await handle.start()
    try:
        async with handle.client("one"), handle.client("two"):
            with pytest.raises(ClientError) as refused:
                async with handle.client("three"):
                    pass
            assert refused.value.code == "too_many_rooms"
            assert "max_rooms" in refused.value.message
            async with handle.client("one") as again:  # an open room still takes peers
                assert again.joined
    finally:
        await handle.stop()


@pytest.mark.kernel
async def test_kernels_per_daemon_are_capped(settings: Settings) -> None:
    handle = RunningDaemon(dataclasses.replace(settings, max_kernels=1))
    await handle.start()
    try:
        async with handle.client("first") as first, handle.client("second") as second:
            await first.request("launch_kernel", timeout=120)
            with pytest.raises(ClientError) as refused:
                await second.request("launch_kernel", timeout=120)
            assert refused.value.code == "too_many_kernels"
            assert "max_kernels" in refused.value.message
            again = await first.request("launch_kernel", timeout=120)  # its own: no new slot
            assert again["status"] != "dead"
            await first.request("shutdown_kernel", timeout=60)
            assert (await second.request("launch_kernel", timeout=120))["status"] != "dead"
            await second.request("shutdown_kernel", timeout=60)
    finally:
        await handle.stop()


async def test_a_hello_path_too_long_for_the_file_system_gets_an_error_frame(
    running: RunningDaemon,
) -> None:
    path = "/" + "n" * 300 + ".ipynb"  # one name longer than NAME_MAX (255)
    with pytest.raises(ClientError) as refused:
        async with running.client(path, path=path):
            pass
    assert refused.value.code == "bad_path"
    assert "File name too long" in refused.value.message
    async with running.client("after") as after:  # the daemon goes on
        assert after.joined
    await eventually(lambda: "after" in running.daemon.rooms if running.daemon else False)
