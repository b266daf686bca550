"""The WebSocket listener over real loopback sockets: token, framing, errors, HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import stat
import sys
from unittest.mock import ANY

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from runtimed.cli.parser import ws_address
from runtimed.config import Settings, token_path
from runtimed.daemon.websocket import WebListenerError, check_bind_host
from runtimed.wire import MAX_FRAME_SIZE, FrameType
from tests.conftest import RunningDaemon
from tests.web.conftest import WebDaemon

HELLO = {"channel": "notebook", "notebook_id": "ws-nb", "snapshot": True, "protocol": 2}


async def http_get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple:
    """(status, headers, body) of one plain HTTP/1.1 GET."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    parsed = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), parsed, body


async def open_ws(web: WebDaemon, **kwargs) -> ClientConnection:
    url = kwargs.pop("url", f"{web.ws_url}?token={web.token}")
    return await connect(url, max_size=None, **kwargs)


async def until_closed(ws: ClientConnection) -> tuple[list[bytes], ConnectionClosed]:
    """Every message the daemon sends before it closes, and how it closed."""
    frames: list[bytes] = []
    while True:
        try:
            frames.append(await asyncio.wait_for(ws.recv(), 10))
        except ConnectionClosed as closed:
            return frames, closed


async def greet(ws: ClientConnection, hello: dict) -> dict:
    await ws.send(json.dumps(hello).encode())
    return json.loads(await ws.recv())


async def test_a_notebook_session_over_websocket(web: WebDaemon) -> None:
    async with await open_ws(web) as ws:
        reply = await greet(ws, HELLO)
        assert reply["ok"]
        assert reply["notebook_id"] == "ws-nb"
        frames = [await ws.recv() for _ in range(4)]  # one frame per binary message
        assert [f[0] for f in frames] == [FrameType.SNAPSHOT, FrameType.SYNC] + [
            FrameType.BROADCAST
        ] * 2
        assert json.loads(frames[2][1:])["event"] == "trust"
        assert json.loads(frames[3][1:]) == {"event": "kernel_status", "status": "none"}
        await ws.send(bytes([FrameType.REQUEST]) + b'{"id": 7, "action": "get_comms"}')
        response = await ws.recv()
        assert response[0] == FrameType.RESPONSE
        assert json.loads(response[1:]) == {"id": 7, "ok": True, "result": {"comms": []}}
        # A bad request gets an error RESPONSE and the connection stays.
        await ws.send(bytes([FrameType.REQUEST]) + b'{"id": 8, "action": "nope"}')
        error = json.loads((await ws.recv())[1:])
        assert (error["id"], error["ok"], error["error"]["code"]) == (8, False, "unknown_action")


async def test_the_websocket_shares_rooms_with_the_unix_socket(web: WebDaemon) -> None:
    async with web.client("ws-nb") as py, await open_ws(web) as ws:
        cell = py.doc.add_cell(source="shared")
        await py.wait_synced()
        assert (await greet(ws, HELLO))["ok"]
        assert (await ws.recv())[0] == FrameType.SNAPSHOT
        info = await py.request("get_comms")
        assert info == {"comms": []}
        assert web.daemon is not None
        assert len(web.daemon.rooms["ws-nb"].peers) == 2
        assert cell in web.daemon.rooms["ws-nb"].doc.cell_ids()


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/ws", {}),
        ("/ws?token=wrong", {}),
        ("/ws", {"Authorization": "Bearer wrong"}),
        ("/blob/" + "a" * 64, {}),
    ],
)
async def test_no_token_no_entry(web: WebDaemon, path: str, headers: dict) -> None:
    status, _, body = await http_get(web.port, path, headers)
    assert status == 401
    assert b"token" in body
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"ws://127.0.0.1:{web.port}{path}", additional_headers=headers)
    assert refused.value.response.status_code == 401


async def test_bearer_token_is_accepted(web: WebDaemon) -> None:
    headers = {"Authorization": f"Bearer {web.token}"}
    async with await open_ws(web, url=web.ws_url, additional_headers=headers) as ws:
        assert (await greet(ws, {"channel": "control"}))["ok"]


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("a text message", "bad_frame"),
        (b"", "bad_frame"),
        (bytes([9]) + b"{}", "bad_frame"),
        (bytes([FrameType.SNAPSHOT]) + b"x", "bad_frame"),
    ],
)
async def test_a_bad_frame_gets_an_error_frame_and_a_close(
    web: WebDaemon, message: str | bytes, code: str
) -> None:
    async with await open_ws(web) as ws:
        assert (await greet(ws, HELLO))["ok"]
        await ws.send(message)
        frames, _ = await until_closed(ws)
        last = json.loads(frames[-1][1:])
        assert frames[-1][0] == FrameType.BROADCAST
        assert (last["event"], last["code"], last["fatal"]) == ("error", code, True)
    async with web.client("ws-nb") as still_fine:
        assert still_fine.joined


