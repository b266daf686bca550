"""`runtimed`: run the daemon and look into it, using only the public client API."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .client import Client, ClientError
from .config import (
    Settings,
    default_data_dir,
    default_log_path,
    default_socket_path,
    lock_path,
    token_path,
)
from .lock import holder_pid
from .log import configure_logging
from .private_files import UnsafePathError
from .service import ServiceError


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
    except (ServiceError, UnsafePathError) as exc:
        print(f"runtimed: {exc}", file=sys.stderr)
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
    # Commands that need a daemon start one when none answers (`runtimed start`).
    autostarts = argparse.ArgumentParser(add_help=False)
    autostarts.add_argument(
        "--no-autostart",
        dest="autostart",
        action="store_false",
        help="fail instead of starting a daemon when none is running",
    )

    serve = sub.add_parser("serve", help="run the daemon in the foreground")
    serve.add_argument("--data-dir", type=Path, default=None, help=f"default {default_data_dir()}")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--log-format", default="console", choices=["console", "json"])
    serve.add_argument(
        "--log-file", type=Path, default=None, help="log to this file (rotated) instead of stderr"
    )
    # Settings() and not Settings: a slotted dataclass has no class-level defaults.
    serve.add_argument("--room-grace", type=float, default=Settings().room_grace)
    serve.add_argument(
        "--ws",
        type=ws_address,
        default=None,
        metavar="HOST:PORT",
        help="also serve browsers: WebSocket + notebook page (e.g. 127.0.0.1:8765)",
    )
    serve.add_argument(
        "--ws-allow-remote", action="store_true", help="allow --ws on a non-loopback address"
    )
    serve.set_defaults(func=_serve)

    start = sub.add_parser("start", help="start the daemon in the background")
    start.add_argument("--data-dir", type=Path, default=None, help=f"default {default_data_dir()}")
    start.add_argument("--log-file", type=Path, default=None, help=f"default {default_log_path()}")
    start.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for it")
    start.add_argument(
        "--ws", type=ws_address, default=None, metavar="HOST:PORT", help="as for serve"
    )
    start.set_defaults(func=_start)

    status = sub.add_parser("status", help="is the daemon running? what does it hold?")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)

    stop = sub.add_parser("stop", help="stop the daemon gracefully (rooms saved, kernels shut)")
    stop.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for it")
    stop.set_defaults(func=_stop)

    logs = sub.add_parser("logs", help="show the background daemon's log")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("-n", "--lines", type=int, default=50, help="how many last lines")
    logs.add_argument("--log-file", type=Path, default=None, help=f"default {default_log_path()}")
    logs.set_defaults(func=_logs)

    kernels = sub.add_parser("kernels", help="list running kernels that can be attached")
    kernels.add_argument("--json", action="store_true")
    kernels.add_argument("--timeout", type=float, default=2.0, help="seconds to wait per kernel")
    kernels.set_defaults(func=_kernels)

    attach = sub.add_parser(
        "attach", parents=[autostarts], help="bridge a running kernel into a notebook room"
    )
    attach.add_argument("connection_file", help="a kernel connection file: path, name or kernel id")
    attach.add_argument("--notebook", required=True, help="notebook id or .ipynb path")
    attach.set_defaults(func=_attach)

    service = sub.add_parser("service", help="a systemd user unit that runs it at login")
    service_sub = service.add_subparsers(title="actions", metavar="ACTION", required=True)
    install = service_sub.add_parser("install", help="write the unit file")
    install.add_argument(
        "--data-dir", type=Path, default=None, help=f"default {default_data_dir()}"
    )
    install.set_defaults(func=_service_install)
    uninstall = service_sub.add_parser("uninstall", help="remove the unit file")
    uninstall.set_defaults(func=_service_uninstall)

    ls = sub.add_parser("ls", parents=[autostarts], help="list open notebook rooms")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_ls)

    gc = sub.add_parser(
        "gc", parents=[autostarts], help="delete stored blobs that no notebook refers to"
    )
    gc.add_argument(
        "--min-age",
        type=float,
        default=3600.0,
        help="keep blobs younger than this many seconds (default 3600)",
    )
    gc.set_defaults(func=_gc)

    cat = sub.add_parser("cat", parents=[autostarts], help="print a notebook's cells and comms")
    cat.add_argument("notebook", help="notebook id (an .ipynb path is made absolute)")
    cat.add_argument("--json", action="store_true")
    cat.set_defaults(func=_cat)

    trust = sub.add_parser(
        "trust", parents=[autostarts], help="trust a notebook's outputs, as `jupyter trust` does"
    )
    trust.add_argument("notebook", help="an .ipynb path")
    trust.set_defaults(func=_trust)

    watch = sub.add_parser(
        "watch", parents=[autostarts], help="print a notebook's live events until Ctrl+C"
    )
    watch.add_argument("notebook")
    watch.set_defaults(func=_watch)
    return parser


def ws_address(raw: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:PORT`) for `serve --ws`."""
    host, sep, port = raw.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as 127.0.0.1:8765, got {raw!r}")
    return host, int(port)


