"""Run one daemon in this process, with timings the CLI does not expose.

    python tests/reliability/daemon_process.py --socket S --data-dir D \
        --log-file L --set save_max_interval=0.5 --set peer_queue_limit=1048576

The fault tests kill this process with SIGKILL and measure its memory, so it must be
the daemon itself (`run_daemon`, as `runtimed serve` runs it), not a test's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from pathlib import Path

from runtimed.config import Settings
from runtimed.daemon.server import run_daemon
from runtimed.log import configure_logging

_KNOBS = {f.name: f.type for f in dataclasses.fields(Settings)}


def setting(raw: str) -> tuple[str, float | int]:
    """`name=value` for a numeric Settings field."""
    name, _, value = raw.partition("=")
    kind = _KNOBS.get(name)
    if kind not in ("float", "int"):
        raise argparse.ArgumentTypeError(f"{name!r} is not a numeric Settings field")
    return name, float(value) if kind == "float" else int(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--log-file", type=Path, required=True)
    parser.add_argument("--set", type=setting, action="append", default=[], dest="knobs")
    args = parser.parse_args()
    configure_logging("info", "json", log_file=args.log_file)
    settings = Settings(socket_path=args.socket, data_dir=args.data_dir, **dict(args.knobs))
    asyncio.run(run_daemon(settings))


if __name__ == "__main__":
    main()
