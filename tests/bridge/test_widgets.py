"""Real ipykernel + real ipywidgets through the daemon: CommState and the doc always agree."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from runtimed.client import ClientError
from tests.bridge.conftest import NOTEBOOK
from tests.bridge.helpers import (
    assert_doc_matches_comm_state,
    doc_comms,
    kernel_widgets,
    resolved_doc_comms,
    run,
    wire_comms,
)

pytestmark = pytest.mark.kernel


def model(comms: dict[str, dict], name: str) -> list[tuple[str, dict]]:
    return [(cid, c) for cid, c in comms.items() if c["model_name"] == name]


async def test_widget_kinds_mirror_into_the_doc_and_comm_sync(pair, running) -> None:
    actor, observer = pair
    await run(actor, "from ipywidgets import *\ns = IntSlider(value=3, max=10)\ns")
    legacy = await assert_doc_matches_comm_state(observer, actor)
    [(slider_id, slider)] = model(legacy, "IntSliderModel")
    assert slider["state"]["value"] == 3
    assert slider["target_name"] == "jupyter.widget"
    assert slider["model_module"] == "@jupyter-widgets/controls"

    await run(actor, "b = Button(description='go'); d = Dropdown(options=['a', 'b'], value='b')")
    await run(actor, "h = HBox([s, b])")
    legacy = await assert_doc_matches_comm_state(observer, actor)
    [(_, hbox)] = model(legacy, "HBoxModel")
    assert hbox["state"]["children"] == [
        f"IPY_MODEL_{slider_id}",
        f"IPY_MODEL_{_only(legacy, 'ButtonModel')}",
    ]
    [(_, dropdown)] = model(legacy, "DropdownModel")
    assert dropdown["state"]["index"] == 1
    # seq follows open order, so children come before the box that holds them.
    assert legacy[slider_id]["seq"] < hbox["seq"]

    await run(actor, "s.value = 7; d.value = 'a'")
    legacy = await assert_doc_matches_comm_state(observer, actor)
    assert legacy[slider_id]["state"]["value"] == 7

    # The kernel's own registry agrees with both stores.
    truth = await kernel_widgets(actor)
    for comm_id, comm in legacy.items():
        if comm["target_name"] == "jupyter.widget":
            for key, value in truth[comm_id].items():
                if key not in ("outputs",):
                    assert comm["state"].get(key) == value, (comm_id, key)

    # A late joiner's comm_sync equals CommState.
    async with running.client(NOTEBOOK) as late:
        assert wire_comms(late.comms_from_sync or []) == wire_comms(
            (await actor.request("get_comms"))["comms"]
        )
        assert await resolved_doc_comms(late) == legacy


def _only(comms: dict[str, dict], name: str) -> str:
    [(comm_id, _)] = model(comms, name)
    return comm_id


async def test_custom_comm_target_is_mirrored(pair) -> None:
    actor, observer = pair
    await run(
        actor,
        "from ipykernel.comm import Comm\n"
        "c = Comm(target_name='my.target', data={'state': {'answer': 42}})\n"
        "c.send({'method': 'update', 'state': {'answer': 43, 'extra': [1, 2]}})\n"
        "c.send({'method': 'custom', 'content': {'ping': 1}})",
    )
    legacy = await assert_doc_matches_comm_state(observer, actor)
    [(comm_id, comm)] = list(legacy.items())
    assert comm["target_name"] == "my.target"
    assert (comm["model_module"], comm["model_name"]) == ("", "")
    assert comm["state"] == {"answer": 43, "extra": [1, 2]}
    customs = [
        e
        for e in observer.broadcasts
        if e.event == "comm" and e.fields["content"].get("data", {}).get("method") == "custom"
    ]
    assert len(customs) == 1
    assert customs[0].fields["content"]["comm_id"] == comm_id


async def test_close_removes_the_comm_from_both_stores(pair) -> None:
    actor, observer = pair
    await run(actor, "from ipywidgets import IntSlider, Button\na = IntSlider(); b = Button()")
    legacy = await assert_doc_matches_comm_state(observer, actor)
    assert len(legacy) == 6  # two widgets, each with its Layout and its Style
    await run(actor, "a.close()")
    legacy_after = await assert_doc_matches_comm_state(observer, actor)
    assert _only(legacy, "IntSliderModel") not in legacy_after


@pytest.mark.parametrize("how", ["restart_kernel", "shutdown_kernel", "sigkill"])
async def test_restart_shutdown_and_death_clear_both_stores(running, how: str) -> None:
    async with running.client("nb-clear") as actor, running.client("nb-clear") as observer:
        await actor.request("launch_kernel")
        await run(
            actor, "from ipywidgets import IntSlider\ns = IntSlider()\nimport os; pid = os.getpid()"
        )
        await observer.wait_for(lambda c: len(doc_comms(c)) >= 2, what="widgets in doc")
        before = len(observer.broadcasts)
        if how == "sigkill":
            pid = int(await _kernel_pid(actor))
            os.kill(pid, signal.SIGKILL)
        else:
            await actor.request(how)
        await observer.wait_for(
            lambda c: any(
                e.event == "comm_sync" and e.fields["comms"] == []
                for e in list(c.broadcasts)[before:]
            ),
            30,
            "empty comm_sync",
        )
        await observer.wait_for(lambda c: doc_comms(c) == {}, what="doc comms cleared")
        assert (await actor.request("get_comms"))["comms"] == []
        expected = {
            "restart_kernel": "restarting",
            "shutdown_kernel": "shutdown",
            "sigkill": "dead",
        }
        statuses = [
            e.fields["status"]
            for e in list(observer.broadcasts)[before:]
            if e.event == "kernel_status"
        ]
        assert expected[how] in statuses
        if how == "restart_kernel":
            await run(actor, "from ipywidgets import IntSlider\nt = IntSlider(value=5)")
            await observer.wait_for(
                lambda c: len(doc_comms(c)) >= 2, what="new widgets after restart"
            )
            await actor.request("shutdown_kernel")
        else:
            # The room stays usable: a new kernel can be launched.
            await actor.request("launch_kernel")
            await run(actor, "1 + 1")
            await actor.request("shutdown_kernel")


async def _kernel_pid(client) -> str:
    from tests.bridge.helpers import run_cell

    outputs = await run_cell(client, "import os; print(os.getpid())")
    return "".join(o.get("text", "") for o in outputs).strip()


async def test_late_joiner_after_1000_updates_sees_final_state_from_doc_alone(
    pair, running
) -> None:
    actor, _observer = pair
    await run(
        actor,
        "from ipywidgets import IntSlider\n"
        "s = IntSlider(max=10**9)\n"
        "for i in range(1, 1001): s.value = i",
    )
    async with running.client(NOTEBOOK, snapshot=True) as late:
        [(_, slider)] = model(doc_comms(late), "IntSliderModel")
        assert slider["state"]["value"] == 1000


async def test_send_comm_moves_the_slider_in_the_kernel_and_everyone_sees_it_once(pair) -> None:
    actor, observer = pair
    await run(actor, "from ipywidgets import IntSlider\ns = IntSlider(max=100)")
    legacy = await assert_doc_matches_comm_state(observer, actor)
    slider_id = _only(legacy, "IntSliderModel")
    before = len(observer.broadcasts)
    await observer.request(
        "send_comm",
        comm_id=slider_id,
        data={"method": "update", "state": {"value": 42}, "buffer_paths": []},
    )
    truth = await kernel_widgets(actor)
    assert truth[slider_id]["value"] == 42
    legacy = await assert_doc_matches_comm_state(observer, actor)
    assert legacy[slider_id]["state"]["value"] == 42
    for client in (actor, observer):
        updates = [
            e
            for e in list(client.broadcasts)[before:]
            if e.event == "comm"
            and e.fields["content"].get("comm_id") == slider_id
            and e.fields["content"]["data"].get("state", {}).get("value") == 42
        ]
        assert len(updates) == 1, updates


async def test_a_refused_send_comm_has_its_code_and_changes_no_store(pair) -> None:
    """A malformed send_comm is bad_comm_message, not internal_error, and leaves
    CommState, the doc and the kernel as they were."""
    actor, observer = pair
    await run(actor, "from ipywidgets import IntSlider\ns = IntSlider(value=7)")
    slider_id = _only(await assert_doc_matches_comm_state(observer, actor), "IntSliderModel")
    bad = [
        {"method": "update", "state": [1, 2]},
        {"method": "update", "state": {"value": 9}, "buffer_paths": [["x"]]},
    ]
    for data in bad:
        with pytest.raises(ClientError) as refused:
            await actor.request("send_comm", comm_id=slider_id, data=data)
        assert refused.value.code == "bad_comm_message", refused.value
    legacy = await assert_doc_matches_comm_state(observer, actor)
    assert legacy[slider_id]["state"]["value"] == 7
    assert (await kernel_widgets(actor))[slider_id]["value"] == 7


async def test_execute_during_a_restart_is_kernel_restarting(pair) -> None:
    """A KernelError from the kernel reaches the client with its own code."""
    actor, observer = pair
    restart = asyncio.ensure_future(actor.request("restart_kernel"))
    try:
        await observer.wait_for(
            lambda c: any(
                e.event == "kernel_status" and e.fields["status"] == "restarting"
                for e in c.broadcasts
            ),
            30,
        )
        with pytest.raises(ClientError) as refused:
            await observer.request("execute", code="1")
        assert refused.value.code == "kernel_restarting", refused.value
    finally:
        await restart


async def test_burst_of_20000_updates_ends_at_the_kernel_value(running, unbounded_kernel) -> None:
    async with running.client("nb-burst") as actor, running.client("nb-burst") as observer:
        await actor.request("launch_kernel", kernel_name=unbounded_kernel)
        try:
            await _burst(actor, observer, running)
        finally:
            await actor.request("shutdown_kernel")


async def _burst(actor, observer, running) -> None:
    code = (
        "from ipywidgets import IntSlider\n"
        "w = IntSlider(max=10**9)\n"
        "for i in range(1, 20001): w.value = i"
    )
    await run(actor, code, timeout=120)
    legacy = await assert_doc_matches_comm_state(observer, actor)
    slider_id = _only(legacy, "IntSliderModel")
    assert legacy[slider_id]["state"]["value"] == 20000
    room = running.daemon.rooms["nb-burst"]
    # Every comm message the kernel sent was counted: the open, its Layout and Style
    # (and their opens' updates), and the 20,000 value updates.
    assert room.kernel_binding.router.stats.comm_messages >= 20000
    # A second client got every update as a live comm broadcast, in kernel order.
    values = [
        e.fields["content"]["data"]["state"]["value"]
        for e in observer.broadcasts
        if e.event == "comm"
        and e.fields["content"].get("comm_id") == slider_id
        and "value" in e.fields["content"].get("data", {}).get("state", {})
    ]
    assert values[-20000:] == list(range(1, 20001))
    # Coalescing: far fewer doc changes than updates.
    assert room.coalescer.flushes < 5000


async def test_malformed_kernel_messages_are_skipped(pair, running) -> None:
    actor, observer = pair
    await run(actor, "from ipywidgets import IntSlider\ns = IntSlider(value=1)")
    legacy = await assert_doc_matches_comm_state(observer, actor)
    room = running.daemon.rooms[NOTEBOOK]
    slider_id = _only(legacy, "IntSliderModel")
    bad = [
        {
            "msg_type": "comm_open",
            "header": {"msg_type": "comm_open"},
            "parent_header": {},
            "content": {"target_name": "jupyter.widget", "data": {"state": {}}},
            "buffers": [],
        },
        {
            "msg_type": "comm_msg",
            "header": {"msg_type": "comm_msg"},
            "parent_header": {},
            "content": {"comm_id": slider_id, "data": {"method": "update", "state": [1, 2]}},
            "buffers": [],
        },
        {
            "msg_type": "comm_msg",
            "header": {"msg_type": "comm_msg"},
            "parent_header": {},
            "content": {
                "comm_id": "no-such-comm",
                "data": {"method": "update", "state": {"value": 9}},
            },
            "buffers": [],
        },
        {
            "msg_type": "comm_close",
            "header": {"msg_type": "comm_close"},
            "parent_header": {},
            "content": {},
        },
        {
            "msg_type": "status",
            "header": {"msg_type": "status"},
            "parent_header": {},
            "content": {},
        },
    ]
    skipped = room.kernel_binding.router.stats.skipped
    for msg in bad:
        room.kernel_binding.router.route(msg)
    assert room.kernel_binding.router.stats.skipped >= skipped + 4
    assert await assert_doc_matches_comm_state(observer, actor) == legacy


async def test_attached_kernel_works_the_same(running, external_kernel) -> None:
    async with running.client("nb-attach") as actor, running.client("nb-attach") as observer:
        await actor.request("attach_kernel", connection_file=external_kernel.connection_file)
        await run(actor, "from ipywidgets import IntSlider\ns = IntSlider(value=4)\ns.value = 5")
        legacy = await assert_doc_matches_comm_state(observer, actor)
        [(_, slider)] = model(legacy, "IntSliderModel")
        assert slider["state"]["value"] == 5
        # Detaching leaves someone else's kernel running.
        await actor.request("shutdown_kernel")
        assert await external_kernel.is_alive()
