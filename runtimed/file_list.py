"""The notebooks a page may open: `.ipynb` files under the daemon's working directory.

Served as `GET /files?token=...` on the WebSocket listener (docs/protocol.md). Only
the working directory's own tree is walked: hidden folders, symlinks and anything
resolving outside it are skipped, the depth and the count are capped, so the listing
is small and reveals nothing beyond what `ls` in that folder shows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

MAX_DEPTH: Final = 3
MAX_FILES: Final = 500
_SKIPPED_DIRS: Final = frozenset({"node_modules", "__pycache__", "site-packages"})


def list_notebooks(root: Path) -> dict[str, Any]:
    """`{root, files: [{path, name, size, mtime}], truncated}`; `path` is absolute (a room id)."""
    root = root.resolve()
    files: list[dict[str, Any]] = []
    truncated = False
    for folder, dirs, names in os.walk(root, followlinks=False):
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and d not in _SKIPPED_DIRS and depth < MAX_DEPTH
        )
        for name in sorted(names):
            if not name.endswith(".ipynb") or name.startswith("."):
                continue
            path = here / name
            if path.is_symlink() or not path.resolve().is_relative_to(root):
                continue
            if len(files) == MAX_FILES:
                truncated = True
                break
            try:
                stat = path.stat()
            except OSError:
                continue  # gone or unreadable since the walk saw it
            files.append(
                {
                    "path": str(path),
                    "name": str(path.relative_to(root)),
                    "size": stat.st_size,
                    "mtime": stat.st_mtime,
                }
            )
        if truncated:
            break
    return {"root": str(root), "files": files, "truncated": truncated}
