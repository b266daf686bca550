"""The `runtimed` command line: every command, its options and its examples."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import __version__
from ..config import Settings, default_data_dir, default_log_path, default_socket_path
from ..log_safety import LOG_REPEAT_INTERVAL
from . import daemon_commands, kernel_commands, notebook_commands


def build_parser() -> argparse.ArgumentParser:
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
        "(default $RUNTIMED_GATEWAY_URL; docs/remote-gateway.md)",
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
    serve.add_argument(
        "--log-repeat-interval",
        type=float,
        default=LOG_REPEAT_INTERVAL,
        metavar="SECONDS",
        help="a library's line repeated within this many seconds (e.g. accept errors at the "
        "fd limit) is written once, then once per interval with how many were left out "
        "(default %(default)s)",
    )
    # Settings() and not Settings: a slotted dataclass has no class-level defaults.
    serve.add_argument("--room-grace", type=float, default=Settings().room_grace)
    serve.add_argument(
        "--ws-allow-remote", action="store_true", help="allow --ws on a non-loopback address"
    )
    serve.set_defaults(func=daemon_commands.serve)

    start = command(
        "start",
        "start the daemon in the background",
        "  runtimed start\n  runtimed start --ws 127.0.0.1:8765",
        daemon_options,
    )
    start.add_argument("--log-file", type=Path, default=None, help=f"default {default_log_path()}")
    start.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for it")
    start.set_defaults(func=daemon_commands.start)

    status = command(
        "status",
        "say whether the daemon runs, and what it holds",
        "  runtimed status\n  runtimed status --json",
    )
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=daemon_commands.status)

    stop = command(
        "stop",
        "stop the daemon gracefully (notebooks saved, launched kernels shut down)",
        "  runtimed stop",
    )
    stop.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for it")
    stop.set_defaults(func=daemon_commands.stop)

    logs = command(
        "logs", "show the background daemon's log", "  runtimed logs -n 200\n  runtimed logs -f"
    )
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("-n", "--lines", type=int, default=50, help="how many last lines")
    logs.add_argument("--log-file", type=Path, default=None, help=f"default {default_log_path()}")
    logs.set_defaults(func=daemon_commands.logs)

    kernels = command(
        "kernels",
        "list running kernels that can be attached",
        "  runtimed kernels\n  runtimed kernels --json",
    )
    kernels.add_argument("--json", action="store_true")
    kernels.add_argument("--timeout", type=float, default=2.0, help="seconds to wait per kernel")
    kernels.set_defaults(func=kernel_commands.kernels)

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
    attach.set_defaults(func=kernel_commands.attach)

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
    install.set_defaults(func=daemon_commands.service_install)
    uninstall = service_sub.add_parser(
        "uninstall", parents=[common], help="remove the unit file", description="Remove it."
    )
    uninstall.set_defaults(func=daemon_commands.service_uninstall)

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
    ls.set_defaults(func=notebook_commands.ls)

    forget = command(
        "forget",
        "delete a notebook's stored copy (never its .ipynb); refused while it is open",
        "  runtimed forget analysis.ipynb\n  runtimed forget scratch",
        autostarts,
    )
    forget.add_argument("notebook", help="notebook id or .ipynb path (as `ls --stored` shows)")
    forget.set_defaults(func=notebook_commands.forget)

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
    gc.set_defaults(func=notebook_commands.gc)

    cat = command(
        "cat",
        "print a notebook's cells, outputs and widget values",
        "  runtimed cat analysis.ipynb\n  runtimed cat analysis.ipynb --json",
        autostarts,
        creates,
    )
    cat.add_argument("notebook", help="notebook id (an .ipynb path is made absolute)")
    cat.add_argument("--json", action="store_true", help="the raw doc as JSON")
    cat.set_defaults(func=notebook_commands.cat)

    trust = command(
        "trust",
        "trust a notebook's outputs, as `jupyter trust` does",
        "  runtimed trust analysis.ipynb",
        autostarts,
    )
    trust.add_argument("notebook", help="an .ipynb path")
    trust.set_defaults(func=notebook_commands.trust)

    watch = command(
        "watch",
        "print a notebook's live events until Ctrl+C",
        "  runtimed watch analysis.ipynb\n  runtimed watch demo.ipynb --create",
        autostarts,
        creates,
    )
    watch.add_argument("notebook", help="notebook id or .ipynb path")
    watch.set_defaults(func=notebook_commands.watch)
    return parser


def ws_address(raw: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:PORT`) for `serve --ws`."""
    host, sep, port = raw.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as 127.0.0.1:8765, got {raw!r}")
    return host, int(port)
