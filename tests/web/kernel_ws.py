"""A front end's kernel WebSocket in jupyter_server's legacy format (what `--gateway-url`
forces), for tests: send requests, read messages until a condition holds."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from runtimed.gateway import codec


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
        header = {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "test",
            "session": self.session,
            "date": dt.datetime.now(dt.UTC).isoformat(),
            "version": "5.3",
        }
        return {"header": header, "parent_header": {}, "metadata": {}, "content": content, **extra}

    async def send(self, channel: str, msg: dict[str, Any]) -> str:
        await self.ws.send(codec.encode(msg, channel))
        return msg["header"]["msg_id"]

    async def execute(self, code: str) -> str:
        content = {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
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
        await self.ws.close()


def is_idle(msg: dict[str, Any], msg_id: str) -> bool:
    return (
        msg["header"]["msg_type"] == "status"
        and msg["parent_header"].get("msg_id") == msg_id
        and msg["content"]["execution_state"] == "idle"
    )