def notebook_ref(raw: str) -> tuple[str, str | None]:
    """A notebook argument: an .ipynb path becomes its absolute path (id and file)."""
    if raw.endswith(".ipynb"):
        path = str(Path(raw).expanduser().resolve())
        return path, path
    return raw, None


# --- commands ---------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from .server import DaemonAlreadyRunning, run_daemon
    from .websocket import WebListenerError, page_url, read_token

    configure_logging(args.log_level, args.log_format, log_file=args.log_file)
    settings = Settings(
        socket_path=args.socket or default_socket_path(),
        data_dir=args.data_dir or default_data_dir(),
        room_grace=args.room_grace,
        ws=args.ws,
        ws_allow_remote=args.ws_allow_remote,
    )

    def ready() -> None:
        print(f"runtimed {__version__} listening on {settings.socket_path}", file=sys.stderr)
        print(f"data directory: {settings.data_dir}", file=sys.stderr)
        if settings.ws is not None:
            path = token_path(settings.socket_path)
            if args.log_file is None:
                page = page_url(*settings.ws, read_token(path))
            else:  # stderr is the log (`runtimed start`): the token stays in its file
                page = f"{page_url(*settings.ws, '').partition('?')[0]} (token in {path})"
            print(f"notebook page: {page}", file=sys.stderr, flush=True)

    try:
        asyncio.run(run_daemon(settings, ready))
    except (DaemonAlreadyRunning, WebListenerError, UnsafePathError) as exc:
        print(f"runtimed: {exc}", file=sys.stderr)
        return 1
    return 0


def _socket(args: argparse.Namespace) -> Path:
    return args.socket or default_socket_path()


@contextlib.asynccontextmanager
async def _connected(
    args: argparse.Namespace,
    notebook_id: str | None = None,
    *,
    path: str | None = None,
    name: str = "runtimed-cli",
) -> AsyncIterator[Client]:
    """A client for one command; when it had to start the daemon, stderr says so."""
    client = Client(
        notebook_id,
        socket_path=_socket(args),
        path=path,
        name=name,
        autostart=getattr(args, "autostart", False),
    )
    async with client:
        if client.autostart_report:
            print(client.autostart_report, file=sys.stderr)
        yield client


