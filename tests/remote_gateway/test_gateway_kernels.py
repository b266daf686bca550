"""Kernels on Jupyter Enterprise Gateway: the bridge's essentials through its API.

The daemon launches through the gateway's REST API and bridges the kernel over its
WebSocket; widgets, Output capture, send_comm, restart, interrupt, a dropped
connection and a gateway that dies behave as they do for a local kernel, or fail
with a code that says what happened.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from typing import Any

import pytest

from runtimed.client import ClientError
from runtimed.config import Settings
from runtimed.kernel.gateway_transport import GatewayTransport
from tests.bridge.helpers import (
    assert_doc_matches_comm_state,
    doc_comms,
    done,
    kernel_widgets,
    only,
    run,
    run_cell,
)
from tests.conftest import RunningDaemon, eventually
from tests.remote_gateway.conftest import NOTEBOOK, gateway_settings
from tests.remote_gateway.enterprise_gateway import EnterpriseGateway, free_port
from tests.remote_gateway.tcp_proxy import TcpProxy

pytestmark = pytest.mark.kernel


def statuses(client: Any, since: int = 0) -> list[dict]:
    return [e.fields for e in list(client.broadcasts)[since:] if e.event == "kernel_status"]


def emptied(client: Any, since: int) -> bool:
    return any(
        e.event == "comm_sync" and e.fields["comms"] == [] for e in list(client.broadcasts)[since:]
    )


@pytest.mark.timeout(300)
async def test_the_kernel_runs_on_the_gateway_and_its_widgets_equal_the_kernels(
    remote, enterprise_gateway
) -> None:
    """Launched through POST /api/kernels, reached over the WebSocket: a burst of
    updates ends with CommState, the doc and ipywidgets' own registry equal."""
    async with remote.client(NOTEBOOK) as actor, remote.client(NOTEBOOK) as observer:
        # A kernel whose IOPub never drops: the gateway reads it slower than we do.
        await actor.request("launch_kernel", kernel_name="unbounded")
        try:
            await _burst_equals_registry(remote, enterprise_gateway, actor, observer)
        finally:
            await actor.request("shutdown_kernel")


async def _burst_equals_registry(remote, enterprise_gateway, actor, observer) -> None:
    room = remote.daemon.rooms[NOTEBOOK]
    assert isinstance(room.kernel._transport, GatewayTransport)
    assert enterprise_gateway.kernel_ids() == [room.kernel._process.remote_id]
    await run(
        actor,
        "from ipywidgets import IntSlider, Text\n"
        "s = IntSlider(max=10**9); t = Text()\n"
        "for i in range(1, 3001):\n"
        "    s.value = i\n"
        "    t.value = str(i)",
        timeout=120,
    )
    legacy = await assert_doc_matches_comm_state(observer, actor)
    truth = await kernel_widgets(actor)
    assert set(truth) == set(legacy)
    for comm_id, state in truth.items():
        assert {k: v for k, v in legacy[comm_id]["state"].items() if k in state} == state
    assert truth[only(legacy, "IntSliderModel")]["value"] == 3000


async def test_output_widget_capture_and_send_comm(remote_pair) -> None:
    actor, observer = remote_pair
    await run(actor, "from ipywidgets import Output, IntSlider\nout = Output(); s = IntSlider()")
    cell = await run_cell(actor, "with out:\n    print('inside')\nprint('cell')")
    assert [o["text"] for o in cell] == ["cell\n"]
    legacy = await assert_doc_matches_comm_state(observer, actor)
    out_id, slider_id = only(legacy, "OutputModel"), only(legacy, "IntSliderModel")
    assert [o["text"] for o in legacy[out_id]["state"]["outputs"]] == ["inside\n"]
    await observer.request(
        "send_comm",
        comm_id=slider_id,
        data={"method": "update", "state": {"value": 42}, "buffer_paths": []},
    )
    truth = await kernel_widgets(actor)
    assert truth[slider_id]["value"] == 42
    assert [o["text"] for o in truth[out_id]["outputs"]] == ["inside\n"]
    legacy = await assert_doc_matches_comm_state(observer, actor)
    assert legacy[slider_id]["state"]["value"] == 42


