"""`runtimed`: run the daemon and look into it, using only the public client API."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .cli_view import format_notebook, format_stored
from .client import Client, ClientError
from .config import (
    Settings,
    default_data_dir,
    default_log_path,
    default_socket_path,
    lock_path,
    token_path,
)
from .log import configure_logging
from .private_files import UnsafePathError
from .service.background import ServiceError
from .service.lock import holder_pid


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
        epilog="`runtimed COMMAND --help` describes a command, with examples.",
    )
    parser.add_argument("--version", action="version", version=f"runtimed {__version__}")
    parser.add_argument(
        "--socket", type=Path, default=None, help=f"socket path (default {default_socket_path()})"
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    # Global options work after the subcommand too: `runtimed serve --socket X`.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--socket", type=Path, default=argparse.SUPPRESS, help="socket path")
    # Commands that need a daemon start one when none answers (`runtimed start`).
    autostarts = argparse.ArgumentParser(add_help=False, parents=[common])
    autostarts.add_argument(
        "--no-autostart",
        dest="autostart",
        action="store_false",
        help="fail instead of starting a daemon when none is running",
    )
    creates = argparse.ArgumentParser(add_help=False)
    creates.add_argument(
        "--create",
        action="store_true",
        help="create the notebook when it does not exist (else that is an error)",
    )

    def command(name: str, summary: str, examples: str, *parents: argparse.ArgumentParser):
        return sub.add_parser(
            name,
            parents=list(parents) or [common],
            help=summary,
            description=summary[:1].upper() + summary[1:] + ".",
            epilog="examples:\n" + examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    daemon_options = argparse.ArgumentParser(add_help=False, parents=[common])
    daemon_options.add_argument(
        "--data-dir", type=Path, default=None, help=f"default {default_data_dir()}"
    )
    daemon_options.add_argument(
        "--ws",
        type=ws_address,
        default=None,
        metavar="HOST:PORT",
        help="also serve browsers: WebSocket + notebook page (e.g. 127.0.0.1:8765)",
    )
    daemon_options.add_argument(
        "--no-autosave",
        dest="autosave",
        action="store_false",
        help="do not write notebooks' .ipynb files on their own (only on a `save` request)",
    )
    daemon_options.add_argument(
        "--gateway-url",
        default=None,
        metavar="URL",
        help="launch kernels on this Kernel Gateway, e.g. Jupyter Enterprise Gateway "
        "(default $RUNTIMED_GATEWAY_URL; docs/remote-kernels.md)",
    )
    daemon_options.add_argument(
        "--gateway-token",
        default=None,
        metavar="TOKEN",
        help="the gateway's token (default $RUNTIMED_GATEWAY_TOKEN, which keeps it out of ps)",
    )

    serve = command(
        "serve",
        "run the daemon in the foreground",
        "  runtimed serve\n  runtimed serve --ws 127.0.0.1:8765 --log-level debug",
        daemon_options,
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--log-format", default="console", choices=["console", "json"])
    serve.add_argument(
        "--log-file", type=Path, default=None, help="log to this file (rotated) instead of stderr"
    )
    # Settings() and not Settings: a slotted dataclass has no class-level defaults.
    serve.add_argument("--room-grace", type=float, default=Settings().room_grace)
    serve.add_argument(
        "--ws-allow-remote", action="store_true", help="allow --ws on a non-loopback address"
    )
    serve.set_defaults(func=_serve)

    start = command(
        "start",
        "start the daemon in the background",
        "  runtimed start\n  runtimed start --ws 127.0.0.1:8765",
        daemon_options,
    )
    start.add_argument("--log-file", type=Path, default=None, help=f"default {default_log_path()}")
    start.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for it")
    start.set_defaults(func=_start)

    status = command(
        "status",
        "say whether the daemon runs, and what it holds",
        "  runtimed status\n  runtimed status --json",
    )
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)

    stop = command(
        "stop",
        "stop the daemon gracefully (notebooks saved, launched kernels shut down)",
        "  runtimed stop",
    )
    stop.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for it")
    stop.set_defaults(func=_stop)

    logs = command(
        "logs", "show the background daemon's log", "  runtimed logs -n 200\n  runtimed logs -f"
    )
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("-n", "--lines", type=int, default=50, help="how many last lines")
    logs.add_argument("--log-file", type=Path, default=None, help=f"default {default_log_path()}")
    logs.set_defaults(func=_logs)

    kernels = command(
        "kernels",
        "list running kernels that can be attached",
        "  runtimed kernels\n  runtimed kernels --json",
    )
    kernels.add_argument("--json", action="store_true")
    kernels.add_argument("--timeout", type=float, default=2.0, help="seconds to wait per kernel")
    kernels.set_defaults(func=_kernels)

    attach = command(
        "attach",
        "bridge a running kernel into a notebook room",
        "  runtimed attach kernel-5f1c.json --notebook analysis.ipynb\n"
        "  runtimed attach 5f1c --notebook scratch --create --replace",
        autostarts,
        creates,
    )
    attach.add_argument("connection_file", help="a kernel connection file: path, name or kernel id")
    attach.add_argument("--notebook", required=True, help="notebook id or .ipynb path")
    attach.add_argument(
        "--replace",
        action="store_true",
        help="shut down a kernel the notebook launched, to attach this one instead",
    )
    attach.set_defaults(func=_attach)

    service = command(
        "service",
        "a systemd user unit that runs the daemon at login",
        "  runtimed service install\n  runtimed service uninstall",
    )
    service_sub = service.add_subparsers(title="actions", metavar="ACTION", required=True)
    install = service_sub.add_parser(
        "install", parents=[common], help="write the unit file", description="Write the unit."
    )
    install.add_argument(
        "--data-dir", type=Path, default=None, help=f"default {default_data_dir()}"
    )
    install.set_defaults(func=_service_install)
    uninstall = service_sub.add_parser(
        "uninstall", parents=[common], help="remove the unit file", description="Remove it."
    )
    uninstall.set_defaults(func=_service_uninstall)

    ls = command(
        "ls",
        "list open notebook rooms (--stored: the stored copies in the data dir)",
        "  runtimed ls\n  runtimed ls --stored",
        autostarts,
    )
    ls.add_argument("--json", action="store_true")
    ls.add_argument(
        "--stored", action="store_true", help="list stored copies with their paths and sizes"
    )
    ls.set_defaults(func=_ls)

    forget = command(
        "forget",
        "delete a notebook's stored copy (never its .ipynb); refused while it is open",
        "  runtimed forget analysis.ipynb\n  runtimed forget scratch",
        autostarts,
    )
    forget.add_argument("notebook", help="notebook id or .ipynb path (as `ls --stored` shows)")
    forget.set_defaults(func=_forget)

    gc = command(
        "gc",
        "delete stored blobs that no notebook refers to",
        "  runtimed gc\n  runtimed gc --min-age 0 --drop-missing",
        autostarts,
    )
    gc.add_argument(
        "--min-age",
        type=float,
        default=3600.0,
        help="keep blobs younger than this many seconds (default 3600)",
    )
    gc.add_argument(
        "--drop-missing",
        action="store_true",
        help="also forget the stored copies of notebooks whose .ipynb is gone",
    )
    gc.set_defaults(func=_gc)

    cat = command(
        "cat",
        "print a notebook's cells, outputs and widget values",
        "  runtimed cat analysis.ipynb\n  runtimed cat analysis.ipynb --json",
        autostarts,
        creates,
    )
    cat.add_argument("notebook", help="notebook id (an .ipynb path is made absolute)")
    cat.add_argument("--json", action="store_true", help="the raw doc as JSON")
    cat.set_defaults(func=_cat)

    trust = command(
        "trust",
        "trust a notebook's outputs, as `jupyter trust` does",
        "  runtimed trust analysis.ipynb",
        autostarts,
    )
    trust.add_argument("notebook", help="an .ipynb path")
    trust.set_defaults(func=_trust)

    watch = command(
        "watch",
        "print a notebook's live events until Ctrl+C",
        "  runtimed watch analysis.ipynb\n  runtimed watch demo.ipynb --create",
        autostarts,
        creates,
    )
    watch.add_argument("notebook", help="notebook id or .ipynb path")
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
    from .daemon.room_requests import gateway_target
    from .daemon.server import DaemonAlreadyRunning, run_daemon
    from .daemon.websocket import WebListenerError, page_url, read_token
    from .kernel import KernelError

    configure_logging(args.log_level, args.log_format, log_file=args.log_file)
    settings = Settings(
        socket_path=args.socket or default_socket_path(),
        data_dir=args.data_dir or default_data_dir(),
        room_grace=args.room_grace,
        ws=args.ws,
        ws_allow_remote=args.ws_allow_remote,
        autosave=args.autosave,
        **_gateway_settings(args),
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
        gateway_target(settings)  # a bad --gateway-url stops the start, not each launch
        asyncio.run(run_daemon(settings, ready))
    except (DaemonAlreadyRunning, WebListenerError, UnsafePathError, KernelError) as exc:
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
        create=getattr(args, "create", False),
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


def _gateway_settings(args: argparse.Namespace) -> dict[str, Any]:
    """--gateway-url/--gateway-token over the environment's defaults (Settings')."""
    overrides = {"gateway_url": args.gateway_url, "gateway_token": args.gateway_token}
    return {key: value for key, value in overrides.items() if value}


def _start(args: argparse.Namespace) -> int:
    from .service.background import start_daemon

    log_file = args.log_file or default_log_path()
    serve_args = ["--ws", f"{args.ws[0]}:{args.ws[1]}"] if args.ws else []
    if not args.autosave:
        serve_args.append("--no-autosave")
    if args.gateway_url:
        serve_args += ["--gateway-url", args.gateway_url]
    if args.gateway_token:  # inherited through the environment, never on the command line
        os.environ["RUNTIMED_GATEWAY_TOKEN"] = args.gateway_token
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
        from .daemon.websocket import page_url, read_token

        token = read_token(token_path(_socket(args)))
        print(f"page:     {page_url(*args.ws, token)}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from .service.background import probe

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
    web = info.get("web")
    if web:
        from .daemon.websocket import page_url, read_token

        print(
            f"page:     {page_url(web['host'], web['port'], read_token(token_path(socket_path)))}"
        )
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
    from .service.background import stop_daemon

    info = stop_daemon(_socket(args), timeout=args.timeout)
    if info is None:
        print("runtimed is not running")
        return 0
    attached = [k for k in info["kernels"] if k.get("attached")]
    closed = len(info["kernels"]) - len(attached)
    line = (
        f"runtimed (pid {info['pid']}) stopped: {len(info['rooms'])} room(s) saved, "
        f"{closed} kernel(s) shut down"
    )
    if attached:
        line += f", {len(attached)} attached kernel(s) left running"
    print(line)
    for kernel in attached:
        print(f"  left running: {kernel['kernel_name'] or '-'} ({kernel['notebook_id']})")
    return 0


def _logs(args: argparse.Namespace) -> int:
    from .service.background import follow, tail

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
    from .kernel.connection_files import find_kernels, runtime_dir

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
    from .kernel.connection_files import resolve

    try:
        connection_file = resolve(args.connection_file)
    except FileNotFoundError as exc:
        print(f"runtimed: {exc}", file=sys.stderr)
        return 1
    notebook_id, path = notebook_ref(args.notebook)
    _require_known(args, notebook_id, path)

    async def go() -> dict[str, Any]:
        async with _connected(args, notebook_id, path=path) as client:
            return await client.request(
                "attach_kernel", connection_file=str(connection_file), replace=args.replace
            )

    result = asyncio.run(go())
    kernel = result.get("kernel_name") or "kernel"
    print(f"attached {connection_file.name} ({kernel}, {result['status']}) to {notebook_id}")
    return 0


def _service_install(args: argparse.Namespace) -> int:
    from .service.systemd import UNIT_NAME, install

    path = install(_socket(args), args.data_dir or default_data_dir())
    print(f"wrote {path}")
    print("to start it now and at every login (stop one from `runtimed start` first):")
    print("  systemctl --user daemon-reload")
    print(f"  systemctl --user enable --now {UNIT_NAME}")
    print(f"its log: journalctl --user -u {UNIT_NAME} -f")
    return 0


def _service_uninstall(args: argparse.Namespace) -> int:
    from .service.systemd import UNIT_NAME, uninstall, unit_path

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
    if args.stored:
        copies = _control(args, "list_stored")["stored"]
        print(json.dumps(copies, indent=2) if args.json else format_stored(copies))
        return 0
    rooms = _control(args, "list_rooms")["rooms"]
    if args.json:
        print(json.dumps(rooms, indent=2))
    else:
        _print_rooms(rooms)
    return 0


def _gc(args: argparse.Namespace) -> int:
    async def go() -> dict[str, Any]:
        async with _connected(args) as client:
            return await client.request("gc", min_age=args.min_age, drop_missing=args.drop_missing)

    report = asyncio.run(go())
    for notebook_id in report.get("stored_dropped", []):
        print(f"forgot the stored copy of {notebook_id} (its file is gone)")
    print(
        f"{report['notebooks']} notebook(s) read: {report['blobs_deleted']} blob(s) deleted "
        f"({report['bytes_freed']} bytes), {report['blobs_kept']} kept, "
        f"{report['temp_files_deleted']} stale temp file(s) removed"
    )
    return 0


def _forget(args: argparse.Namespace) -> int:
    notebook_id, _path = notebook_ref(args.notebook)

    async def go() -> dict[str, Any]:
        async with _connected(args) as client:
            return await client.request("forget", notebook_id=notebook_id)

    result = asyncio.run(go())
    print(f"forgot the stored copy of {notebook_id} ({result['bytes_freed']} bytes)")
    return 0


def _require_known(args: argparse.Namespace, notebook_id: str, path: str | None) -> None:
    """A bare name that is neither open nor stored is a typo, unless --create says not.
    (A path is checked by the daemon: it must exist.)"""
    if path is not None or args.create:
        return

    async def go() -> bool:
        async with _connected(args) as client:
            rooms = (await client.request("list_rooms"))["rooms"]
            copies = (await client.request("list_stored"))["stored"]
        return any(r["notebook_id"] == notebook_id for r in [*rooms, *copies])

    if not asyncio.run(go()):
        raise ClientError(
            "no_such_notebook",
            f"no notebook {notebook_id!r} is open or stored (a file? give its path, ending "
            "in .ipynb; a new untitled notebook? add --create)",
        )


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
    save = room.get("save_state")
    if save:
        line += f" {save['state']}" + (f": {save['reason']}" if save.get("reason") else "")
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
    _require_known(args, notebook_id, path)

    async def go() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        async with _connected(args, notebook_id, path=path) as client:
            view = client.doc.to_json()
            entries = [entry for cell in view["cells"] for entry in cell["outputs"]]
            outputs = {} if args.json else {e: await _output(client, e) for e in entries}
            return view, outputs

    view, outputs = asyncio.run(go())
    if args.json:
        print(json.dumps(view, indent=2, ensure_ascii=False))
        return 0
    print(format_notebook(view, outputs))
    return 0


async def _output(client: Client, entry: str) -> dict[str, Any]:
    """A doc output entry as nbformat: inline JSON, or a manifest fetched by hash."""
    try:
        if not entry.startswith("{"):
            entry = base64.b64decode((await client.request("get_blob", hash=entry))["data"])
        output = json.loads(entry)
        if output.get("output_type") == "stream" and isinstance(output.get("text"), list):
            parts = []
            for part in output["text"]:
                if isinstance(part, dict):
                    blob = await client.request("get_blob", hash=part["$blob"])
                    part = json.loads(base64.b64decode(blob["data"]))
                parts.append(part)
            output["text"] = "".join(parts)
        return output
    except (ClientError, ValueError) as exc:
        return {"output_type": "stream", "text": f"[output unavailable: {exc}]"}


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


def _watch(args: argparse.Namespace) -> int:
    notebook_id, path = notebook_ref(args.notebook)
    _require_known(args, notebook_id, path)

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
