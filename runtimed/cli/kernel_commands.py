"""The commands about kernels: list the running ones, attach one to a notebook."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from .connect import connected, notebook_ref, require_known


def kernels(args: argparse.Namespace) -> int:
    from ..kernel.connection_files import find_kernels, runtime_dir

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


def attach(args: argparse.Namespace) -> int:
    from ..kernel.connection_files import resolve

    try:
        connection_file = resolve(args.connection_file)
    except FileNotFoundError as exc:
        print(f"runtimed: {exc}", file=sys.stderr)
        return 1
    notebook_id, path = notebook_ref(args.notebook)
    require_known(args, notebook_id, path)

    async def go() -> dict[str, Any]:
        async with connected(args, notebook_id, path=path) as client:
            return await client.request(
                "attach_kernel", connection_file=str(connection_file), replace=args.replace
            )

    result = asyncio.run(go())
    kernel = result.get("kernel_name") or "kernel"
    print(f"attached {connection_file.name} ({kernel}, {result['status']}) to {notebook_id}")
    return 0
