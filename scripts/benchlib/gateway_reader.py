"""A plain kernel WebSocket client of a Kernel Gateway: the baseline of the remote case.

It starts its own kernel with the gateway's REST API and reads the legacy JSON protocol
(no subprotocol asked for, as jupyter_server's GatewayClient does), doing nothing with
the messages but count them: the least any front end of that gateway must do.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import urllib.request
from typing import Any

from websockets.asyncio.client import connect

from .jupyter_ws import JupyterServer


class GatewayReader(JupyterServer):
    """`run_to_idle` and `burst` of `JupyterServer`, on a gateway's kernel."""

    def __init__(self, url: str, token: str, kernel_name: str) -> None:
        self.url = url
        self.token = token
        self.kernel_name = kernel_name
        self.kernel_id: str | None = None
        self.ws = None
        self.proc = None
        self.session = ""

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")

    async def start(self) -> GatewayReader:
        body = {"name": self.kernel_name, "env": {"KERNEL_USERNAME": getpass.getuser()}}
        kernel = await asyncio.to_thread(self._request, "POST", "/api/kernels", body)
        self.kernel_id = kernel["id"]
        self.session = kernel["id"].replace("-", "")[:16] + "reader"
        ws_url = self.url.replace("http://", "ws://", 1)
        self.ws = await connect(
            f"{ws_url}/api/kernels/{self.kernel_id}/channels?session_id={self.session}",
            additional_headers={"Authorization": f"token {self.token}"},
            max_size=None,
        )
        return self

    async def stop(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.kernel_id is not None:
            await asyncio.to_thread(self._request, "DELETE", f"/api/kernels/{self.kernel_id}")
