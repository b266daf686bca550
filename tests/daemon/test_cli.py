"""The daemon as users run it: a subprocess driven by the `runtimed` command."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtimed.client import Client
from runtimed.config import Settings

RUNTIMED = [sys.executable, "-m", "runtimed.cli"]


def cli(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RUNTIMED, "--socket", str(settings.socket_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def wait_for_socket(proc: subprocess.Popen[str], settings: Settings, log: Path) -> None:
    """Until the daemon's socket exists (or the daemon died: its log says why)."""
    deadline = time.monotonic() + 30
    while not settings.socket_path.exists():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "daemon did not create its socket"
        time.sleep(0.05)


@pytest.fixture
def served(settings: Settings, tmp_path: Path):
    log_file = (tmp_path / "daemon.log").open("w+")
    proc = subprocess.Popen(
        [
            *RUNTIMED,
            "--socket",
            str(settings.socket_path),
            "serve",
            "--data-dir",
            str(settings.data_dir),
            "--log-format",
            "json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log_file,
        text=True,
    )
    proc.log_file = log_file  # type: ignore[attr-defined]
    wait_for_socket(proc, settings, tmp_path / "daemon.log")
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    log_file.close()


def test_status_cat_ls_and_stop_round_trip(settings: Settings, served, tmp_path: Path) -> None:
    status = cli(settings, "status", "--json")
    info = json.loads(status.stdout)
    assert info["pid"] == served.pid
    assert info["socket"] == str(settings.socket_path)

    notebook = tmp_path / "hello.ipynb"
    notebook.write_text(
        json.dumps(
            {
                "nbformat": 4,
                "nbformat_minor": 5,
                "metadata": {},
                "cells": [
                    {
                        "cell_type": "code",
                        "id": "c1",
                        "source": "print('hi')",
                        "metadata": {},
                        "outputs": [],
                        "execution_count": None,
                    }
                ],
            }
        )
    )
    cat = cli(settings, "cat", str(notebook))
    assert "print('hi')" in cat.stdout
    as_json = json.loads(cli(settings, "cat", str(notebook), "--json").stdout)
    assert [c["source"] for c in as_json["cells"]] == ["print('hi')"]
    ls = cli(settings, "ls")
    assert str(notebook) in ls.stdout
    gc = cli(settings, "gc")
    assert "1 notebook(s) read: 0 blob(s) deleted" in gc.stdout

    cli(settings, "stop")
    assert served.wait(30) == 0
    assert not settings.socket_path.exists()


def test_sigterm_saves_rooms_and_removes_the_socket(
    settings: Settings, served, tmp_path: Path
) -> None:
    notebook = tmp_path / "some.ipynb"
    notebook.write_text(
        json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []})
    )
    cli(settings, "cat", str(notebook))
    served.send_signal(signal.SIGTERM)
    assert served.wait(30) == 0
    assert not settings.socket_path.exists()
    assert list((settings.data_dir / "docs").glob("*.automerge"))
    served.log_file.seek(0)
    logs = [
        json.loads(line) for line in served.log_file.read().splitlines() if line.startswith("{")
    ]
    assert any(line.get("event") == "stopped" for line in logs)


def test_status_when_no_daemon_runs_says_so(settings: Settings) -> None:
    result = cli(settings, "status", check=False)
    assert result.returncode == 3
    assert "not running" in result.stderr


def test_second_serve_on_a_live_socket_exits_with_a_clear_message(
    settings: Settings, served
) -> None:
    result = subprocess.run(
        [
            *RUNTIMED,
            "--socket",
            str(settings.socket_path),
            "serve",
            "--data-dir",
            str(settings.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "already listening" in result.stderr
    assert served.poll() is None
    assert os.path.exists(settings.socket_path)


def test_a_signal_delivered_twice_at_once_still_stops_gracefully(
    settings: Settings, served
) -> None:
    # Ctrl+C under `make run` reaches the daemon twice: from the terminal and from make.
    served.send_signal(signal.SIGINT)
    served.send_signal(signal.SIGINT)
    assert served.wait(30) == 0
    assert not settings.socket_path.exists()


def test_watch_and_status_show_compactions(settings: Settings, served) -> None:
    async def watch_a_compaction() -> dict:
        async with Client("nb-cli-compact", socket_path=settings.socket_path) as client:
            client.doc.add_cell(source="x = 1")  # a room watch can name
            await client.wait_synced()
            watch = await asyncio.create_subprocess_exec(
                *RUNTIMED,
                "--socket",
                str(settings.socket_path),
                "watch",
                "nb-cli-compact",
                stdout=subprocess.PIPE,
            )
            assert watch.stdout is not None
            try:
                lines = [(await watch.stdout.readline()).decode()]  # the watcher has joined
                result = await client.request("compact")
                async with asyncio.timeout(30):
                    while not any("compaction: epoch 0 -> 1 (requested)" in x for x in lines):
                        line = (await watch.stdout.readline()).decode()
                        assert line, f"watch ended: {lines}"
                        lines.append(line)
            finally:
                watch.terminate()
                await watch.wait()
            return result

    result = asyncio.run(watch_a_compaction())
    assert result["epoch"] == 1
    status = cli(settings, "status").stdout
    assert "nb-cli-compact" in status
    assert "epoch=1" in status
    assert "last_compaction=" in status
    assert "(requested," in status
