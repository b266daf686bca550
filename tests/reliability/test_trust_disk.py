"""The trust store on a full disk: `trust` says what it could not keep, and keeps it later.

The data directory (with its trust store) sits on a small tmpfs the test fills, for real.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runtimed.client import ClientError
from tests.conftest import RunningDaemon
from tests.daemon.test_trust import hostile_notebook, trust_of
from tests.reliability import test_disk_faults
from tests.reliability.test_disk_faults import SmallDisk

small_disk = test_disk_faults.small_disk  # a 4 MiB tmpfs
running = test_disk_faults.running  # a daemon whose data dir is on it


async def test_trust_on_a_full_disk_holds_until_stop_and_is_stored_once_it_fits(
    running: RunningDaemon, small_disk: SmallDisk, tmp_path: Path
) -> None:
    path = str(hostile_notebook(tmp_path / "hostile.ipynb"))
    async with running.client(path, path=path) as client:
        assert trust_of(client)["trusted"] is False
        small_disk.fill()
        with pytest.raises(ClientError) as refused:
            await client.request("trust")
        assert refused.value.code == "trust_store_failed"
        assert (await client.request("trust_info"))["trusted"] is True  # for this daemon's life

        small_disk.free()  # the next save stores the signatures too
        client.doc.add_cell(source="a change to save")
        await client.wait_synced()
    await running.stop()
    await running.start()
    async with running.client(path, path=path) as client:
        assert trust_of(client)["trusted"] is True
