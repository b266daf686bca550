"""A kernel the daemon launches is findable: its connection file is in Jupyter's runtime
dir, requests name it, and another front end that joins it works beside the daemon."""

from __future__ import annotations

import asyncio
import json
import stat
import sys
from pathlib import Path

import pytest

from tests.bridge.helpers import run_cell
from tests.conftest import RunningDaemon, eventually

# Another front end, in its own process: jupyter_client's BlockingKernelClient from the
# connection file. It prints its own execute_reply content and the stdout it received.
OTHER_FRONT_END = """
import json, sys
from jupyter_client import BlockingKernelClient
client = BlockingKernelClient()
client.load_connection_file(sys.argv[1])
client.start_channels()
client.wait_for_ready(timeout=30)
msg_id = client.execute(sys.argv[2])
reply = client.get_shell_msg(timeout=30)
assert reply["parent_header"]["msg_id"] == msg_id, "got a reply to another front end"
stdout = []
while True:
    msg = client.get_iopub_msg(timeout=30)
    if msg["parent_header"].get("msg_id") != msg_id:
        continue
    if msg["msg_type"] == "stream":
        stdout.append(msg["content"]["text"])
    if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
        break
client.stop_channels()
print(json.dumps({"status": reply["content"]["status"], "stdout": stdout}))
"""


async def run_elsewhere(connection_file: Path, code: str) -> dict:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OTHER_FRONT_END, str(connection_file), code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout)


async def cli_status(socket_path: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runtimed.cli", "--socket", str(socket_path), "status",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    return stdout.decode()


async def test_second_front_end_joins_a_launched_kernel(
    running: RunningDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    async with running.client("findable") as client:
        await client.request("launch_kernel")
        info = await client.request("kernel_info")
        path = Path(info["connection_file"])
        assert path.parent == runtime
        assert path.name.startswith("kernel-")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert json.loads(path.read_text())["kernel_name"] == "python3"

        async with running.client() as control:
            daemon = await control.request("daemon_info")
        assert [k["connection_file"] for k in daemon["kernels"]] == [str(path)]
        assert f"connection file: {path}" in await cli_status(running.settings.socket_path)

        await run_cell(client, "import ipywidgets as w\nslider = w.IntSlider(max=10**9)\nslider")
        [slider] = [c for c in client.doc.get_comms() if c.model_name == "IntSliderModel"]
        other = await run_elsewhere(path, "shared = 41 + 1\nslider.value = 7\nprint(shared)")
        assert other == {"status": "ok", "stdout": ["42\n"]}
        # The daemon sees the other front end's widget change, and its variables.
        await eventually(
            lambda: client.doc.get_comm(slider.comm_id).state.get("value") == 7,  # type: ignore[union-attr]
            what="the other front end's slider change in the doc",
        )
        outputs = await run_cell(client, "print(shared)")
        assert outputs == [{"output_type": "stream", "name": "stdout", "text": "42\n"}]

        await client.request("shutdown_kernel")
        assert not path.exists()
