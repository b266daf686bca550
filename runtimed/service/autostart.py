"""Starting a daemon for a client that found none: `runtimed start` on its socket.

`runtimed start` detaches a daemon, or reports the one that won a race, and returns
once it answers; the client then connects again.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from ..errors import RuntimedError

# `runtimed start` waits this long for the daemon to answer; we allow a bit more.
AUTOSTART_TIMEOUT = 60.0


class AutostartError(RuntimedError):
    """`runtimed start` failed or hung: code `autostart_failed`."""


async def start_daemon(socket_path: Path, timeout: float = AUTOSTART_TIMEOUT) -> str:
    """Run `runtimed start` on the socket; returns what it printed."""
    command = [sys.executable, "-m", "runtimed.cli", "--socket", str(socket_path), "start"]
    proc = await asyncio.create_subprocess_exec(
        *command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AutostartError(
            "autostart_failed",
            f"no daemon on {socket_path}, and `runtimed start` did not finish within {timeout:g} s",
        ) from None
    if proc.returncode != 0:
        raise AutostartError(
            "autostart_failed",
            f"no daemon on {socket_path}, and `runtimed start` failed "
            f"(exit {proc.returncode}):\n{err.decode(errors='replace').strip()}",
        )
    return out.decode(errors="replace").strip()
