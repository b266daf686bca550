"""Kernels someone else started (JupyterLab, `jupyter console`, jupyter_client), found by
their connection files in Jupyter's runtime directory, each asked whether it answers.

A kernel's connection file outlives a kernel that crashed, so a file alone proves
nothing: each is sent a `kernel_info_request`, all at once, with a short deadline.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_core.paths import jupyter_runtime_dir

KERNEL_INFO_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class KernelFile:
    path: str
    kernel_name: str  # from the file; empty when whoever wrote it did not say
    answers: bool
    detail: str  # implementation and language when it answers, else why not

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def runtime_dir() -> Path:
    """Jupyter's runtime directory ($JUPYTER_RUNTIME_DIR, else the platform default)."""
    return Path(jupyter_runtime_dir())


def runtime_connection_file(kernel_id: str) -> Path:
    """Where a kernel the daemon launches keeps its connection file: `kernel-<id>.json`
    in Jupyter's runtime dir, so `jupyter console --existing` and other front ends find
    it. jupyter_client writes it 0600 and removes it when the kernel shuts down."""
    directory = runtime_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory / f"kernel-{kernel_id}.json"


def resolve(ref: str, directory: Path | None = None) -> Path:
    """A connection file from a path, a file name in the runtime dir, or a kernel id
    (as `jupyter console --existing` takes them); FileNotFoundError says where we looked."""
    directory = directory or runtime_dir()
    candidates = [Path(ref).expanduser(), directory / ref, directory / f"kernel-{ref}.json"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(
        f"no connection file {ref!r} (looked for a path, and in {directory}); "
        "`runtimed kernels` lists the ones there"
    )


async def find_kernels(
    directory: Path | None = None, timeout: float = KERNEL_INFO_TIMEOUT
) -> list[KernelFile]:
    """Every `kernel-*.json` in the runtime dir, newest first, probed in parallel."""
    directory = directory or runtime_dir()
    files = sorted(directory.glob("kernel-*.json"), key=_mtime, reverse=True)
    return list(await asyncio.gather(*(probe_kernel(path, timeout) for path in files)))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


async def probe_kernel(path: Path, timeout: float = KERNEL_INFO_TIMEOUT) -> KernelFile:
    """Read one connection file and ask its kernel for kernel_info."""
    try:
        info = json.loads(path.read_text())
        if not isinstance(info, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        return KernelFile(str(path), "", False, f"unreadable connection file: {exc}")
    name = info.get("kernel_name")
    kernel_name = name if isinstance(name, str) else ""
    try:
        content = await _kernel_info(info, timeout)
    except TimeoutError:
        return KernelFile(str(path), kernel_name, False, f"no reply within {timeout:g} s")
    except Exception as exc:  # a malformed file fails inside jupyter_client in many ways
        return KernelFile(str(path), kernel_name, False, f"{type(exc).__name__}: {exc}")
    return KernelFile(str(path), kernel_name, True, _describe(content))


async def _kernel_info(info: dict[str, Any], timeout: float) -> dict[str, Any]:
    context = zmq.asyncio.Context()
    client = AsyncKernelClient(context=context)
    try:
        client.load_connection_info(info)
        client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        msg_id = client.kernel_info()
        async with asyncio.timeout(timeout):
            while True:
                reply = await client.get_shell_msg()
                if reply["parent_header"].get("msg_id") == msg_id:
                    return reply["content"]
    finally:
        client.stop_channels()
        context.destroy(linger=0)


def _describe(content: dict[str, Any]) -> str:
    language = content.get("language_info") or {}
    parts = [
        str(content.get("implementation", "")),
        str(language.get("name", "")),
        str(language.get("version", "")),
    ]
    return " ".join(part for part in parts if part) or "kernel"