def _control(args: argparse.Namespace, action: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with _connected(args) as client:
            return await client.request(action)

    return asyncio.run(go())


def _start(args: argparse.Namespace) -> int:
    from .service import start_daemon

    log_file = args.log_file or default_log_path()
    serve_args = ["--ws", f"{args.ws[0]}:{args.ws[1]}"] if args.ws else []
    started = start_daemon(
        _socket(args),
        log_file=log_file,
        data_dir=args.data_dir,
        serve_args=serve_args,
        timeout=args.timeout,
    )
    info = started.info
    if started.already_running:
        print(f"runtimed {info['version']} is already running (pid {info['pid']})")
    else:
        print(f"runtimed {info['version']} started (pid {info['pid']})")
    print(f"socket:   {info['socket']}")
    print(f"data dir: {info['data_dir']}")
    if not started.already_running:
        print(f"log:      {log_file}")
    if args.ws and not started.already_running:
        from .websocket import page_url, read_token

        token = read_token(token_path(_socket(args)))
        print(f"page:     {page_url(*args.ws, token)}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from .service import probe

    socket_path = _socket(args)
    info = probe(socket_path)
    if info is None:
        stuck = holder_pid(socket_path)
        if stuck is not None:
            print(
                f"runtimed (pid {stuck}) holds {lock_path(socket_path)} but does not answer on "
                f"{socket_path}: `kill {stuck}`, then `runtimed start`",
                file=sys.stderr,
            )
            return 1
        print(f"runtimed is not running (nothing answers on {socket_path})", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"runtimed {info['version']} is running (pid {info['pid']}), up {_age(info['uptime'])}")
    print(f"socket:   {info['socket']}")
    print(f"data dir: {info['data_dir']}")
    print(f"rooms:    {len(info['rooms'])}")
    for room in info["rooms"]:
        print(f"  {_room_line(room)}")
    print(f"kernels:  {len(info['kernels'])}")
    for kernel in info["kernels"]:
        print(f"  {kernel['kernel_name'] or '-'} ({kernel['status']})  {kernel['notebook_id']}")
        if kernel.get("connection_file"):
            print(f"    connection file: {kernel['connection_file']}")
    return 0


def _age(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _stop(args: argparse.Namespace) -> int:
    from .service import stop_daemon

    info = stop_daemon(_socket(args), timeout=args.timeout)
    if info is None:
        print("runtimed is not running")
        return 0
    print(
        f"runtimed (pid {info['pid']}) stopped: {len(info['rooms'])} room(s) saved, "
        f"{len(info['kernels'])} kernel(s) closed"
    )
    return 0


def _logs(args: argparse.Namespace) -> int:
    from .service import follow, tail

    path = args.log_file or default_log_path()
    if not args.follow:
        if not path.exists():
            print(f"runtimed: no log at {path} (`runtimed start` writes it)", file=sys.stderr)
            return 1
        for line in tail(path, args.lines):
            print(line)
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        for line in follow(path, backlog=args.lines):
            print(line, flush=True)
    return 0


def _kernels(args: argparse.Namespace) -> int:
    from .connection_files import find_kernels, runtime_dir

    directory = runtime_dir()
    found = asyncio.run(find_kernels(directory, timeout=args.timeout))
    if args.json:
        print(json.dumps([kernel.to_json() for kernel in found], indent=2))
        return 0
    if not found:
        print(f"no kernel connection files in {directory}")
        return 0
    print(f"kernels in {directory}:")
    for kernel in found:
        state = "answers" if kernel.answers else "no answer"
        name = Path(kernel.path).name
        print(f"  {name}  {kernel.kernel_name or '-'}  {state}: {kernel.detail}")
    return 0


def _attach(args: argparse.Namespace) -> int:
    from .connection_files import resolve

    try:
        connection_file = resolve(args.connection_file)
    except FileNotFoundError as exc:
        print(f"runtimed: {exc}", file=sys.stderr)
        return 1
    notebook_id, path = notebook_ref(args.notebook)

    async def go() -> dict[str, Any]:
        async with _connected(args, notebook_id, path=path) as client:
            return await client.request("attach_kernel", connection_file=str(connection_file))

    result = asyncio.run(go())
    kernel = result.get("kernel_name") or "kernel"
    print(f"attached {connection_file.name} ({kernel}, {result['status']}) to {notebook_id}")
    return 0


def _service_install(args: argparse.Namespace) -> int:
    from .systemd import UNIT_NAME, install

    path = install(_socket(args), args.data_dir or default_data_dir())
    print(f"wrote {path}")
    print("to start it now and at every login (stop one from `runtimed start` first):")
    print("  systemctl --user daemon-reload")
    print(f"  systemctl --user enable --now {UNIT_NAME}")
    print(f"its log: journalctl --user -u {UNIT_NAME} -f")
    return 0


def _service_uninstall(args: argparse.Namespace) -> int:
    from .systemd import UNIT_NAME, uninstall, unit_path

    removed = uninstall()
    if not removed:
        print(f"no unit at {unit_path()}: nothing to remove")
        return 0
    for path in removed:
        print(f"removed {path}")
    print("then, if it is running:")
    print(f"  systemctl --user stop {UNIT_NAME}")
    print("  systemctl --user daemon-reload")
    return 0


def _ls(args: argparse.Namespace) -> int:
    rooms = _control(args, "list_rooms")["rooms"]
    if args.json:
        print(json.dumps(rooms, indent=2))
    else:
        _print_rooms(rooms)
    return 0


def _gc(args: argparse.Namespace) -> int:
    async def go() -> dict[str, Any]:
        async with _connected(args) as client:
            return await client.request("gc", min_age=args.min_age)

    report = asyncio.run(go())
    print(
        f"{report['notebooks']} notebook(s) read: {report['blobs_deleted']} blob(s) deleted "
        f"({report['bytes_freed']} bytes), {report['blobs_kept']} kept, "
        f"{report['temp_files_deleted']} stale temp file(s) removed"
    )
    return 0


def _print_rooms(rooms: list[dict[str, Any]]) -> None:
    if not rooms:
        print("no open rooms")
        return
    for room in rooms:
        print(_room_line(room))


def _room_line(room: dict[str, Any]) -> str:
    kernel = f"{room['kernel_name']} ({room['kernel_status']})" if room["kernel_name"] else "-"
    line = (
        f"{room['notebook_id']}  peers={room['peers']} cells={room['cells']} "
        f"comms={room['comms']} kernel={kernel}"
    )
    history = room.get("history")
    if history is not None:
        line += f" epoch={room['epoch']} history={history['changes']} changes"
        if history["bytes"] is not None:
            line += f"/{history['bytes']} B"
    last = room.get("last_compaction")
    if last:
        when = time.strftime("%H:%M:%S", time.localtime(last["at"]))
        line += (
            f" last_compaction={when} ({last['reason']}, {last['bytes_before']} -> "
            f"{last['bytes_after']} B, {last['duration'] * 1000:.0f} ms)"
        )
    return line


def _cat(args: argparse.Namespace) -> int:
    notebook_id, path = notebook_ref(args.notebook)

    async def go() -> dict[str, Any]:
        async with _connected(args, notebook_id, path=path) as client:
            return client.doc.to_json()

    view = asyncio.run(go())
    if args.json:
        print(json.dumps(view, indent=2, ensure_ascii=False))
        return 0
    print(format_notebook(view))
    return 0


def _trust(args: argparse.Namespace) -> int:
    """Signs the notebook, as the daemon holds it, in runtimed's trust store."""
    notebook_id, path = notebook_ref(args.notebook)
    if path is None or not Path(path).is_file():
        print(f"runtimed: {args.notebook!r} is not an .ipynb file", file=sys.stderr)
        return 2

    async def go() -> dict[str, Any]:
        async with _connected(args, notebook_id, path=path) as client:
            return await client.request("trust")

    asyncio.run(go())
    print(f"trusted {path}")
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
        async with _connected(args, notebook_id, path=path, name="runtimed-watch") as client:
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
    if name == "compaction":
        print(
            f"compaction: epoch {fields.get('previous_epoch')} -> {fields.get('epoch')} "
            f"({fields.get('reason')}): {fields.get('changes')} changes, "
            f"{fields.get('bytes_before')} -> {fields.get('bytes_after')} bytes",
            flush=True,
        )
        return
    print(f"{name}: {json.dumps(fields, ensure_ascii=False)[:300]}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
