"""`runtimed kernels` and `runtimed attach`: bridge a kernel that someone else started."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import AsyncKernelManager

from runtimed.client import Client
from tests.bridge.helpers import doc_comms, run_cell
from tests.service.conftest import Service

pytestmark = pytest.mark.kernel


def sliders(comms: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [comm for comm in comms if comm["model_name"] == "IntSliderModel"]


@pytest.fixture
async def outside_kernel(service: Service) -> AsyncIterator[AsyncKernelManager]:
    """An ipykernel started by plain jupyter_client, its connection file in Jupyter's
    runtime directory, the way JupyterLab and `jupyter console` leave theirs."""
    connection_file = service.runtime_dir / f"kernel-{uuid.uuid4()}.json"
    manager = AsyncKernelManager(kernel_name="python3", connection_file=str(connection_file))
    await manager.start_kernel()
    try:
        yield manager
    finally:
        await manager.shutdown_kernel(now=True)


async def test_attach_a_kernel_found_by_runtimed_kernels(
    service: Service, outside_kernel: AsyncKernelManager
) -> None:
    # A connection file whose kernel is gone: nothing listens on its ports.
    info = json.loads(Path(outside_kernel.connection_file).read_text())
    info.update({port: 1 for port in ("shell_port", "iopub_port", "control_port", "hb_port")})
    dead = service.runtime_dir / "kernel-gone.json"
    dead.write_text(json.dumps(info))

    # Both listings at once: each waits out the dead file's probe timeout (2 s).
    as_json, as_text = await asyncio.gather(
        asyncio.to_thread(service.cli, "kernels", "--json"),
        asyncio.to_thread(service.cli, "kernels"),
    )
    by_path = {entry["path"]: entry for entry in json.loads(as_json.stdout)}
    live = by_path[outside_kernel.connection_file]
    assert live["answers"] is True
    assert live["kernel_name"] == "python3"
    assert "python" in live["detail"]
    assert by_path[str(dead)]["answers"] is False
    assert "kernel-gone.json  python3  no answer: no reply within 2 s" in as_text.stdout

    # No daemon runs yet: `attach` starts one, then bridges the kernel into the room.
    attach = await asyncio.to_thread(
        service.cli, "attach", live["path"], "--notebook", "attached-nb", "--create"
    )
    assert "started (pid" in attach.stderr
    assert f"attached {Path(outside_kernel.connection_file).name}" in attach.stdout
    assert re.search(r"\(python3, (idle|busy)\) to attached-nb", attach.stdout)

    async with Client("attached-nb", socket_path=service.socket) as client:
        assert client.kernel_status in ("idle", "busy")  # attached: not "none"
        outputs = await run_cell(client, "import os; print('hello from', os.getpid())")
        assert outputs[0]["text"] == f"hello from {outside_kernel.provisioner.pid}\n"
        await run_cell(client, "import ipywidgets as w; s = w.IntSlider(value=7); s")
        await client.wait_for(lambda c: sliders(doc_comms(c).values()), 30, "the slider's comm")
        assert [c["state"]["value"] for c in sliders(doc_comms(client).values())] == [7]
        legacy = (await client.request("get_comms"))["comms"]
        assert [c["state"]["value"] for c in sliders(legacy)] == [7]

        status = json.loads((await asyncio.to_thread(service.cli, "status", "--json")).stdout)
        assert status["kernels"] == [
            {
                "notebook_id": "attached-nb",
                "kernel_name": "python3",
                "status": "idle",
                "connection_file": live["path"],
                "attached": True,
            }
        ]

        # One kernel, one room: a second notebook cannot bridge it too.
        again = await asyncio.to_thread(
            service.cli, "attach", live["path"], "--notebook", "other-nb", "--create", check=False
        )
        assert again.returncode == 1
        assert "already bridged into attached-nb" in again.stderr

    # Stopping the daemon releases an attached kernel; it does not kill it, and says so.
    stop = await asyncio.to_thread(service.cli, "stop")
    assert "1 attached kernel(s) left running" in stop.stdout
    assert "left running: python3 (attached-nb)" in stop.stdout
    assert await outside_kernel.is_alive()


async def test_attach_warns_before_replacing_a_launched_kernel(
    service: Service, outside_kernel: AsyncKernelManager
) -> None:
    await asyncio.to_thread(service.cli, "start")
    async with Client("launched-nb", socket_path=service.socket, create=True) as client:
        await client.request("launch_kernel")
        refused = await asyncio.to_thread(
            service.cli,
            "attach",
            outside_kernel.connection_file,
            "--notebook",
            "launched-nb",
            check=False,
        )
        assert refused.returncode == 1
        assert "runs a kernel it launched" in refused.stderr
        assert "--replace" in refused.stderr
        assert client.kernel_status == "idle"  # untouched
        replaced = await asyncio.to_thread(
            service.cli,
            "attach",
            outside_kernel.connection_file,
            "--notebook",
            "launched-nb",
            "--replace",
        )
        assert "to launched-nb" in replaced.stdout
        outputs = await run_cell(client, "import os; print(os.getpid())")
        assert outputs[0]["text"] == f"{outside_kernel.provisioner.pid}\n"
    await asyncio.to_thread(service.cli, "stop")


async def test_attach_by_kernel_id_and_a_missing_file(
    service: Service, outside_kernel: AsyncKernelManager
) -> None:
    kernel_id = outside_kernel.connection_file.rsplit("kernel-", 1)[1].removesuffix(".json")
    attach = await asyncio.to_thread(
        service.cli, "attach", kernel_id, "--notebook", "by-id", "--create"
    )
    assert re.search(r"\(python3, (idle|busy)\) to by-id", attach.stdout)

    missing = await asyncio.to_thread(
        service.cli, "attach", "no-such-kernel", "--notebook", "x", check=False
    )
    assert missing.returncode == 1
    assert "no connection file 'no-such-kernel'" in missing.stderr
    assert str(service.runtime_dir) in missing.stderr