async def test_interrupt_and_restart_go_through_the_gateway(remote_pair, remote) -> None:
    actor, observer = remote_pair
    remote_id = remote.daemon.rooms[NOTEBOOK].kernel._process.remote_id
    await run(actor, "from ipywidgets import IntSlider\ns = IntSlider()")
    await observer.wait_for(lambda c: len(doc_comms(c)) >= 2, what="widgets in the doc")
    cell_id = actor.doc.add_cell(
        source="import time\nprint('sleeping', flush=True)\ntime.sleep(120)"
    )
    await actor.wait_synced()
    msg_id = (await actor.request("execute_cell", cell_id=cell_id))["msg_id"]
    await actor.wait_for(lambda c: c.doc.get_outputs(cell_id), 30, "the cell running")
    await actor.request("interrupt_kernel")
    await actor.wait_for(lambda c: done(c, msg_id), 30, "the interrupted cell ending")
    [ended] = [
        e.fields
        for e in actor.broadcasts
        if e.event == "execution_done" and e.fields["msg_id"] == msg_id
    ]
    assert ended["status"] == "error", ended

    before = len(observer.broadcasts)
    await actor.request("restart_kernel")
    await observer.wait_for(lambda c: emptied(c, before), 30, "an empty comm_sync")
    assert doc_comms(observer) == {}
    assert "restarting" in [s["status"] for s in statuses(observer, before)]
    # The same kernel on the gateway, restarted: a fresh process without widgets.
    assert remote.daemon.rooms[NOTEBOOK].kernel._process.remote_id == remote_id
    assert await kernel_widgets(actor) == {}
    await run(actor, "from ipywidgets import IntSlider\nt = IntSlider(value=5)")
    await observer.wait_for(lambda c: len(doc_comms(c)) >= 2, what="widgets after the restart")


@pytest.mark.timeout(300)
async def test_a_dropped_websocket_reconnects_and_the_room_ends_at_the_kernels_state(
    settings: Settings, enterprise_gateway: EnterpriseGateway
) -> None:
    """The network between daemon and gateway is cut in the middle of a widget burst
    (bytes in flight are lost); the daemon reconnects, the kernel keeps running, and a
    reconcile once the kernel is idle brings the room to the kernel's widgets."""
    proxy = await TcpProxy(enterprise_gateway.port).start()
    url = f"http://127.0.0.1:{proxy.port}"
    # Only the reconnect may ask for a reconcile, not the burst's size.
    no_burst_reconcile = dataclasses.replace(settings, reconcile_threshold=10**9)
    running = RunningDaemon(gateway_settings(no_burst_reconcile, url, enterprise_gateway.token))
    await running.start()
    try:
        async with running.client("nb-drop") as actor, running.client("nb-drop") as observer:
            await actor.request("launch_kernel", kernel_name="unbounded")
            room = running.daemon.rooms["nb-drop"]
            reasons: list[str] = []
            binding = room.kernel_binding
            schedule = binding.schedule_reconcile
            binding.schedule_reconcile = lambda reason: (reasons.append(reason), schedule(reason))
            await run(actor, "from ipywidgets import IntSlider\ns = IntSlider(max=10**9)")
            slider_id = only(await assert_doc_matches_comm_state(observer, actor), "IntSliderModel")
            connections = proxy.accepted
            code = "import time\nfor i in range(1, 20001):\n    s.value = i\ntime.sleep(0.5)"
            msg_id = (await actor.request("execute", code=code))["msg_id"]

            def moving(client: Any) -> bool:
                comm = client.doc.get_comm(slider_id)
                return comm is not None and comm.state.get("value", 0) >= 100

            await observer.wait_for(moving, 60, "the burst under way")
            proxy.drop()
            await actor.wait_for(lambda c: done(c, msg_id), 120, "the burst's end")
            await eventually(lambda: any("regained" in r for r in reasons), what="a reconcile")
            assert proxy.accepted > connections  # a new WebSocket, the same kernel
            truth = await kernel_widgets(actor)
            assert truth[slider_id]["value"] == 20000
            legacy = await assert_doc_matches_comm_state(observer, actor)
            assert legacy[slider_id]["state"]["value"] == 20000
            assert "dead" not in [s["status"] for s in statuses(observer)]
            await actor.request("shutdown_kernel")
    finally:
        await running.stop()
        await proxy.aclose()


