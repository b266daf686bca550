"""A systemd user unit for people who want the daemon from login on.

The unit pins this installation's Python, socket and data directory, so `systemctl
--user start runtimed` and the CLI agree on where the daemon lives. systemd stops it
with SIGTERM to the daemon alone (`KillMode=mixed`): the daemon saves its rooms and
shuts its kernels down itself, and only what is left after that gets SIGKILL.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from notebook_doc import atomic_write

UNIT_NAME = "runtimed.service"


def unit_path() -> Path:
    """$XDG_CONFIG_HOME/systemd/user/runtimed.service (default ~/.config)."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "systemd" / "user" / UNIT_NAME


def unit_text(socket_path: Path, data_dir: Path, *, python: str = sys.executable) -> str:
    """The unit file's text; the daemon logs to the journal (`journalctl --user -u runtimed`)."""
    argv = [python, "-m", "runtimed.cli", "--socket", str(socket_path), "serve"]
    argv += ["--data-dir", str(data_dir)]
    # Kernelspecs name programs found on PATH; systemd's own PATH is minimal.
    path_env = os.environ.get("PATH", os.defpath)
    return "\n".join(
        [
            "[Unit]",
            "Description=runtimed: Jupyter kernels bridged to collaborative notebooks",
            "",
            "[Service]",
            "Type=simple",
            "ExecStart=" + " ".join(_quote(arg, expands_variables=True) for arg in argv),
            "Environment=" + _quote(f"PATH={path_env}"),
            "KillMode=mixed",
            "TimeoutStopSec=60",
            "Restart=on-failure",
            "RestartSec=2",
            "",
            "[Install]",
            "WantedBy=default.target",
            "",
        ]
    )


def install(socket_path: Path, data_dir: Path) -> Path:
    """Write (or replace) the unit file; returns its path."""
    path = unit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, unit_text(socket_path, data_dir).encode())
    return path


def uninstall() -> list[Path]:
    """Remove the unit file and the link `systemctl --user enable` made (what `disable`
    would remove); returns the paths removed."""
    unit = unit_path()
    removed = []
    for path in (unit.parent / "default.target.wants" / UNIT_NAME, unit):
        if path.is_symlink() or path.exists():
            path.unlink()
            removed.append(path)
    return removed


def _quote(arg: str, *, expands_variables: bool = False) -> str:
    """One systemd word: double-quoted, `%` escaped (every line expands specifiers),
    and `$` too where the line expands variables (ExecStart)."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if expands_variables:
        escaped = escaped.replace("$", "$$")
    return f'"{escaped}"'
