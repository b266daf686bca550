"""The web port's guard: Host and Origin checks, the page's headers, a token kept out of
the address bar, and a Content-Security-Policy that the page lives with.

Over raw loopback sockets (every header line as sent) and in headless Chromium, with
another site served by a second HTTP server of the test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from runtimed.config import Settings
from runtimed.daemon.web_guard import (
    BLOB_CSP,
    PAGE_CSP,
    ConnectionGate,
    host_refusal,
    origin_refusal,
)
from tests.web.conftest import Browser, WebDaemon

NOTEBOOK = "guarded-notebook"
UPGRADE = [
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
]


async def raw_get(
    port: int, path: str, lines: list[str]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, header lines in order, body) of one GET with exactly these header lines."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(("\r\n".join([f"GET {path} HTTP/1.1", *lines]) + "\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *header_lines = head.decode().strip().split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in header_lines]
    length = int(named(headers, "Content-Length")[0]) if named(headers, "Content-Length") else 0
    body = await asyncio.wait_for(reader.readexactly(length), 10)
    writer.close()
    return int(status_line.split()[1]), headers, body  # type: ignore[return-value]


def named(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name.lower()]


async def test_every_answer_carries_the_page_policy_once(web: WebDaemon) -> None:
    host = f"Host: 127.0.0.1:{web.port}"
    for path, status in [("/", 200), ("/static/app.js", 200), ("/nope", 404), ("/ws", 401)]:
        got, headers, _ = await raw_get(web.port, path, [host])
        assert got == status, path
        assert named(headers, "Content-Security-Policy") == [PAGE_CSP], path
        assert named(headers, "X-Frame-Options") == ["DENY"], path
        assert named(headers, "X-Content-Type-Options") == ["nosniff"], path
        assert named(headers, "Cache-Control") == ["no-cache"], path
    assert "script-src 'self' 'wasm-unsafe-eval'" in PAGE_CSP
    assert "frame-ancestors 'none'" in PAGE_CSP
    assert "unsafe-inline" not in PAGE_CSP.split("script-src")[1].split(";")[0]


async def test_a_blob_has_one_cache_control_and_its_own_sandbox(web: WebDaemon) -> None:
    assert web.daemon is not None
    blob = web.daemon.blobs.put(b"<b>kernel html</b>", "text/html")
    status, headers, body = await raw_get(
        web.port,
        f"/blob/{blob}",
        [f"Host: 127.0.0.1:{web.port}", f"Authorization: Bearer {web.token}"],
    )
    assert (status, body) == (200, b"<b>kernel html</b>")
    assert named(headers, "Cache-Control") == ["private, max-age=31536000, immutable"]
    assert named(headers, "Content-Security-Policy") == [BLOB_CSP]


@pytest.mark.parametrize(
    "host", ["evil.example:{port}", "evil.example", "127.0.0.1.nip.io:{port}", "10.0.0.1:{port}"]
)
async def test_a_host_that_is_not_loopback_gets_nothing_even_with_the_token(
    web: WebDaemon, host: str
) -> None:
    header = "Host: " + host.format(port=web.port)
    assert web.daemon is not None
    blob = web.daemon.blobs.put(b"secret output", "text/plain")
    for path, extra in [
        ("/", []),
        ("/static/app.js", []),
        (f"/blob/{blob}?token={web.token}", []),
        (f"/ws?token={web.token}", UPGRADE),
    ]:
        status, _, body = await raw_get(web.port, path, [header, *extra])
        assert status == 403, path
        assert b"is not a loopback name" in body
        assert b"secret output" not in body


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "app.localhost:{port}"]
)
async def test_loopback_names_are_served(web: WebDaemon, host: str) -> None:
    header = "Host: " + host.format(port=web.port)
    assert (await raw_get(web.port, "/", [header]))[0] == 200
    status, _, _ = await raw_get(web.port, f"/ws?token={web.token}", [header, *UPGRADE])
    assert status == 101


async def test_any_host_is_served_when_remote_clients_are_allowed(settings: Settings) -> None:
    remote = WebDaemon(dataclasses.replace(settings, ws=("127.0.0.1", 0), ws_allow_remote=True))
    await remote.start()
    try:
        status, _, _ = await raw_get(remote.port, "/", ["Host: daemon.example:8765"])
        assert status == 200
    finally:
        await remote.stop()


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1:1", "http://localhost:{port}"]
)
async def test_another_origin_cannot_open_the_websocket_even_with_the_token(
    web: WebDaemon, origin: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{web.ws_url}?token={web.token}", origin=origin.format(port=web.port))
    assert refused.value.response.status_code == 403
    assert b"is not this page's origin" in refused.value.response.body


async def test_the_page_own_origin_and_programs_without_one_get_in(web: WebDaemon) -> None:
    own = f"http://127.0.0.1:{web.port}"
    async with connect(f"{web.ws_url}?token={web.token}", origin=own) as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"channel": "control", "protocol": 2}).encode())
        assert json.loads(await ws.recv())["ok"]
    async with connect(
        web.ws_url, additional_headers={"Authorization": f"Bearer {web.token}"}
    ) as ws:
        await ws.send(json.dumps({"channel": "control", "protocol": 2}).encode())
        assert json.loads(await ws.recv())["ok"]


# --- in Chromium -------------------------------------------------------------------------


async def test_the_page_drops_the_token_from_its_address_and_keeps_working(
    web: WebDaemon, browser: Browser
) -> None:
    await browser.call("open", page="p", url=web.page_url(NOTEBOOK))
    href = await browser.call("eval", page="p", js="location.href")
    assert web.token not in href
    assert href.endswith(f"/?notebook={NOTEBOOK}")
    assert web.token not in await browser.call("eval", page="p", js="history.state ?? ''")
    # A reload (no token in the address any more) still opens the notebook.
    await browser.call(
        "eval", page="p", js="window.before = 1; setTimeout(() => location.reload(), 0); true"
    )
    await browser.wait("p", "window.before === undefined && window.runtimed?.ready === true")
    # The page still reaches what needs the token: a blob, fetched with it as Bearer.
    assert web.daemon is not None
    blob = web.daemon.blobs.put(b'{"shown": 42}', "application/json")
    fetched = f"window.runtimed.page.blobs.get({blob!r}).then((b) => b.value.shown)"
    assert await browser.call("eval", page="p", js=fetched) == 42
    assert await browser.call("errors") == []


async def test_the_page_runs_no_inline_script_and_no_eval(web: WebDaemon, browser: Browser) -> None:
    await browser.call("open", page="p", url=web.page_url(NOTEBOOK))
    violated = await browser.call(
        "eval",
        page="p",
        js="""new Promise((resolve) => {
            document.addEventListener("securitypolicyviolation",
                (event) => resolve(event.effectiveDirective), { once: true });
            const box = document.createElement("div");
            box.innerHTML = '<img src="/no-such-image" onerror="window.pwned = 1">';
            document.body.append(box);
        })""",
    )
    assert violated == "script-src-attr"
    assert await browser.call("eval", page="p", js="window.pwned === undefined")
    # Run from a timer, as the page's own code would (DevTools evaluation is exempt).
    compiled = await browser.call(
        "eval",
        page="p",
        js="""new Promise((resolve) => setTimeout(() => {
            try { new Function("return 1"); resolve("compiled"); }
            catch (error) { resolve(error.name); }
        }, 0))""",
    )
    assert compiled == "EvalError"
    errors = await browser.call("errors")
    assert errors
    assert all("Content Security Policy" in e or "404" in e for e in errors), errors


ATTACKER_PAGE = """<!doctype html><title>a site</title><script>
window.runtimed = { ready: true };  // what the test driver waits for before it reports
window.tryDaemon = async (base, token, hash) => {
  const ws = await new Promise((resolve) => {
    const socket = new WebSocket(`${base.replace("http", "ws")}/ws?token=${token}`);
    socket.onopen = () => socket.send(new TextEncoder().encode('{"channel": "control"}'));
    socket.onmessage = () => resolve("answered");
    socket.onerror = () => resolve("refused");
  });
  const status = async (path) => {
    try { return (await fetch(base + path)).status; } catch (error) { return "refused"; }
  };
  return { ws, page: await status("/"), blob: await status(`/blob/${hash}?token=${token}`) };
};
</script>"""


@pytest.fixture
async def attacker() -> AsyncIterator[asyncio.Server]:
    """Another web site on this machine: one page, with its own (inline) script."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = ATTACKER_PAGE.encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    yield server
    server.close()
    await server.wait_closed()


