"""The daemon as the bench runs it: `runtimed.daemon.server.run_daemon` in its own process.

A separate process keeps the bench's clients off the daemon's event loop and CPU, and
makes RSS and CPU time the daemon's alone. Extras for measuring, all optional:
`--probe` runs a LoopProbe (SIGUSR1 writes its figures to `--stats` and resets it),
`--profile` runs the daemon under cProfile and writes the stats on exit, `--ws-port`
opens the WebSocket listener (and its Kernel Gateway API) on 127.0.0.1,
`--no-compaction` turns automatic compaction off (the with/without figures).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import signal
import sys
import time
from pathlib import Path

from runtimed.config import Settings
from runtimed.daemon.server import run_daemon
from runtimed.log import configure_logging

from .loop_probe import LoopProbe


def _write_stats(probe: LoopProbe, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(probe.take()))
    os.replace(tmp, path)


async def _serve(args: argparse.Namespace) -> None:
    ws = ("127.0.0.1", args.ws_port) if args.ws_port else None
    settings = Settings(
        socket_path=Path(args.socket),
        data_dir=Path(args.data_dir),
        ws=ws,
        compaction=not args.no_compaction,
    )
    probe_task: asyncio.Task[None] | None = None
    if args.probe:
        probe = LoopProbe()
        probe_task = asyncio.create_task(probe.run())
        stats = Path(args.stats)
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _write_stats, probe, stats)
    try:
        await run_daemon(settings, ready=lambda: print("ready", flush=True))
    finally:
        if probe_task is not None:
            probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--stats", default="")
    parser.add_argument("--profile", default="")
    parser.add_argument("--ws-port", type=int, default=0, help="also listen on 127.0.0.1:PORT")
    parser.add_argument("--no-compaction", action="store_true")
    args = parser.parse_args()
    configure_logging(level="info", stream=sys.stderr)
    if not args.profile:
        asyncio.run(_serve(args))
        return
    # CPU time, not wall time: on a shared machine wall time counts waiting for a core.
    profiler = cProfile.Profile(time.process_time)
    try:
        profiler.runcall(asyncio.run, _serve(args))
    finally:
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
