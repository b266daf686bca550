"""`runtimed service install|uninstall`: a systemd user unit (systemd itself is not run)."""

from __future__ import annotations

import configparser
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service.conftest import Service


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def read_unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read_string(path.read_text())
    return unit


def test_install_writes_a_unit_whose_command_runs_the_daemon(
    service: Service, config_home: Path
) -> None:
    result = service.cli("service", "install")
    unit_file = config_home / "systemd" / "user" / "runtimed.service"
    assert result.stdout.splitlines()[0] == f"wrote {unit_file}"
    assert "systemctl --user enable --now runtimed.service" in result.stdout
    assert "journalctl --user -u runtimed.service" in result.stdout

    unit = read_unit(unit_file)
    assert unit["Install"]["WantedBy"] == "default.target"
    assert unit["Service"]["Type"] == "simple"
    assert unit["Service"]["KillMode"] == "mixed"  # SIGTERM to the daemon only
    environment = shlex.split(unit["Service"]["Environment"])
    assert environment[0].startswith("PATH=")
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv == [
        sys.executable,
        "-m",
        "runtimed.cli",
        "--socket",
        str(service.socket),
        "serve",
        "--data-dir",
        str(service.data_dir),
    ]

    # What systemd would run, run here: a foreground daemon the CLI finds and stops.
    daemon = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert daemon.stderr is not None
    next(line for line in daemon.stderr if "listening on" in line)
    assert json.loads(service.cli("status", "--json").stdout)["pid"] == daemon.pid
    service.cli("stop")
    assert daemon.wait(30) == 0
    daemon.stderr.close()


def test_uninstall_removes_the_unit_and_its_enable_link(
    service: Service, config_home: Path
) -> None:
    service.cli("service", "install")
    unit_dir = config_home / "systemd" / "user"
    wants = unit_dir / "default.target.wants" / "runtimed.service"
    wants.parent.mkdir()
    wants.symlink_to(unit_dir / "runtimed.service")  # what `systemctl --user enable` makes

    result = service.cli("service", "uninstall")
    assert f"removed {wants}" in result.stdout
    assert f"removed {unit_dir / 'runtimed.service'}" in result.stdout
    assert "systemctl --user daemon-reload" in result.stdout
    assert not wants.is_symlink()
    assert not (unit_dir / "runtimed.service").exists()

    again = service.cli("service", "uninstall")
    assert "nothing to remove" in again.stdout


def test_unit_quotes_what_systemd_would_expand(tmp_path: Path) -> None:
    from runtimed.service.systemd import unit_text

    odd = tmp_path / 'a dir with "quotes", 100% and $HOME'
    text = unit_text(odd / "r.sock", odd / "data", python="/usr/bin/python3")
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    # systemd reads `%%` as `%` and `$$` as `$`; undo that, then split as it would.
    words = shlex.split(exec_start.removeprefix("ExecStart=").replace("%%", "%").replace("$$", "$"))
    assert words[4] == str(odd / "r.sock")
    assert words[-1] == str(odd / "data")
    assert "100%%" in exec_start
    assert "$$HOME" in exec_start