def port_of(server: asyncio.Server) -> int:
    return server.sockets[0].getsockname()[1]


async def test_a_page_on_another_origin_gets_nothing_with_a_guessed_token(
    web: WebDaemon, browser: Browser, attacker: asyncio.Server
) -> None:
    assert web.daemon is not None
    blob = web.daemon.blobs.put(b"secret output", "text/plain")
    await browser.call("open", page="evil", url=f"http://localhost:{port_of(attacker)}/")
    base = f"http://127.0.0.1:{web.port}"
    got = await browser.call(
        "eval", page="evil", js=f"tryDaemon({base!r}, {web.token!r}, {blob!r})"
    )
    assert got["ws"] == "refused"
    assert web.daemon.rooms == {}
    await browser.call("errors")  # the refusals, as the browser reports them


async def test_dns_rebinding_gets_nothing(
    settings: Settings, browser: Browser, attacker: asyncio.Server
) -> None:
    """`rebind.test` resolves to 127.0.0.1 in the test's Chromium. Its page is loaded
    from the attacker's server on a port; then the daemon listens on that same port, so
    the page's requests are same-origin for the browser: only the Host header is left."""
    port = port_of(attacker)
    await browser.call("open", page="evil", url=f"http://rebind.test:{port}/")
    attacker.close()
    await attacker.wait_closed()
    daemon = WebDaemon(dataclasses.replace(settings, ws=("127.0.0.1", port)))
    await daemon.start()
    try:
        assert daemon.daemon is not None
        blob = daemon.daemon.blobs.put(b"secret output", "text/plain")
        base = f"http://rebind.test:{port}"
        got = await browser.call(
            "eval", page="evil", js=f"tryDaemon({base!r}, {daemon.token!r}, {blob!r})"
        )
        assert got == {"ws": "refused", "page": 403, "blob": 403}
        assert daemon.daemon.rooms == {}
    finally:
        await daemon.stop()
    await browser.call("errors")  # the refusals, as the browser reports them


