"""A front end's kernel WebSocket in jupyter_server's legacy format (what `--gateway-url`
forces), for tests: send requests, read messages until a condition holds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from runtimed.kernel import execute_content
from runtimed.kernel import ws_codec as codec


class KernelSocket:
    """One `/api/kernels/{id}/channels` connection with its own session id."""

    def __init__(self, ws: ClientConnection, session: str) -> None:
        self.ws = ws
        self.session = session
        self.received: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, base: str, kernel_id: str, token: str) -> KernelSocket:
        """`base` is ws://host:port; the token goes in jupyter_server's header form."""
        session = uuid.uuid4().hex
        url = f"{base}/api/kernels/{kernel_id}/channels?session_id={session}"
        ws = await connect(
            url,
            additional_headers={"Authorization": f"token {token}"},
            subprotocols=["v1.kernel.websocket.jupyter.org"],  # refused: legacy it is
            max_size=None,
        )
        return cls(ws, session)

    def message(self, msg_type: str, content: dict, **extra: Any) -> dict[str, Any]:
        return {**codec.new_message(msg_type, content, session=self.session), **extra}

    async def send(self, channel: str, msg: dict[str, Any]) -> str:
        await self.ws.send(codec.encode(msg, channel))
        return msg["header"]["msg_id"]

    async def execute(self, code: str) -> str:
        content = execute_content(code, store_history=False)
        return await self.send("shell", self.message("execute_request", content))

    async def until(
        self, done: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> dict[str, Any]:
        """Read (keeping every message in `received`) until one satisfies `done`."""
        async with asyncio.timeout(timeout):
            while True:
                channel, msg = codec.decode(await self.ws.recv(), codec.ALL_CHANNELS)
                msg["channel"] = channel
                self.received.append(msg)
                if done(msg):
                    return msg

    async def run(self, code: str, timeout: float = 60) -> str:
        """Execute and wait for its idle; the stdout it printed (errors raise)."""
        msg_id = await self.execute(code)
        await self.until(lambda m: is_idle(m, msg_id), timeout)
        mine = [m for m in self.received if m["parent_header"].get("msg_id") == msg_id]
        errors = [m for m in mine if m["header"]["msg_type"] == "error"]
        if errors:
            raise AssertionError("\n".join(errors[0]["content"]["traceback"]))
        return "".join(m["content"]["text"] for m in mine if m["header"]["msg_type"] == "stream")

    async def close(self) -> None:
        """The closing handshake, reading what is still queued meanwhile: a socket whose
        unread frames filled websockets' queue has stopped reading, and would not see the
        daemon's close frame before close_timeout (10 s)."""

        async def drain() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for _ in self.ws:
                    pass

        reader = asyncio.create_task(drain())
        await self.ws.close()
        await reader


def is_idle(msg: dict[str, Any], msg_id: str) -> bool:
    return (
        msg["header"]["msg_type"] == "status"
        and msg["parent_header"].get("msg_id") == msg_id
        and msg["content"]["execution_state"] == "idle"
    )


class GatewayServer:
    """`python -m jupyter_server --gateway-url=<daemon>` in a child process."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        return await api(self.port, self.token, method, path, body)


async def api(port: int, token: str, method: str, path: str, body: Any = None) -> Any:
    """A REST call with jupyter_server's token header; the JSON answer (errors raise)."""
    response = await AsyncHTTPClient().fetch(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        headers={"Authorization": f"token {token}"},
        body=None if body is None else json.dumps(body),
        allow_nonstandard_methods=True,
    )
    return json.loads(response.body) if response.body else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def gateway_server(
    module: str, daemon_port: int, daemon_token: str, tmp_path: Path, *args: str
) -> AsyncIterator[GatewayServer]:
    """`python -m <module>` (jupyter_server, jupyterlab) with `--gateway-url` at the daemon."""
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_GATEWAY_AUTH_TOKEN": daemon_token,
    }
    argv = [
        "-m",
        module,
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        "--no-browser",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={tmp_path}",
        f"--gateway-url=http://127.0.0.1:{daemon_port}",
        "--GatewayClient.request_timeout=60",
        *(("--allow-root",) if os.geteuid() == 0 else ()),
        *args,
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
