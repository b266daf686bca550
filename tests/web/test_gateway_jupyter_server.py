"""`jupyter server --gateway-url` pointed at the daemon, driven like JupyterLab drives it.

A real jupyter_server process hands every kernel to the daemon; a WebSocket client
speaks jupyter_server's kernel protocol to it (jupyter_server forces the legacy JSON
format on gateway kernels). A 20,000-update widget burst arrives whole: through the
gateway, jupyter_server's IOPub rate limit does not apply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.web.conftest import WebDaemon
from tests.web.kernel_ws import GatewayServer, KernelSocket, gateway_server, is_idle

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

UPDATES = 20_000


@pytest.fixture
async def server(web: WebDaemon, tmp_path: Path) -> AsyncIterator[GatewayServer]:
    async with gateway_server("jupyter_server", web.port, web.token, tmp_path) as handle:
        yield handle


async def test_jupyter_server_runs_its_kernels_through_the_daemon(
    web: WebDaemon, server: GatewayServer
) -> None:
    specs = await server.api("GET", "/api/kernelspecs")
    assert "python3" in specs["kernelspecs"]
    kernel = await server.api("POST", "/api/kernels", {"name": "python3"})
    assert web.daemon is not None
    room = web.daemon.rooms[f"gateway-{kernel['id']}"]  # the daemon's kernel, in its room
    sock = await KernelSocket.open(f"ws://127.0.0.1:{server.port}", kernel["id"], server.token)
    try:
        assert await sock.run("print(6 * 7)") == "42\n"
        comm_id = await sock.run(
            "import ipywidgets as w\ns = w.IntSlider(0, max=10**6)\nprint(s.model_id, end='')"
        )
        burst = await sock.execute(f"for i in range({UPDATES}):\n    s.value = i")
        await sock.until(lambda m: is_idle(m, burst), timeout=180)
        values = [
            m["content"]["data"]["state"]["value"]
            for m in sock.received
            if m["header"]["msg_type"] == "comm_msg"
            and m["content"].get("comm_id") == comm_id
            and "value" in m["content"]["data"].get("state", {})
        ]
        print(f"through jupyter_server --gateway-url: {len(values)} of {UPDATES} updates")
        assert values[-1] == UPDATES - 1
        assert room.comm_state.get(comm_id).state["value"] == UPDATES - 1

        listed = await server.api("GET", "/api/kernels")
        assert [k["id"] for k in listed] == [kernel["id"]]
    finally:
        await sock.close()
    await server.api("DELETE", f"/api/kernels/{kernel['id']}")
    assert room.kernel is None