# --- the rules alone -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:8765", True),
        ("127.1.2.3", True),
        ("LOCALHOST:1", True),
        ("localhost.", True),
        ("a.b.localhost:9", True),
        ("[::1]:8765", True),
        ("::1", True),
        ("localhost.evil.example", False),
        ("evillocalhost", False),
        ("[::ffff:10.0.0.1]:1", False),
        ("0.0.0.0:8765", False),
        ("192.168.1.2", False),
    ],
)
def test_loopback_names(host: str, loopback: bool) -> None:
    assert (host_refusal(host, allow_remote=False) is None) is loopback
    assert host_refusal(host, allow_remote=True) is None


def test_origin_must_be_the_host_itself() -> None:
    assert origin_refusal(None, "127.0.0.1:1") is None
    assert origin_refusal("http://127.0.0.1:1", "127.0.0.1:1") is None
    assert origin_refusal("HTTP://LOCALHOST:1", "localhost:1") is None
    for origin in (
        "http://127.0.0.1:2",
        "http://localhost:1",
        "null",
        "file://",
        "ws://127.0.0.1:1",
    ):
        assert origin_refusal(origin, "127.0.0.1:1") is not None, origin


def test_the_gate_counts_waiting_connections_in_total_and_per_peer() -> None:
    gate = ConnectionGate(total=3, per_peer=2)
    assert [gate.admit("a"), gate.admit("a"), gate.admit("a")] == [True, True, False]
    assert gate.admit("b")
    assert not gate.admit("c")  # the total is reached
    gate.release("a")
    assert gate.admit("c")
    for peer in ("a", "b", "c"):
        gate.release(peer)
    assert gate.waiting == 0
    assert gate.admit("a")
