"""What reaches the log: never the token or a kernel's key, at any level; outside values
with their control characters escaped; a library's repeated line once per interval.

The end-to-end case runs `runtimed serve --ws --log-level debug` as a subprocess with
its stderr appended to its own log file (as `runtimed start` runs it), drives it over
the WebSocket port with the token every way a client may give it, launches a real
kernel and joins with a hostile client name, then reads the whole file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from runtimed.client import Client
from runtimed.config import Settings, token_path
from runtimed.daemon.web_token import read_token
from runtimed.log_safety import REDACTED, RepeatFilter, clean, register_secret
from tests.reliability.conftest import free_port
from tests.web.test_listener import http_get

HOSTILE_NAME = "evil\x1b]0;owned\x07\x1b[31m\nforged_line=1\u202e"
HOSTILE_ID = "nb\x1b[2J"


def kernel_key(daemon_pid: int) -> str:
    """The signing key in the connection file of the kernel the daemon launched."""
    for child in psutil.Process(daemon_pid).children(recursive=True):
        argv = child.cmdline()
        if "-f" in argv:
            info = json.loads(Path(argv[argv.index("-f") + 1]).read_text())
            return info["key"]
    raise AssertionError("no kernel process under the daemon")


@pytest.mark.kernel
async def test_debug_log_holds_no_secret_and_no_raw_control_character(
    settings: Settings,
) -> None:
    port = free_port()
    log = settings.data_dir.parent / "daemon.log"
    argv = [sys.executable, "-m", "runtimed.cli", "--socket", str(settings.socket_path)]
    argv += ["serve", "--data-dir", str(settings.data_dir), "--log-file", str(log)]
    argv += ["--log-level", "debug", "--ws", f"127.0.0.1:{port}"]
    with log.open("a") as stderr:
        daemon = await asyncio.create_subprocess_exec(*argv, stderr=stderr)
    try:
        path = token_path(settings.socket_path)
        deadline = time.monotonic() + 60
        while not path.exists():
            assert daemon.returncode is None, log.read_text()
            assert time.monotonic() < deadline, "no token file"
            await asyncio.sleep(0.05)
        token = read_token(path)
        hello = json.dumps({"channel": "control", "protocol": 2}).encode()
        async with connect(f"ws://127.0.0.1:{port}/ws?token={token}") as ws:
            await ws.send(hello)
            assert json.loads(await ws.recv())["ok"]
        bearer = {"Authorization": f"Bearer {token}"}
        async with connect(f"ws://127.0.0.1:{port}/ws", additional_headers=bearer) as ws:
            await ws.send(hello)
            assert json.loads(await ws.recv())["ok"]
        guess = "guessed-token-0123456789"
        with pytest.raises(InvalidStatus):
            await connect(f"ws://127.0.0.1:{port}/ws?token={guess}")
        await http_get(port, f"/?token={token}&notebook=x")
        await http_get(port, f"/blob/{'0' * 64}?token={token}")

        async with Client(
            HOSTILE_ID, socket_path=settings.socket_path, name=HOSTILE_NAME
        ) as client:
            await client.request("launch_kernel", timeout=120)
            key = kernel_key(daemon.pid)
            await client.request("execute", code="print('hello')", timeout=60)
            await client.request("shutdown_kernel", timeout=60)
    finally:
        if daemon.returncode is None:
            daemon.send_signal(signal.SIGTERM)
        await asyncio.wait_for(daemon.wait(), 60)

    text = log.read_text()
    assert "< GET /ws?" + REDACTED in text  # the library's request lines were there
    for secret in (token, key, guess):
        assert secret not in text
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "\u202e" not in text
    joined = next(line for line in text.splitlines() if "peer_joined" in line)
    assert "\\x1b[31m" in joined  # the name, escaped (the renderer may quote it), on its line
    assert "x0aforged_line=1" in joined
    assert "u202e" in joined
    assert not any(line.startswith("forged_line") for line in text.splitlines())
    assert oct(os.stat(log).st_mode & 0o777) == oct(0o600)


def test_clean_cuts_query_strings_credentials_and_controls() -> None:
    register_secret("s3cret-token-value")
    assert clean("GET /ws?token=abc HTTP/1.1") == f"GET /ws?{REDACTED} HTTP/1.1"
    assert clean("/blob/ab?token=zz&x=1") == f"/blob/ab?token={REDACTED}&x=1"
    assert clean("/home/ada/what?.ipynb") == "/home/ada/what?.ipynb"
    assert clean("Authorization: Bearer abc.def") == f"Authorization: Bearer {REDACTED}"
    assert clean("http://127.0.0.1:1/?token=abc&notebook=n") == (
        f"http://127.0.0.1:1/?token={REDACTED}&notebook=n"
    )
    assert clean("key is s3cret-token-value.") == f"key is {REDACTED}."
    assert clean("a\x1b[2Jb\x00\x9b\u2028") == "a\\x1b[2Jb\\x00\\x9b\\u2028"
    assert clean("line\nnext", multiline=True) == "line\nnext"
    assert clean("line\nnext") == "line\\x0anext"
    assert clean("missing or wrong token: open the URL") == "missing or wrong token: open the URL"


def test_a_library_line_repeated_in_a_burst_is_written_once_per_interval() -> None:
    gate = RepeatFilter(interval=3600)

    def record(level: int, msg: object) -> logging.LogRecord:
        return logging.LogRecord("asyncio", level, __file__, 1, msg, None, None)

    flood = [record(logging.ERROR, "socket.accept() out of system resource") for _ in range(500)]
    passed = [r for r in flood if gate.filter(r)]
    assert len(passed) == 1
    gate.throttle.interval = 0  # the interval is over: the next one says what was left out
    later = record(logging.ERROR, "socket.accept() out of system resource")
    assert gate.filter(later)
    assert later.getMessage().endswith("(499 more like this were left out)")
    assert all(gate.filter(record(logging.DEBUG, "frame")) for _ in range(5))
    assert all(gate.filter(record(logging.INFO, {"event": "ours"})) for _ in range(5))
