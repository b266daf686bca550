"""Reconcile: CommState and the doc end at the kernel's own widget state."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import pytest
from jupyter_client.manager import AsyncKernelManager

from tests.bridge.helpers import (
    assert_doc_matches_comm_state,
    kernel_widgets,
    run,
)
from tests.conftest import RunningDaemon

pytestmark = pytest.mark.kernel

WIDGETS_BEFORE_ATTACH = """
from ipywidgets import IntSlider, HBox, Button, Output
s = IntSlider(value=7, max=50)
box = HBox([IntSlider(value=1), Button(description='b')])
out = Output()
out.append_stdout('made before attach\\n')
s.value = 9
"""


def assert_states_match_kernel(legacy: dict[str, dict], truth: dict[str, dict]) -> None:
    widgets = {cid: c for cid, c in legacy.items() if c["target_name"] == "jupyter.widget"}
    assert set(widgets) == set(truth)
    for comm_id, state in truth.items():
        assert widgets[comm_id]["state"] == state, comm_id


async def test_attach_shows_widgets_made_before_the_daemon_arrived(
    running: RunningDaemon, external_kernel: AsyncKernelManager
) -> None:
    manager = external_kernel
    kc = manager.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        reply = await kc.execute_interactive(WIDGETS_BEFORE_ATTACH, timeout=60)
        assert reply["content"]["status"] == "ok"
        async with running.client("nb-attach-late") as actor:
            result = await actor.request("attach_kernel", connection_file=manager.connection_file)
            assert result["available"] is True
            assert result["added"] >= 8  # 4 widgets, their layouts and styles
            async with running.client("nb-attach-late") as late:
                legacy = await assert_doc_matches_comm_state(late, actor, timeout=1)
                synced = {c["comm_id"] for c in late.comms_from_sync or []}
                assert synced == set(legacy)
                truth = await kernel_widgets(actor)
                assert_states_match_kernel(legacy, truth)
                # Children open before the boxes that hold them.
                seq = {cid: c["seq"] for cid, c in legacy.items()}
                [box] = [c for c in legacy.values() if c["model_name"] == "HBoxModel"]
                for child in box["state"]["children"]:
                    assert seq[child.removeprefix("IPY_MODEL_")] < box["seq"]
                [out] = [c for c in legacy.values() if c["model_name"] == "OutputModel"]
                assert out["state"]["outputs"][0]["text"] == "made before attach\n"
            await actor.request("shutdown_kernel")  # detach; the kernel is not ours
    finally:
        kc.stop_channels()


async def test_reconciling_an_unchanged_room_adds_no_doc_change(running: RunningDaemon) -> None:
    async with running.client("nb-same") as actor, running.client("nb-same") as observer:
        await actor.request("launch_kernel")
        await run(actor, "from ipywidgets import IntSlider, HBox\nh = HBox([IntSlider()])")
        await assert_doc_matches_comm_state(observer, actor)
        room = running.daemon.rooms["nb-same"]
        heads = room.doc.get_heads()
        result = await actor.request("resync")
        assert result == {"available": True, "added": 0, "updated": 0, "removed": 0}
        assert room.doc.get_heads() == heads
        assert room.kernel_binding.reconciles == 0
        await actor.request("shutdown_kernel")


async def test_reconcile_repairs_what_the_daemon_missed(running: RunningDaemon) -> None:
    async with running.client("nb-repair") as actor, running.client("nb-repair") as observer:
        await actor.request("launch_kernel")
        await run(
            actor, "from ipywidgets import IntSlider\na = IntSlider(value=1)\nb = IntSlider()"
        )
        legacy = await assert_doc_matches_comm_state(observer, actor)
        room = running.daemon.rooms["nb-repair"]
        a_id, b_id = sorted(
            (c["seq"], cid) for cid, c in legacy.items() if c["model_name"] == "IntSliderModel"
        )
        # Simulate lost messages: an update never seen, a close never seen, an open never seen.
        room.comms.state.get(a_id[1]).state["value"] = 999
        room.comms.state.on_comm_close(b_id[1])
        room.comms.state.on_comm_open("ghost", "jupyter.widget", {"state": {"value": 1}})
        result = await actor.request("resync")
        assert result["available"] is True
        assert (result["added"], result["updated"], result["removed"]) == (1, 1, 1)
        legacy = await assert_doc_matches_comm_state(observer, actor)
        assert_states_match_kernel(legacy, await kernel_widgets(actor))
        await actor.request("shutdown_kernel")


@pytest.mark.slow
async def test_a_100000_update_burst_under_load_ends_at_the_kernel_state(
    running: RunningDaemon,
) -> None:
    burners = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", "while True: pass")
        for _ in range(2)
    ]
    try:
        async with running.client("nb-load") as actor, running.client("nb-load") as observer:
            await actor.request("launch_kernel")
            await run(
                actor,
                "from ipywidgets import IntSlider\nw = IntSlider(max=10**9)\n"
                "for i in range(1, 100001): w.value = i",
                timeout=240,
            )
            truth = await kernel_widgets(actor)  # queued behind the burst's reconcile
            legacy = await assert_doc_matches_comm_state(observer, actor, timeout=60)
            assert_states_match_kernel(legacy, truth)
            [slider] = [c for c in legacy.values() if c["model_name"] == "IntSliderModel"]
            assert slider["state"]["value"] == 100000
            await actor.request("shutdown_kernel")
    finally:
        for burner in burners:
            burner.kill()
            await burner.wait()


async def test_a_kernel_without_ipywidgets_is_bridged_quietly(
    running: RunningDaemon, make_kernelspec: Callable[..., str]
) -> None:
    name = make_kernelspec(
        "no-widgets",
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['ipywidgets'] = None\n"
            "from ipykernel.kernelapp import launch_new_instance; launch_new_instance()",
            "-f",
            "{connection_file}",
        ],
    )
    async with running.client("nb-plain") as actor:
        await actor.request("launch_kernel", kernel_name=name)
        result = await actor.request("resync")
        assert result["available"] is False
        assert "control" in result["reason"]
        await run(actor, "x = 1 + 1")
        assert [e for e in actor.broadcasts if e.event == "error"] == []
        assert (await actor.request("get_comms"))["comms"] == []
        await actor.request("shutdown_kernel")


async def test_a_fresh_kernel_sees_no_comm_traffic_until_it_uses_widgets(
    running: RunningDaemon,
) -> None:
    """The control comm opens only once the kernel uses ipywidgets: before that the
    kernel handles no comm message from the daemon (nothing to log to its stderr)."""
    async with running.client("nb-quiet") as actor:
        room = running.daemon.rooms["nb-quiet"]
        answers: list[tuple[str, str]] = []  # (IOPub msg_type, the request it answers)
        route = room.kernel_binding.router.route

        def record(msg: dict) -> list:
            answers.append((msg["msg_type"], msg.get("parent_header", {}).get("msg_type", "")))
            return route(msg)

        room.kernel_binding.router.route = record  # type: ignore[method-assign]
        await actor.request("launch_kernel")
        await run(actor, "import sys\nprint('out')\nprint('err', file=sys.stderr)")
        result = await actor.request("resync")
        assert result["available"] is False
        assert "no widget comms" in result["reason"]
        comm_requests = {"comm_open", "comm_msg", "comm_close"}
        assert [a for a in answers if a[1] in comm_requests] == []
        assert not any(a[0] in comm_requests for a in answers)

        await run(actor, "import ipywidgets\ns = ipywidgets.IntSlider(value=3)")
        result = await actor.request("resync")  # it uses widgets now: the comm opens
        assert result == {"available": True, "added": 0, "updated": 0, "removed": 0}
        assert ("status", "comm_open") in answers
        assert not any(a == ("stream", "comm_open") for a in answers)  # no complaint

        await actor.request("restart_kernel")  # a fresh process: quiet again
        answers.clear()
        result = await actor.request("resync")
        assert "no widget comms" in result["reason"]
        assert not any(a[1] in comm_requests for a in answers)
        await actor.request("shutdown_kernel")
