"""Kernel connection files: where ours go, reading one strictly, and finding the
kernels someone else started (JupyterLab, `jupyter console`, jupyter_client) in
Jupyter's runtime directory, each asked whether it answers.

A kernel's connection file outlives a kernel that crashed, so a file alone proves
nothing: each is sent a `kernel_info_request`, all at once, with a short deadline.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_core.paths import jupyter_runtime_dir

from .events import KernelError

KERNEL_INFO_TIMEOUT = 2.0
CONNECTION_KEYS = {
    "transport": str,
    "ip": str,
    "key": str,
    "signature_scheme": str,
    "shell_port": int,
    "iopub_port": int,
    "stdin_port": int,
    "control_port": int,
    "hb_port": int,
}


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


def load_connection_file(path: str) -> dict[str, Any]:
    """Read and check a kernel connection file; KernelError says what is wrong."""
    try:
        info = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise KernelError("bad_connection_file", f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KernelError("bad_connection_file", f"{path} is not readable JSON: {exc}") from None
    if not isinstance(info, dict):
        raise KernelError("bad_connection_file", f"{path} does not hold a JSON object")
    for key, kind in CONNECTION_KEYS.items():
        if isinstance(info.get(key), bool) or not isinstance(info.get(key), kind):
            raise KernelError(
                "bad_connection_file", f"{path}: {key!r} missing or not a {kind.__name__}"
            )
    return info


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
    found: list[KernelFile | None] = [None] * len(files)

    async def probe(index: int, path: Path) -> None:
        found[index] = await probe_kernel(path, timeout)

    async with anyio.create_task_group() as tg:
        for index, path in enumerate(files):
            tg.start_soon(probe, index, path)
    return [kernel for kernel in found if kernel is not None]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


async def probe_kernel(path: Path, timeout: float = KERNEL_INFO_TIMEOUT) -> KernelFile:
    """Read one connection file (as `attach` would) and ask its kernel for kernel_info."""
    try:
        info = load_connection_file(str(path))
    except KernelError as exc:
        return KernelFile(str(path), "", False, f"unreadable connection file: {exc.message}")
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
        with anyio.fail_after(timeout):
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
