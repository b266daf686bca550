"""The commands that run the daemon and look at it: serve, start, status, stop, logs, service."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from typing import Any

from .. import __version__
from ..config import (
    Settings,
    default_data_dir,
    default_log_path,
    default_socket_path,
    lock_path,
    token_path,
)
from ..log import configure_logging
from ..private_files import UnsafePathError
from ..service.lock import holder_pid
from .connect import daemon_socket
from .view import age, room_line


def serve(args: argparse.Namespace) -> int:
    from ..daemon.room_requests import gateway_target
    from ..daemon.server import DaemonAlreadyRunning, run_daemon
    from ..daemon.web_token import page_url, read_token
    from ..daemon.websocket import WebListenerError
    from ..kernel import KernelError

    configure_logging(
        args.log_level,
        args.log_format,
        log_file=args.log_file,
        repeat_interval=args.log_repeat_interval,
    )
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


def _gateway_settings(args: argparse.Namespace) -> dict[str, Any]:
    """--gateway-url/--gateway-token over the environment's defaults (Settings')."""
    overrides = {"gateway_url": args.gateway_url, "gateway_token": args.gateway_token}
    return {key: value for key, value in overrides.items() if value}


def start(args: argparse.Namespace) -> int:
    from ..service.background import start_daemon

    log_file = args.log_file or default_log_path()
    serve_args = ["--ws", f"{args.ws[0]}:{args.ws[1]}"] if args.ws else []
    if not args.autosave:
        serve_args.append("--no-autosave")
    if args.gateway_url:
        serve_args += ["--gateway-url", args.gateway_url]
    if args.gateway_token:  # inherited through the environment, never on the command line
        os.environ["RUNTIMED_GATEWAY_TOKEN"] = args.gateway_token
    started = start_daemon(
        daemon_socket(args),
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
        from ..daemon.web_token import page_url, read_token

        token = read_token(token_path(daemon_socket(args)))
        print(f"page:     {page_url(*args.ws, token)}")
    return 0


def status(args: argparse.Namespace) -> int:
    from ..service.background import probe

    socket_path = daemon_socket(args)
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
    print(f"runtimed {info['version']} is running (pid {info['pid']}), up {age(info['uptime'])}")
    print(f"socket:   {info['socket']}")
    print(f"data dir: {info['data_dir']}")
    web = info.get("web")
    if web:
        from ..daemon.web_token import page_url, read_token

        print(
            f"page:     {page_url(web['host'], web['port'], read_token(token_path(socket_path)))}"
        )
    print(f"rooms:    {len(info['rooms'])}")
    for room in info["rooms"]:
        print(f"  {room_line(room)}")
    print(f"kernels:  {len(info['kernels'])}")
    for kernel in info["kernels"]:
        print(f"  {kernel['kernel_name'] or '-'} ({kernel['status']})  {kernel['notebook_id']}")
        if kernel.get("connection_file"):
            print(f"    connection file: {kernel['connection_file']}")
    return 0


def stop(args: argparse.Namespace) -> int:
    from ..service.background import stop_daemon

    info = stop_daemon(daemon_socket(args), timeout=args.timeout)
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


def logs(args: argparse.Namespace) -> int:
    from ..service.background import follow, tail

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


def service_install(args: argparse.Namespace) -> int:
    from ..service.systemd import UNIT_NAME, install

    path = install(daemon_socket(args), args.data_dir or default_data_dir())
    print(f"wrote {path}")
    print("to start it now and at every login (stop one from `runtimed start` first):")
    print("  systemctl --user daemon-reload")
    print(f"  systemctl --user enable --now {UNIT_NAME}")
    print(f"its log: journalctl --user -u {UNIT_NAME} -f")
    return 0


def service_uninstall(args: argparse.Namespace) -> int:
    from ..service.systemd import UNIT_NAME, uninstall, unit_path

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
