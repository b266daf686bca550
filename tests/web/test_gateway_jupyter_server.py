"""`jupyter server --gateway-url` pointed at the daemon, driven like JupyterLab drives it.

A real jupyter_server process hands every kernel to the daemon; a WebSocket client
speaks jupyter_server's kernel protocol to it (jupyter_server forces the legacy JSON
format on gateway kernels). A 20,000-update widget burst arrives whole: through the
gateway, jupyter_server's IOPub rate limit does not apply.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from tests.web.conftest import WebDaemon
from tests.web.kernel_ws import KernelSocket, is_idle

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

UPDATES = 20_000


class GatewayServer:
    """`python -m jupyter_server --gateway-url=<daemon>` in a child process."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        response = await AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
        )
        return json.loads(response.body) if response.body else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def server(web: WebDaemon, tmp_path: Path) -> AsyncIterator[GatewayServer]:
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_GATEWAY_AUTH_TOKEN": web.token,
    }
    argv = [
        "-m",
        "jupyter_server",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        "--no-browser",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={tmp_path}",
        f"--gateway-url=http://127.0.0.1:{web.port}",
        "--GatewayClient.request_timeout=60",
        *(("--allow-root",) if os.geteuid() == 0 else ()),
    ]
    log = (tmp_path / "jupyter_server.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, stdout=log, stderr=log, env=env
    )
    handle = GatewayServer(port, token)
    try:
        async with asyncio.timeout(60):
            while True:
                try:
                    await handle.api("GET", "/api/status")
                    break
                except (OSError, HTTPClientError):
                    assert proc.returncode is None, (tmp_path / "jupyter_server.log").read_text()
                    await asyncio.sleep(0.1)
        yield handle
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        log.close()


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
