"""`runtimed`: run the daemon and look into it, using only the public client API."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .client import Client, ClientError
from .config import Settings, default_data_dir, default_socket_path
from .log import configure_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except ClientError as exc:
        print(f"runtimed: {exc.message} [{exc.code}]", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runtimed",
        description="Bridge Jupyter kernels to collaborative Automerge notebooks.",
    )
    parser.add_argument("--version", action="version", version=f"runtimed {__version__}")
    parser.add_argument(
        "--socket", type=Path, default=None, help=f"socket path (default {default_socket_path()})"
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the daemon in the foreground")
    serve.add_argument("--data-dir", type=Path, default=None, help=f"default {default_data_dir()}")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--log-format", default="console", choices=["console", "json"])
    serve.add_argument("--room-grace", type=float, default=Settings.room_grace)
    serve.set_defaults(func=_serve)

    status = sub.add_parser("status", help="is the daemon running? what does it hold?")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)

    stop = sub.add_parser("stop", help="stop the daemon gracefully (rooms saved)")
    stop.set_defaults(func=_stop)

    ls = sub.add_parser("ls", help="list open notebook rooms")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_ls)

    cat = sub.add_parser("cat", help="print a notebook's cells and comms")
    cat.add_argument("notebook", help="notebook id (an .ipynb path is made absolute)")
    cat.add_argument("--json", action="store_true")
    cat.set_defaults(func=_cat)

    watch = sub.add_parser("watch", help="print a notebook's live events until Ctrl+C")
    watch.add_argument("notebook")
    watch.set_defaults(func=_watch)
    return parser


def notebook_ref(raw: str) -> tuple[str, str | None]:
    """A notebook argument: an .ipynb path becomes its absolute path (id and file)."""
    if raw.endswith(".ipynb"):
        path = str(Path(raw).expanduser().resolve())
        return path, path
    return raw, None


# --- commands ---------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from .server import DaemonAlreadyRunning, run_daemon

    configure_logging(args.log_level, args.log_format)
    settings = Settings(
        socket_path=args.socket or default_socket_path(),
        data_dir=args.data_dir or default_data_dir(),
        room_grace=args.room_grace,
    )

    def ready() -> None:
        print(f"runtimed {__version__} listening on {settings.socket_path}", file=sys.stderr)
        print(f"data directory: {settings.data_dir}", file=sys.stderr)

    try:
        asyncio.run(run_daemon(settings, ready))
    except DaemonAlreadyRunning as exc:
        print(f"runtimed: {exc}", file=sys.stderr)
        return 1
    return 0


def _control(args: argparse.Namespace, action: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with Client(socket_path=args.socket, name="runtimed-cli") as client:
            return await client.request(action)

    return asyncio.run(go())


def _status(args: argparse.Namespace) -> int:
    try:
        info = _control(args, "daemon_info")
    except ClientError as exc:
        if exc.code != "no_daemon":
            raise
        print(f"runtimed is not running ({exc.message})", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"runtimed {info['version']} (pid {info['pid']}), up {info['uptime']:.0f} s")
    print(f"socket:   {info['socket']}")
    print(f"data dir: {info['data_dir']}")
    _print_rooms(info["rooms"])
    return 0


def _stop(args: argparse.Namespace) -> int:
    _control(args, "shutdown_daemon")
    print("runtimed is stopping", file=sys.stderr)
    return 0


def _ls(args: argparse.Namespace) -> int:
    rooms = _control(args, "list_rooms")["rooms"]
    if args.json:
        print(json.dumps(rooms, indent=2))
    else:
        _print_rooms(rooms)
    return 0


def _print_rooms(rooms: list[dict[str, Any]]) -> None:
    if not rooms:
        print("no open rooms")
        return
    for room in rooms:
        kernel = f"{room['kernel_name']} ({room['kernel_status']})" if room["kernel_name"] else "-"
        print(
            f"{room['notebook_id']}  peers={room['peers']} cells={room['cells']} "
            f"comms={room['comms']} kernel={kernel}"
        )


def _cat(args: argparse.Namespace) -> int:
    notebook_id, path = notebook_ref(args.notebook)

    async def go() -> dict[str, Any]:
        async with Client(
            notebook_id, socket_path=args.socket, path=path, name="runtimed-cli"
        ) as client:
            return client.doc.to_json()

    view = asyncio.run(go())
    if args.json:
        print(json.dumps(view, indent=2, ensure_ascii=False))
        return 0
    print(format_notebook(view))
    return 0


def format_notebook(view: dict[str, Any]) -> str:
    """A notebook as plain text: cells in order, then live comms."""
    lines = [f"# {view['notebook_id']}"]
    for cell in view["cells"]:
        count = cell.get("execution_count")
        label = f"[{count if count is not None else ' '}]" if cell["cell_type"] == "code" else ""
        lines.append(f"--- {cell['cell_type']} {cell['id']} {label}".rstrip())
        lines.append(cell["source"])
        for output in cell.get("outputs", []):
            lines.append(f"  => {output if len(output) < 200 else output[:200] + '…'}")
    comms = view.get("comms") or []
    if comms:
        lines.append(f"--- {len(comms)} comm(s)")
        for comm in comms:
            name = f"{comm['model_module']}.{comm['model_name']}".strip(".")
            lines.append(f"  {comm['comm_id']} seq={comm['seq']} {name or comm['target_name']}")
    return "\n".join(lines)


def _watch(args: argparse.Namespace) -> int:
    notebook_id, path = notebook_ref(args.notebook)

    async def go() -> None:
        async with Client(
            notebook_id, socket_path=args.socket, path=path, name="runtimed-watch"
        ) as client:
            queue = client.subscribe()
            for event in list(client.broadcasts):
                _print_event(event.event, event.fields)
            heads = client.doc.get_heads()
            cells = _cell_sources(client)
            while True:
                await client.wait_for(
                    lambda c, seen=heads: not queue.empty() or c.doc.get_heads() != seen,
                    timeout=1e9,
                )
                while not queue.empty():
                    event = queue.get_nowait()
                    _print_event(event.event, event.fields)
                heads = client.doc.get_heads()
                now = _cell_sources(client)
                for cell_id, source in now.items():
                    if cells.get(cell_id) != source:
                        print(f"cell {cell_id}: {source!r}", flush=True)
                cells = now

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(go())
    return 0


def _cell_sources(client: Client) -> dict[str, str]:
    return {cell.id: cell.source for cell in client.doc.get_cells()}


def _print_event(name: str, fields: dict[str, Any]) -> None:
    print(f"{name}: {json.dumps(fields, ensure_ascii=False)[:300]}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
