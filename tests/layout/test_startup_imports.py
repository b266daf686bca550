"""What a daemon imports to start and open a room: only what every daemon needs.

Most of an idle daemon's memory is the modules it imported (docs/compaction.md,
"Memory"). Libraries that only a rarely used path needs are imported where that path
runs; this keeps them out of a plain daemon's start.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import short_socket_dir

# Each with the path that does import it.
RARELY_NEEDED = {
    "nbformat": "an .ipynb validated on open or save (notebook_doc.ipynb)",
    "jsonschema": "nbformat's validator",
    "httpx": "kernels on a Kernel Gateway (runtimed.kernel.gateway_rest)",
    "runtimed.kernel.gateway_process": "kernels on a Kernel Gateway",
}

START_AND_OPEN = """
import asyncio, json, os, signal, sys
from pathlib import Path
from runtimed.client import Client
from runtimed.config import Settings
from runtimed.daemon.server import run_daemon

settings = Settings(socket_path=Path(sys.argv[1]), data_dir=Path(sys.argv[2]))

async def main():
    ready = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(settings, ready.set))
    await asyncio.wait_for(ready.wait(), 60)
    async with Client("fresh", socket_path=settings.socket_path, timeout=60) as client:
        client.doc.cell_ids()  # the room is open and synced
    print("modules:", json.dumps(sorted(sys.modules)), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    await daemon

asyncio.run(main())
"""


def test_a_daemon_starts_and_opens_a_room_without_the_rarely_needed_libraries(
    tmp_path: Path,
) -> None:
    sock_dir = short_socket_dir()
    done = subprocess.run(
        [sys.executable, "-c", START_AND_OPEN, str(sock_dir / "d.sock"), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("modules: "))
    modules = set(json.loads(line.removeprefix("modules: ")))
    assert "runtimed.daemon.room" in modules  # a guard: the list is the daemon's
    imported = {name: why for name, why in RARELY_NEEDED.items() if name in modules}
    assert not imported, f"imported at start, needed only for: {imported}"
