"""The kernel WebSocket of the Kernel Gateway API: real daemon, real kernels, real widgets.

Front ends here speak jupyter_server's legacy kernel-WebSocket format, as jupyter_server
does when it runs with `--gateway-url`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from runtimed.comms.mirror import state_from_doc
from runtimed.daemon.room import NotebookRoom
from runtimed.gateway import codec
from runtimed.kernel import execute_content
from tests.conftest import eventually
from tests.web.conftest import WebDaemon
from tests.web.kernel_ws import KernelSocket, api, is_idle

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

SLIDER = "import ipywidgets as w\ns = w.IntSlider(3, max=10**6)\nprint(s.model_id, end='')"


async def _api(web: WebDaemon, method: str, path: str, body: Any = None) -> Any:
    return await api(web.port, web.token, method, path, body)


@pytest.fixture
async def kernel_id(web: WebDaemon) -> AsyncIterator[str]:
    model = await _api(web, "POST", "/api/kernels", {"name": "python3"})
    yield model["id"]
    await _api(web, "DELETE", f"/api/kernels/{model['id']}")


def _room(web: WebDaemon, kernel_id: str) -> NotebookRoom:
    assert web.daemon is not None
    return web.daemon.rooms[f"gateway-{kernel_id}"]


Opener = Callable[[str], Awaitable[KernelSocket]]


@pytest.fixture
async def sockets(web: WebDaemon, kernel_id: str) -> AsyncIterator[Opener]:
    """Opens front-end WebSockets to a kernel; all are closed before the kernel goes."""
    opened: list[KernelSocket] = []

    async def open_socket(kernel: str) -> KernelSocket:
        sock = await KernelSocket.open(f"ws://127.0.0.1:{web.port}", kernel, web.token)
        opened.append(sock)
        return sock

    yield open_socket
    for sock in opened:
        await sock.close()


def _comm_value(msg: dict[str, Any], comm_id: str) -> Any:
    if msg["header"]["msg_type"] != "comm_msg" or msg["content"].get("comm_id") != comm_id:
        return None
    return msg["content"]["data"].get("state", {}).get("value")


async def test_replies_go_to_their_session_and_iopub_to_all(
    web: WebDaemon, kernel_id: str, sockets: Opener
) -> None:
    a, b = await sockets(kernel_id), await sockets(kernel_id)
    assert a.ws.subprotocol is None  # the legacy format, as jupyter_server forces it
    info = a.message("kernel_info_request", {})
    await a.send("shell", info)
    reply = await a.until(lambda m: m["header"]["msg_type"] == "kernel_info_reply")
    assert reply["channel"] == "shell"
    assert reply["parent_header"]["msg_id"] == info["header"]["msg_id"]

    assert await a.run("print('from a')") == "from a\n"
    # b sees a's outputs on IOPub, but never a's replies.
    await b.until(lambda m: m["header"]["msg_type"] == "stream")
    assert await b.run("print('from b')") == "from b\n"
    assert all(
        m["parent_header"].get("session") == b.session
        for m in b.received
        if m["channel"] == "shell"
    )
    assert not any(
        m["header"]["msg_type"] == "execute_reply"
        and m["parent_header"].get("session") == b.session
        for m in a.received
    )
    # A bad frame is the sender's problem only: the connection goes on.
    await a.ws.send("{not json")
    await a.send("shell", a.message("comm_msg", {"comm_id": "x", "data": [1]}))
    await a.send("shell", a.message("comm_open", {"comm_id": 7, "target_name": None}))
    assert await a.run("print(1 + 1)") == "2\n"


async def test_stdin_and_control_replies_go_to_the_session_that_asked(
    web: WebDaemon, kernel_id: str, sockets: Opener
) -> None:
    a, b = await sockets(kernel_id), await sockets(kernel_id)
    content = execute_content("print('hello', input('name? '))", allow_stdin=True)
    asked = await a.send("shell", a.message("execute_request", content))
    request = await a.until(lambda m: m["header"]["msg_type"] == "input_request")
    assert request["channel"] == "stdin"
    answer = a.message("input_reply", {"value": "ada"}, parent_header=request["header"])
    await a.send("stdin", answer)
    await a.until(lambda m: is_idle(m, asked))
    printed = [
        m["content"]["text"]
        for m in a.received
        if m["header"]["msg_type"] == "stream" and m["parent_header"].get("msg_id") == asked
    ]
    assert printed == ["hello ada\n"]

    info = a.message("kernel_info_request", {})
    await a.send("control", info)
    reply = await a.until(lambda m: m["header"]["msg_type"] == "kernel_info_reply")
    assert reply["channel"] == "control"

    await b.until(lambda m: is_idle(m, asked))  # b saw the IOPub, nothing else
    assert {m["channel"] for m in b.received} == {"iopub"}


async def test_widgets_are_mirrored_and_front_end_updates_reach_the_room(
    web: WebDaemon, kernel_id: str, sockets: Opener
) -> None:
    a = await sockets(kernel_id)
    comm_id = await a.run(SLIDER)
    room = _room(web, kernel_id)
    entry = room.comms.state.get(comm_id)
    assert entry is not None
    assert entry.model_name == "IntSliderModel"
    assert entry.state["value"] == 3

    # The front end drags the slider: the room and the kernel follow.
    data = {"method": "update", "state": {"value": 42}, "buffer_paths": []}
    await a.send("shell", a.message("comm_msg", {"comm_id": comm_id, "data": data}))
    await eventually(lambda: room.comms.state.get(comm_id).state["value"] == 42)
    assert await a.run("print(s.value)") == "42\n"

    def doc_value() -> Any:
        comm = next(c for c in room.doc.get_comms() if c.comm_id == comm_id)
        return state_from_doc(comm.state, room.blobs)[0].get("value")

    await eventually(lambda: doc_value() == 42)

    # A runtimed client of the room sees the front end's widget too.
    async with web.client(f"gateway-{kernel_id}") as client:
        await client.wait_for(lambda c: any(x.state.get("value") == 42 for x in c.doc.get_comms()))


async def test_buffers_travel_both_ways(web: WebDaemon, kernel_id: str, sockets: Opener) -> None:
    a = await sockets(kernel_id)
    comm_id = await a.run(
        "import ipywidgets as w\nimg = w.Image(value=bytes(range(256)))\n"
        "print(img.model_id, end='')"
    )
    opened = next(
        m
        for m in a.received
        if m["header"]["msg_type"] == "comm_open" and m["content"]["comm_id"] == comm_id
    )
    assert opened["buffers"] == [bytes(range(256))]  # a binary frame, then decoded
    # jupyter_server's gateway client forwards a front end's binary message in a
    # text frame, invalid UTF-8 and all: it is read by its layout.
    data = {"method": "update", "state": {}, "buffer_paths": [["value"]]}
    update = a.message("comm_msg", {"comm_id": comm_id, "data": data}, buffers=[b"\xff\x00"])
    frame = codec.encode(update, "shell")
    assert isinstance(frame, bytes)
    await a.ws.send(frame, text=True)
    assert await a.run("print(bytes(img.value))") == "b'\\xff\\x00'\n"
    assert _room(web, kernel_id).comms.state.get(comm_id).buffers == {("value",): b"\xff\x00"}


async def _request_states(sock: KernelSocket) -> dict[str, Any]:
    control_id = sock.session + "-control"
    opened = sock.message(
        "comm_open",
        {"comm_id": control_id, "target_name": "jupyter.widget.control", "data": {}},
        metadata={"version": "1.0.0"},
    )
    await sock.send("shell", opened)
    request = {"comm_id": control_id, "data": {"method": "request_states"}}
    await sock.send("shell", sock.message("comm_msg", request))
    reply = await sock.until(
        lambda m: (
            m["content"].get("comm_id") == control_id
            and m["header"]["msg_type"] in ("comm_msg", "comm_close")
        )
    )
    await sock.send("shell", sock.message("comm_close", {"comm_id": control_id, "data": {}}))
    return reply


async def test_request_states_is_answered_while_the_kernel_sleeps(
    web: WebDaemon, kernel_id: str, sockets: Opener
) -> None:
    a = await sockets(kernel_id)
    comm_id = await a.run(SLIDER + "\ns.value = 7")
    # A kernel the daemon started, nothing lost: CommState is the kernel's truth.
    assert _room(web, kernel_id).comms_verified()
    first = await _request_states(a)
    assert first["content"]["data"]["states"][comm_id]["state"]["value"] == 7

    sleeping = await a.execute("import time; time.sleep(60)")
    await a.until(
        lambda m: (
            m["header"]["msg_type"] == "execute_input"
            and m["parent_header"].get("msg_id") == sleeping
        )
    )
    reloaded = await sockets(kernel_id)  # a page reloaded meanwhile
    reply = await _request_states(reloaded)
    state = reply["content"]["data"]["states"][comm_id]
    assert state["model_name"] == "IntSliderModel"
    assert state["state"]["value"] == 7
    assert reply["parent_header"]["session"] == reloaded.session
    # Answered while the kernel still sleeps: the sleep's idle, which would
    # have come first on this socket, has not come.
    assert not any(is_idle(m, sleeping) for m in reloaded.received)
    assert sleeping in _room(web, kernel_id).router.executions
    await _api(web, "POST", f"/api/kernels/{kernel_id}/interrupt", {})
    await a.until(lambda m: is_idle(m, sleeping), timeout=30)


async def test_a_front_ends_burst_ends_its_execution_and_is_reconciled(
    web: WebDaemon, kernel_id: str, sockets: Opener
) -> None:
    """The execute_reply goes to the front end that asked, and the room sees it too:
    the execution ends, and a burst is reconciled at once (so a page reloaded later
    gets its widgets from CommState without waiting on the kernel)."""
    room = _room(web, kernel_id)
    a = await sockets(kernel_id)
    burst = room.settings.reconcile_threshold + 100
    comm_id = await a.run(SLIDER + f"\nfor i in range({burst}):\n    s.value = i")
    await eventually(lambda: not room.router.executions and room.comms_verified())
    (entry,) = [e for e in room.comms.state.get_all() if e.comm_id == comm_id]
    assert entry.state["value"] == burst - 1


LOSE_AN_UPDATE = """
s.comm.send = lambda *args, **kwargs: None  # the change below never reaches IOPub
s.value = 9
k = get_ipython().kernel
stray = {"comm_id": "never-opened", "data": {"method": "update", "state": {}}}
k.session.send(k.iopub_socket, "comm_msg", stray)  # the daemon now suspects a loss
import time
time.sleep(3)
"""


async def test_after_a_suspected_loss_the_kernel_is_asked_and_front_ends_corrected(
    web: WebDaemon, kernel_id: str, sockets: Opener
) -> None:
    a = await sockets(kernel_id)
    comm_id = await a.run(SLIDER)
    room = _room(web, kernel_id)
    lossy = await a.execute(LOSE_AN_UPDATE)
    await eventually(lambda: not room.comms_verified())
    assert room.comms.state.get(comm_id).state["value"] == 3  # stale, and known to be
    # A page loaded now is not answered from CommState: the kernel is asked (once
    # its cell is done) and its answer is the truth.
    b = await sockets(kernel_id)
    reply = await _request_states(b)
    assert reply["content"]["data"]["states"][comm_id]["state"]["value"] == 9
    assert any(is_idle(m, lossy) for m in b.received)  # after the busy cell
    # The reconcile's correction reached the front end that was already open.
    correction = await a.until(lambda m: _comm_value(m, comm_id) == 9)
    assert correction["content"]["data"]["method"] == "update"
    assert room.comms.state.get(comm_id).state["value"] == 9
    assert room.comms_verified()
    # The daemon's own reconcile traffic (its control comm) was not relayed.
    methods = [(m["content"].get("data") or {}).get("method") for m in a.received]
    assert "update_states" not in methods


async def test_a_lagging_front_end_ends_at_the_kernels_value(
    web: WebDaemon, kernel_id: str, sockets: Opener
) -> None:
    updates = 20_000
    fast, slow = await sockets(kernel_id), await sockets(kernel_id)
    comm_id = await fast.run(SLIDER)
    burst = await fast.execute(f"for i in range({updates}):\n    s.value = i")
    await fast.until(lambda m: is_idle(m, burst), timeout=120)
    # `slow` read nothing during the burst; now it reads everything that was kept.
    await slow.until(lambda m: is_idle(m, burst), timeout=120)
    values = [v for m in slow.received if (v := _comm_value(m, comm_id)) is not None]
    print(f"lagging front end: {len(values)} update messages for {updates} updates")
    assert values[-1] == updates - 1
    assert values == sorted(values)  # merged, never reordered
    fast_values = [v for m in fast.received if (v := _comm_value(m, comm_id)) is not None]
    assert fast_values[-1] == updates - 1
    kinds = {m["header"]["msg_type"] for m in slow.received}
    assert {"execute_input", "status", "stream"} <= kinds  # nothing else dropped


async def test_a_kernel_that_dies_says_so_and_leaves_others_alone(
    web: WebDaemon, kernel_id: str, sockets: Opener
) -> None:
    other = await _api(web, "POST", "/api/kernels", {})
    a, b = await sockets(kernel_id), await sockets(other["id"])
    await a.execute("import os; os._exit(1)")
    await a.until(
        lambda m: m["header"]["msg_type"] == "status" and m["content"]["execution_state"] == "dead"
    )
    model = await _api(web, "GET", f"/api/kernels/{kernel_id}")
    assert model["execution_state"] == "dead"
    assert await b.run("print('still here')") == "still here\n"
    # JupyterLab's restart button: a new process behind the same id and WebSocket.
    model = await _api(web, "POST", f"/api/kernels/{kernel_id}/restart", {})
    assert model["execution_state"] == "idle"
    assert await a.run("print('again')") == "again\n"
    await _api(web, "DELETE", f"/api/kernels/{other['id']}")