async def test_a_bad_handshake_is_refused(web: WebDaemon) -> None:
    async with await open_ws(web) as ws:
        reply = await greet(ws, {"channel": "notebook", "protocol": 1, "notebook_id": "x"})
        assert reply == {
            "ok": False,
            "error": {"code": "unsupported_version", "message": reply["error"]["message"]},
        }
        assert await until_closed(ws) == ([], ANY)


async def test_a_message_over_the_frame_cap_closes_the_connection(web: WebDaemon) -> None:
    ws = await open_ws(web)  # no `async with`: the daemon ends this connection itself
    assert (await greet(ws, HELLO))["ok"]
    await ws.send(bytes([FrameType.SYNC]) + bytes(MAX_FRAME_SIZE))
    _, closed = await until_closed(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1009


async def test_blobs_and_static_files_over_http(web: WebDaemon) -> None:
    assert web.daemon is not None
    blob = web.daemon.blobs.put(b'{"output_type": "stream"}', "application/json")
    status, headers, body = await http_get(web.port, f"/blob/{blob}?token={web.token}")
    assert (status, headers["Content-Type"], body) == (
        200,
        "application/json",
        b'{"output_type": "stream"}',
    )
    assert "sandbox" in headers["Content-Security-Policy"]
    assert (await http_get(web.port, f"/blob/{'0' * 64}?token={web.token}"))[0] == 404
    assert (await http_get(web.port, f"/blob/NOTAHASH?token={web.token}"))[0] == 400

    status, headers, body = await http_get(web.port, f"/?token={web.token}&notebook=n")
    assert status == 200
    assert b"/static/app.js" in body
    status, headers, _ = await http_get(web.port, "/static/page.css")  # assets need no token
    assert (status, headers["Content-Type"]) == (200, "text/css; charset=utf-8")
    for path in ("/static/../websocket.py", "/static/.hidden", "/static/nope.js", "/elsewhere"):
        assert (await http_get(web.port, path))[0] == 404, path


async def test_the_token_file_is_private_and_removed_on_stop(web_settings: Settings) -> None:
    handle = WebDaemon(web_settings)
    await handle.start()
    path = token_path(web_settings.socket_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == handle.token
    first = handle.token
    await handle.stop()
    assert not path.exists()
    await handle.start()
    assert handle.token != first  # fresh at each start
    await handle.stop()


async def test_a_non_loopback_bind_needs_the_explicit_flag(settings: Settings) -> None:
    handle = RunningDaemon(dataclasses.replace(settings, ws=("0.0.0.0", 0)))
    with pytest.raises(WebListenerError, match="not a loopback address"):
        await handle.start()
    assert not settings.socket_path.exists()
    check_bind_host("0.0.0.0", allow_remote=True)
    for host in ("127.0.0.1", "::1", "localhost"):
        check_bind_host(host, allow_remote=False)
    with pytest.raises(WebListenerError, match="not an IP address"):
        check_bind_host("example.invalid", allow_remote=False)


def test_ws_address_parsing() -> None:
    assert ws_address("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert ws_address("[::1]:9000") == ("::1", 9000)
    for bad in ("8765", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":80", "host:x"):
        with pytest.raises(Exception, match="HOST:PORT"):
            ws_address(bad)


async def test_serve_prints_the_page_url(settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runtimed.cli",
        "--socket",
        str(settings.socket_path),
        "serve",
        "--data-dir",
        str(settings.data_dir),
        "--ws",
        f"127.0.0.1:{port}",
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stderr is not None
        url = ""
        while not url:
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            assert line, "runtimed serve exited before printing the page URL"
            if line.startswith("notebook page: "):
                url = line.removeprefix("notebook page: ").strip()
        token = token_path(settings.socket_path).read_text().strip()
        assert url == f"http://127.0.0.1:{port}/?token={token}"
        status, _, body = await http_get(port, url.removeprefix(f"http://127.0.0.1:{port}"))
        assert status == 200
        assert b"<title>runtimed</title>" in body
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    assert os.path.exists(settings.socket_path) is False