async def test_a_gateway_killed_mid_session_is_gateway_unreachable(
    settings: Settings, own_gateway: EnterpriseGateway
) -> None:
    running = RunningDaemon(gateway_settings(settings, own_gateway.url, own_gateway.token))
    await running.start()
    try:
        async with running.client("nb-kill") as actor, running.client("nb-kill") as observer:
            await actor.request("launch_kernel")
            await run(actor, "from ipywidgets import IntSlider\ns = IntSlider()")
            await observer.wait_for(lambda c: len(doc_comms(c)) >= 2, what="widgets in the doc")
            before = len(observer.broadcasts)
            own_gateway.kill()
            await observer.wait_for(
                lambda c: any(s["status"] == "dead" for s in statuses(c, before)), 30, "dead"
            )
            [dead] = [s for s in statuses(observer, before) if s["status"] == "dead"]
            assert dead["code"] == "gateway_unreachable", dead
            assert own_gateway.url in dead["reason"]
            errors = [e.fields for e in list(observer.broadcasts)[before:] if e.event == "error"]
            assert [e["code"] for e in errors] == ["gateway_unreachable"]
            assert emptied(observer, before)
            assert (await actor.request("get_comms"))["comms"] == []
            with pytest.raises(ClientError) as refused:
                await actor.request("execute", code="1")
            assert refused.value.code == "no_kernel"
            # A launch against the dead gateway says so at once, with the same code.
            with pytest.raises(ClientError) as refused:
                await actor.request("launch_kernel")
            assert refused.value.code == "gateway_unreachable"
    finally:
        await running.stop()


@pytest.mark.parametrize(
    "problem", ["wrong_token", "no_such_kernelspec", "nobody_listening", "no_answer"]
)
async def test_a_refused_launch_has_a_gateway_code_and_a_dead_kernel_status(
    settings: Settings, enterprise_gateway: EnterpriseGateway, problem: str
) -> None:
    url, token, kernel_name = enterprise_gateway.url, enterprise_gateway.token, "python3"
    # A server that accepts connections and never answers (a hung gateway).
    held: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda _r, writer: held.append(writer), "127.0.0.1", 0)
    if problem == "wrong_token":
        token = "not-the-token-" + token
    elif problem == "no_such_kernelspec":
        kernel_name = "no-such-kernelspec"
    elif problem == "nobody_listening":
        url = f"http://127.0.0.1:{free_port()}"
    else:
        url = f"http://127.0.0.1:{silent.sockets[0].getsockname()[1]}"
    expected = {
        "nobody_listening": "gateway_unreachable",
        "no_answer": "gateway_timeout",
    }.get(problem, "gateway_error")
    patient = dataclasses.replace(
        gateway_settings(settings, url, token), gateway_timeout=10, kernel_startup_timeout=2
    )
    running = RunningDaemon(patient)
    await running.start()
    try:
        async with running.client("nb-refused") as client:
            with pytest.raises(ClientError) as refused:
                await client.request("launch_kernel", kernel_name=kernel_name)
            assert refused.value.code == expected, refused.value
            await client.wait_for(lambda c: c.kernel_status == "dead", 10, "kernel_status dead")
            assert statuses(client)[-1]["code"] == expected
            # The daemon and the room go on.
            client.doc.add_cell(source="still editable")
            await client.wait_synced()
    finally:
        await running.stop()
        for writer in held:
            writer.close()
        silent.close()
        await silent.wait_closed()


async def test_a_kernel_killed_behind_the_gateway_is_dead_with_its_comms_cleared(
    remote_pair,
) -> None:
    """The gateway notices the death (and may start a fresh process): the kernel the
    room knew, with its widgets, is gone, as a local kernel's SIGKILL would say."""
    actor, observer = remote_pair
    await run(actor, "from ipywidgets import IntSlider\ns = IntSlider()")
    await observer.wait_for(lambda c: len(doc_comms(c)) >= 2, what="widgets in the doc")
    [pid_output] = await run_cell(actor, "import os; print(os.getpid())")
    before = len(observer.broadcasts)
    os.kill(int(pid_output["text"]), signal.SIGKILL)
    await observer.wait_for(
        lambda c: any(s["status"] == "dead" for s in statuses(c, before)), 30, "dead"
    )
    [dead] = [s for s in statuses(observer, before) if s["status"] == "dead"]
    assert dead["code"] == "kernel_died", dead
    assert dead["reason"].startswith("the gateway reports"), dead
    assert emptied(observer, before)
    assert doc_comms(observer) == {}
    # A new kernel launches on the same gateway (the old one is deleted there).
    await actor.request("launch_kernel")
    await run(actor, "1 + 1")
