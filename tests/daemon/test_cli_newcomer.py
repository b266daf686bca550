"""The CLI as a newcomer meets it: help, typos, readable output, stored copies, the log."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtimed.cli import main
from runtimed.cli.parser import build_parser
from runtimed.client import Client
from runtimed.config import Settings
from tests.daemon.test_cli import RUNTIMED, cli, wait_for_socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def daemon(settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """`runtimed serve --socket X ...` (options after the subcommand), with the page on."""
    port = free_port()
    err = (tmp_path / "serve.err").open("w+")
    proc = subprocess.Popen(
        [
            *RUNTIMED,
            "serve",
            "--socket",
            str(settings.socket_path),
            "--data-dir",
            str(settings.data_dir),
            "--room-grace",
            "0.2",
            "--ws",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=err,
        text=True,
    )
    proc.port = port  # type: ignore[attr-defined]
    proc.err = err  # type: ignore[attr-defined]
    wait_for_socket(proc, settings, tmp_path / "serve.err")
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    err.close()


def write_notebook(path: Path) -> None:
    slider = {
        "model_name": "IntSliderModel",
        "model_module": "@jupyter-widgets/controls",
        "model_module_version": "2.0.0",
        "state": {"value": 7, "description": "speed", "min": 0, "max": 10},
    }
    path.write_text(
        json.dumps(
            {
                "nbformat": 4,
                "nbformat_minor": 5,
                "metadata": {
                    "widgets": {
                        "application/vnd.jupyter.widget-state+json": {
                            "version_major": 2,
                            "version_minor": 0,
                            "state": {"m1": slider},
                        }
                    }
                },
                "cells": [
                    {
                        "cell_type": "code",
                        "id": "c1",
                        "source": "print('hello'); 6 * 7",
                        "metadata": {},
                        "execution_count": 1,
                        "outputs": [
                            {"output_type": "stream", "name": "stdout", "text": ["hello\n"]},
                            {
                                "output_type": "execute_result",
                                "execution_count": 1,
                                "metadata": {},
                                "data": {"text/plain": "42", "text/html": "<b>42</b>"},
                            },
                        ],
                    },
                    {
                        "cell_type": "code",
                        "id": "c2",
                        "source": "raise ValueError('boom')",
                        "metadata": {},
                        "execution_count": 2,
                        "outputs": [
                            {
                                "output_type": "error",
                                "ename": "ValueError",
                                "evalue": "boom",
                                "traceback": ["\x1b[31mValueError\x1b[0m: boom"],
                            }
                        ],
                    },
                ],
            }
        )
    )


def test_every_subcommand_has_a_description_and_examples() -> None:
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"serve", "start", "stop", "status", "cat", "ls", "forget", "gc"} <= set(commands)
    for name in commands:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
            main([name, "--help"])
        assert exited.value.code == 0
        assert "examples:\n  runtimed " in out.getvalue(), name


def test_banner_first_page_url_in_status_and_no_access_lines(
    settings: Settings, daemon: subprocess.Popen[str]
) -> None:
    status = cli(settings, "status").stdout  # --socket before the subcommand, too
    [page] = [line.split()[1] for line in status.splitlines() if line.startswith("page:")]
    assert page.startswith(f"http://127.0.0.1:{daemon.port}/?token=")  # type: ignore[attr-defined]
    with urllib.request.urlopen(page, timeout=10) as response:
        assert response.status == 200
    cli(settings, "stop")
    daemon.wait(30)
    daemon.err.seek(0)  # type: ignore[attr-defined]
    log = daemon.err.read()  # type: ignore[attr-defined]
    assert log.startswith("runtimed ")
    assert "listening on" in log.splitlines()[0]
    assert "GET /" not in log
    assert "connection open" not in log


def test_a_taken_ws_port_says_how_to_pick_another(settings: Settings, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                *RUNTIMED,
                "serve",
                "--socket",
                str(settings.socket_path),
                "--data-dir",
                str(tmp_path / "data"),
                "--ws",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "pick another, --ws 127.0.0.1:PORT" in result.stderr


def test_cat_is_readable_and_json_is_raw(
    settings: Settings, daemon: subprocess.Popen[str], tmp_path: Path
) -> None:
    notebook = tmp_path / "readable.ipynb"
    write_notebook(notebook)
    text = cli(settings, "cat", str(notebook)).stdout
    assert "  hello" in text
    assert "  42" in text
    assert "<b>42</b>" not in text
    assert "  ValueError: boom" in text
    assert 'IntSliderModel description="speed" value=7 min=0 max=10' in text
    raw = json.loads(cli(settings, "cat", str(notebook), "--json").stdout)
    assert raw["cells"][0]["id"] == "c1"


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("nope.ipynb", "does not exist"),
        ("/nonexistent/dir/x.ipynb", "does not exist"),
        ("nope", "no notebook 'nope' is open or stored"),
    ],
)
def test_a_typo_fails_and_stores_nothing(
    settings: Settings, daemon: subprocess.Popen[str], argument: str, message: str
) -> None:
    result = cli(settings, "cat", argument, check=False)
    assert result.returncode == 1
    assert message in result.stderr
    assert "--create" in result.stderr or "directory" in result.stderr
    assert "no stored copies" in cli(settings, "ls", "--stored").stdout
    assert not list(settings.docs_dir.glob("*"))


def test_ls_stored_forget_and_gc_drop_missing(
    settings: Settings, daemon: subprocess.Popen[str], tmp_path: Path
) -> None:
    kept = tmp_path / "kept.ipynb"
    gone = tmp_path / "gone.ipynb"
    for path in (kept, gone):
        write_notebook(path)
        cli(settings, "cat", str(path))

    async def while_open() -> str:
        async with Client(str(kept), socket_path=settings.socket_path, path=str(kept)):
            refused = await asyncio.to_thread(cli, settings, "forget", str(kept), check=False)
        return refused.stderr

    assert "is open" in asyncio.run(while_open())

    def stored() -> list[dict]:
        return json.loads(cli(settings, "ls", "--stored", "--json").stdout)

    deadline = time.monotonic() + 30
    while any(copy["open"] for copy in stored()):  # rooms close after their grace
        assert time.monotonic() < deadline
        time.sleep(0.1)
    listing = cli(settings, "ls", "--stored").stdout
    assert str(kept) in listing
    assert str(gone) in listing
    assert "KiB" in listing or " B " in listing

    gone.unlink()
    dropped = cli(settings, "gc", "--drop-missing").stdout
    assert f"forgot the stored copy of {gone}" in dropped
    assert [copy["path"] for copy in stored()] == [str(kept)]

    forgot = cli(settings, "forget", str(kept)).stdout
    assert f"forgot the stored copy of {kept}" in forgot
    assert stored() == []
    assert kept.exists()  # the notebook itself is never touched
    again = cli(settings, "forget", str(kept), check=False)
    assert again.returncode == 1
    assert "no stored copy" in again.stderr
