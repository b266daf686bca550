"""A kernel WebSocket client of jupyter_server, the path JupyterLab uses (protocol v1).

Just enough of the protocol to run code and count a burst's updates: the binary v1
framing (offsets, channel, header, parent_header, metadata, content, buffers), or the
legacy JSON format when the server selects no subprotocol (as it does for kernels of
a gateway: `--gateway-url`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from runtimed.kernel import execute_content
from runtimed.kernel import ws_codec as codec

from .procs import KERNEL_NAME, child_env

SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"
NO_RATE_LIMIT = (
    "--ZMQChannelsWebsocketConnection.iopub_msg_rate_limit=0",
    "--ZMQChannelsWebsocketConnection.iopub_data_rate_limit=0",
)


def encode_v1(channel: str, msg: dict[str, Any]) -> bytes:
    parts = [
        json.dumps(msg[k]).encode() for k in ("header", "parent_header", "metadata", "content")
    ]
    chunks = [channel.encode(), *parts]
    offsets = [8 * (1 + 1 + len(parts) + 1)]
    for chunk in chunks:
        offsets.append(offsets[-1] + len(chunk))
    head = len(offsets).to_bytes(8, "little") + b"".join(o.to_bytes(8, "little") for o in offsets)
    return head + b"".join(chunks)


def decode_v1(data: bytes) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(channel, header, parent_header, content)."""
    count = int.from_bytes(data[:8], "little")
    offsets = [int.from_bytes(data[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(count)]
    part = [data[offsets[i] : offsets[i + 1]] for i in range(count - 1)]
    return part[0].decode(), json.loads(part[1]), json.loads(part[2]), json.loads(part[4])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterServer:
    """`jupyter server` in a child process, one kernel in it, one WebSocket to that kernel.

    With `gateway=(url, token)` the server hands its kernels to that Kernel Gateway
    (the daemon's `--ws` port).
    """

    def __init__(
        self, workdir: Path, *, rate_limited: bool, gateway: tuple[str, str] | None = None
    ) -> None:
        self.workdir = workdir
        self.rate_limited = rate_limited
        self.gateway = gateway
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.proc: asyncio.subprocess.Process | None = None
        self.ws: ClientConnection | None = None
        self.session = uuid.uuid4().hex

    def _url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}?token={self.token}"

    def _http(self, method: str, path: str) -> Any:
        body = json.dumps({"name": KERNEL_NAME}).encode() if method == "POST" else None
        request = urllib.request.Request(self._url(path), data=body, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    async def start(self) -> JupyterServer:
        argv = [
            "-m",
            "jupyter_server",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.ip=127.0.0.1",
            "--no-browser",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.workdir}",
            *(() if self.rate_limited else NO_RATE_LIMIT),
            *(("--allow-root",) if os.geteuid() == 0 else ()),
        ]
        env = child_env()
        if self.gateway is not None:
            argv.append(f"--gateway-url={self.gateway[0]}")
            env["JUPYTER_GATEWAY_AUTH_TOKEN"] = self.gateway[1]
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (self.workdir / "jupyter_server.log").open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, *argv, stdout=log, stderr=log, env=env
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                await asyncio.to_thread(self._http, "GET", "/api/status")
                break
            except OSError:
                if self.proc.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("jupyter_server did not start") from None
                await asyncio.sleep(0.1)
        kernel = await asyncio.to_thread(self._http, "POST", "/api/kernels")
        url = f"ws://127.0.0.1:{self.port}/api/kernels/{kernel['id']}/channels?token={self.token}"
        self.ws = await connect(url, subprotocols=[SUBPROTOCOL], max_size=None)
        return self

    async def execute(self, code: str) -> str:
        assert self.ws is not None
        content = execute_content(code, store_history=False)
        msg = codec.new_message("execute_request", content, session=self.session)
        await self.ws.send(self._encode("shell", msg))
        return msg["header"]["msg_id"]

    def _encode(self, channel: str, msg: dict[str, Any]) -> bytes | str:
        assert self.ws is not None
        if self.ws.subprotocol == SUBPROTOCOL:
            return encode_v1(channel, msg)
        return codec.encode(msg, channel)

    def _decode(self, data: bytes | str) -> tuple[str, dict, dict, dict]:
        """(channel, header, parent_header, content) in either format."""
        assert self.ws is not None
        if self.ws.subprotocol == SUBPROTOCOL:
            assert isinstance(data, bytes)
            return decode_v1(data)
        channel, msg = codec.decode(data, codec.ALL_CHANNELS)
        return channel, msg["header"], msg["parent_header"], msg["content"]

    async def run_to_idle(self, code: str) -> str:
        """Run code and return its stdout (setup code, not timed)."""
        assert self.ws is not None
        msg_id = await self.execute(code)
        text = []
        async for data in self.ws:
            channel, header, parent, content = self._decode(data)
            if channel != "iopub" or parent.get("msg_id") != msg_id:
                continue
            if header["msg_type"] == "stream":
                text.append(content["text"])
            elif header["msg_type"] == "error":
                raise RuntimeError("\n".join(content["traceback"]))
            elif header["msg_type"] == "status" and content["execution_state"] == "idle":
                return "".join(text)
        raise RuntimeError("the kernel WebSocket closed")

    async def burst(self, code: str, comm_id: str, final: int, quiet: float) -> dict[str, Any]:
        """Run the burst; stop at its idle, or after `quiet` seconds without a message."""
        assert self.ws is not None
        start = time.perf_counter()
        msg_id = await self.execute(code)
        received, last_value, final_at, idle = 0, None, None, False
        last_at = start
        with contextlib.suppress(TimeoutError):
            while True:
                data = await asyncio.wait_for(self.ws.recv(), quiet)
                last_at = time.perf_counter()
                _channel, header, parent, content = self._decode(data)
                if header["msg_type"] == "comm_msg" and content.get("comm_id") == comm_id:
                    value = content.get("data", {}).get("state", {}).get("value")
                    if value is not None:
                        received += 1
                        last_value = value
                        if value == final:
                            final_at = last_at - start
                elif (
                    header["msg_type"] == "status"
                    and parent.get("msg_id") == msg_id
                    and content["execution_state"] == "idle"
                ):
                    idle = True
                    break
        return {
            "seconds": final_at if final_at is not None else last_at - start,
            "messages": received,
            "final": last_value,
            "idle_seen": idle,
        }

    async def stop(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
