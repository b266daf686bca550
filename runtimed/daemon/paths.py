"""The one check of a client-given notebook path (a hello's `path`, a `save` target)."""

from __future__ import annotations

from pathlib import Path

from ..errors import RequestFailed


def checked_ipynb_path(raw: str | Path) -> Path:
    """An absolute `.ipynb` path in a directory that exists, a file if it exists itself.
    Anything else is `bad_path`, with the reason (and the file system's)."""
    path = Path(raw).expanduser()
    shown = str(raw) if len(str(raw)) <= 200 else str(raw)[:200] + "…"
    if not path.is_absolute():
        raise RequestFailed("bad_path", f"notebook path {shown!r} must be absolute")
    if path.suffix != ".ipynb":
        raise RequestFailed("bad_path", f"notebook path {shown!r} does not end in .ipynb")
    try:
        if path.exists() and not path.is_file():
            raise RequestFailed("bad_path", f"notebook path {shown!r} is not a file")
        if not path.parent.is_dir():
            directory = str(path.parent)
            raise RequestFailed(
                "bad_path", f"notebook path {shown!r}: directory {directory!r} does not exist"
            )
    except OSError as exc:  # too long for the file system, say
        raise RequestFailed("bad_path", f"notebook path {shown!r}: {exc.strerror}") from None
    return path
