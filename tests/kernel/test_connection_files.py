"""Connection files read one way, strictly, whether found by `runtimed kernels` or attached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtimed.kernel import KernelError
from runtimed.kernel.connection_files import find_kernels, load_connection_file


async def test_files_that_attach_would_refuse_are_listed_as_unreadable(tmp_path: Path) -> None:
    (tmp_path / "kernel-broken.json").write_text("{not json")
    (tmp_path / "kernel-partial.json").write_text(json.dumps({"ip": "127.0.0.1"}))
    found = {Path(k.path).name: k for k in await find_kernels(tmp_path, timeout=1)}
    assert set(found) == {"kernel-broken.json", "kernel-partial.json"}
    for name, kernel in found.items():
        assert not kernel.answers
        assert kernel.detail.startswith("unreadable connection file:")
        with pytest.raises(KernelError) as caught:
            load_connection_file(str(tmp_path / name))
        assert caught.value.code == "bad_connection_file"
        assert caught.value.message in kernel.detail
