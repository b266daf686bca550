"""The commands about notebooks: ls, forget, gc, cat, trust and watch."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from ..client import Client, ClientError
from .connect import connected, control, notebook_ref, require_known
from .view import format_notebook, format_stored, room_line


def ls(args: argparse.Namespace) -> int:
    if args.stored:
        copies = control(args, "list_stored")["stored"]
        print(json.dumps(copies, indent=2) if args.json else format_stored(copies))
        return 0
    rooms = control(args, "list_rooms")["rooms"]
    if args.json:
        print(json.dumps(rooms, indent=2))
    else:
        _print_rooms(rooms)
    return 0


def gc(args: argparse.Namespace) -> int:
    async def go() -> dict[str, Any]:
        async with connected(args) as client:
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


def forget(args: argparse.Namespace) -> int:
    notebook_id, _path = notebook_ref(args.notebook)

    async def go() -> dict[str, Any]:
        async with connected(args) as client:
            return await client.request("forget", notebook_id=notebook_id)

    result = asyncio.run(go())
    print(f"forgot the stored copy of {notebook_id} ({result['bytes_freed']} bytes)")
    return 0


def _print_rooms(rooms: list[dict[str, Any]]) -> None:
    if not rooms:
        print("no open rooms")
        return
    for room in rooms:
        print(room_line(room))


def cat(args: argparse.Namespace) -> int:
    notebook_id, path = notebook_ref(args.notebook)
    require_known(args, notebook_id, path)

    async def go() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        async with connected(args, notebook_id, path=path) as client:
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


def trust(args: argparse.Namespace) -> int:
    """Signs the notebook, as the daemon holds it, in runtimed's trust store."""
    notebook_id, path = notebook_ref(args.notebook)
    if path is None or not Path(path).is_file():
        print(f"runtimed: {args.notebook!r} is not an .ipynb file", file=sys.stderr)
        return 2

    async def go() -> dict[str, Any]:
        async with connected(args, notebook_id, path=path) as client:
            return await client.request("trust")

    asyncio.run(go())
    print(f"trusted {path}")
    return 0


def watch(args: argparse.Namespace) -> int:
    notebook_id, path = notebook_ref(args.notebook)
    require_known(args, notebook_id, path)

    async def go() -> None:
        async with connected(args, notebook_id, path=path, name="runtimed-watch") as client:
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
