"""GET /files' listing: the working directory's notebooks, and nothing beyond them."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtimed import file_list
from runtimed.file_list import list_notebooks


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    return path


def test_only_notebooks_inside_the_root_and_not_too_deep(tmp_path: Path) -> None:
    root = tmp_path / "root"
    touch(root / "a.ipynb")
    touch(root / "one" / "two" / "three" / "deep.ipynb")  # three folders down: listed
    touch(root / "one" / "two" / "three" / "four" / "deeper.ipynb")  # too deep
    touch(root / ".git" / "x.ipynb")
    touch(root / "node_modules" / "pkg" / "y.ipynb")
    touch(root / ".hidden.ipynb")
    touch(root / "notes.md")
    touch(tmp_path / "outside.ipynb")
    (root / "link.ipynb").symlink_to(tmp_path / "outside.ipynb")
    (root / "linked-dir").symlink_to(tmp_path)
    listing = list_notebooks(root)
    assert [f["name"] for f in listing["files"]] == ["a.ipynb", "one/two/three/deep.ipynb"]
    assert listing["root"] == str(root.resolve())
    assert listing["truncated"] is False
    first = listing["files"][0]
    assert first["path"] == str(root.resolve() / "a.ipynb")
    assert first["size"] == 2


def test_a_big_tree_is_cut_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_list, "MAX_FILES", 3)
    for i in range(5):
        touch(tmp_path / f"n{i}.ipynb")
    listing = list_notebooks(tmp_path)
    assert [f["name"] for f in listing["files"]] == ["n0.ipynb", "n1.ipynb", "n2.ipynb"]
    assert listing["truncated"] is True
