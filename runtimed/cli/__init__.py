"""`runtimed`: run the daemon and look into it, using only the public client API.

`parser.py` declares the commands; `daemon_commands`, `kernel_commands` and
`notebook_commands` run them, reaching the daemon through `connect.py`; `view.py`
formats what they print.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..client import ClientError
from ..private_files import UnsafePathError
from ..service.background import ServiceError
from .parser import build_parser

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
