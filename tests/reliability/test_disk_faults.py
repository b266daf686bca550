"""The disk fails under the daemon: full (ENOSPC) or read-only (EROFS), for real.

The data directory sits on a small tmpfs of its own, which the test fills up or
remounts read-only (the tests run as root, as they must to mount). A save that fails
leaves the previous file intact, is logged and broadcast as `save_failed`, and is
retried until the disk takes it again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

from notebook_doc import NotebookDoc, doc_filename
from runtimed.client import Client
from runtimed.config import Settings
from tests.bridge.helpers import assert_doc_matches_comm_state, run, run_cell
from tests.conftest import RunningDaemon, eventually

NOTEBOOK = "nb-disk"


class SmallDisk:
    """A 4 MiB tmpfs that can be filled to the last byte or made read-only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._filler = root / "filler"

    def fill(self) -> None:
        with self._filler.open("ab", buffering=0) as filler:
            for size in (65536, 1):  # big blocks, then the last partial block byte by byte
                with contextlib.suppress(OSError):
                    while True:
                        filler.write(b"\0" * size)

    def free(self) -> None:
        self._filler.unlink()

    def remount(self, mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.root)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    root = tmp_path / "disk"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(root)], check=True)
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=True)


@pytest.fixture
async def running(settings: Settings, small_disk: SmallDisk) -> AsyncIterator[RunningDaemon]:
    handle = RunningDaemon(dataclasses.replace(settings, data_dir=small_disk.root / "data"))
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


def saved_sources(settings: Settings) -> list[str] | None:
    path = settings.docs_dir / doc_filename(NOTEBOOK)
    if not path.exists():
        return None
    data = path.read_bytes()
    return [cell.source for cell in NotebookDoc.load(data).get_cells()]


async def add_and_sync(client: Client, source: str) -> None:
    client.doc.add_cell(source=source)
    await client.wait_synced()


def save_errors(client: Client) -> list[str]:
    return [
        e.fields["message"]
        for e in client.broadcasts
        if e.event == "error" and e.fields.get("code") == "save_failed"
    ]


@pytest.mark.parametrize(
    ("fault", "strerror"),
    [("full", "No space left on device"), ("read-only", "Read-only file system")],
)
async def test_a_failed_save_keeps_the_old_file_says_so_and_retries(
    running: RunningDaemon, small_disk: SmallDisk, fault: str, strerror: str
) -> None:
    settings = running.settings
    async with running.client(NOTEBOOK) as client:
        await add_and_sync(client, "before")
        await eventually(lambda: saved_sources(settings) == ["before"], what="first save")
        good = (settings.docs_dir / doc_filename(NOTEBOOK)).read_bytes()

        if fault == "full":
            small_disk.fill()
        else:
            small_disk.remount("ro")
        with structlog.testing.capture_logs() as logs:
            await add_and_sync(client, "during")
            await client.wait_for(lambda c: save_errors(c), what="save_failed broadcast")
        assert strerror in save_errors(client)[0]
        assert doc_filename(NOTEBOOK) in save_errors(client)[0]
        assert any(line["event"] == "save_failed" for line in logs)
        # The previous file is whole, and no temp file is left behind.
        assert (settings.docs_dir / doc_filename(NOTEBOOK)).read_bytes() == good
        assert sorted(p.name for p in settings.docs_dir.iterdir()) == [doc_filename(NOTEBOOK)]
        # Editing goes on while the disk is bad.
        await add_and_sync(client, "still editing")

        if fault == "full":
            small_disk.free()
        else:
            small_disk.remount("rw")
        await eventually(
            lambda: saved_sources(settings) == ["before", "during", "still editing"],
            what="the retried save",
        )


@pytest.mark.kernel
async def test_a_full_disk_while_a_kernel_writes_big_outputs_and_widgets(
    running: RunningDaemon, small_disk: SmallDisk
) -> None:
    """Outputs and big widget values go to the blob store: when it cannot write, an
    output stays inline in the doc, a widget waits in CommState, and nothing stalls."""
    async with running.client(NOTEBOOK) as client:
        await client.request("launch_kernel")
        small_disk.fill()
        big = "x" * 5000  # above the 1 KiB inline limit: normally a blob manifest
        assert await run_cell(client, f"print('{big}')") == [
            {"output_type": "stream", "name": "stdout", "text": big + "\n"}
        ]
        await run(client, "from ipywidgets import Text\nt = Text(value='y' * 100_000)")
        await client.wait_for(
            lambda c: any(e.fields.get("code") == "storage_failed" for e in c.broadcasts),
            what="storage_failed broadcast",
        )
        assert len((await client.request("get_comms"))["comms"]) == 3  # CommState has it

        small_disk.free()
        await assert_doc_matches_comm_state(client, client)
        outputs = await run_cell(client, "print('z' * 5000)")
        assert outputs == [{"output_type": "stream", "name": "stdout", "text": "z" * 5000 + "\n"}]
        await client.request("shutdown_kernel")
