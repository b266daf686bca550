"""The JavaScript client (js/src/client.js) through a compaction, against a real daemon."""

from __future__ import annotations

import pytest

from runtimed.client import Client
from tests.web.conftest import WebDaemon, run_node

NOTEBOOK = "js-compaction-notebook"
TEXT = "x = 2  # from node"


@pytest.mark.parametrize("max_frame", [None, 1024], ids=["one-switch-frame", "split-switch"])
async def test_js_edits_survive_a_compaction_and_its_switch_window(
    web: WebDaemon, max_frame: int | None
) -> None:
    async with web.client(NOTEBOOK) as py:
        cell = py.doc.add_cell(source="x = 1")
        py.doc.add_cell(source="# from python", cell_type="markdown")
        await py.wait_synced()

        args = [cell, TEXT] + ([str(max_frame)] if max_frame else [])
        result = await run_node("js_peer.mjs", "compact", web.ws_url, web.token, NOTEBOOK, *args)

        # The JS client moved to epoch 1. Its late SYNC went the daemon's late path; the
        # three changes only its SWITCH held are the SWITCH's late changes, whether they
        # travelled in one frame or, under a small cap, in several ("more": true).
        assert result["compacted"]["epoch"] == result["epoch"] == 1
        events = [event["event"] for event in result["events"]]
        assert events.index("compaction") < events.index("switched")
        switched = next(e for e in result["events"] if e["event"] == "switched")
        assert switched == {"event": "switched", "epoch": 1, "late_changes": 3}
        assert (result["switch_frames"] > 1) == (max_frame is not None)
        final = {c["id"]: c["source"] for c in result["view"]["cells"]}
        assert final[cell] == f"{TEXT}  # late (sync)  # late (switch)"
        first, second = result["late_cells"]
        assert (final[first], final[second]) == (
            "# added inside the switch 1",
            "# added inside the switch 2",
        )
        assert final[result["after"]] == "# added after the switch"
        assert len(final) == 5

        # The Python peer switched too and holds exactly what the JS client holds.
        def converged(client: Client) -> bool:
            return client.doc.to_json()["cells"] == result["view"]["cells"]

        await py.wait_for(converged, 15, "the JS client's doc")
        assert py.epoch == 1


async def test_js_late_edits_too_large_for_a_switch_frame_are_an_error_not_a_silent_loss(
    web: WebDaemon,
) -> None:
    async with web.client(NOTEBOOK) as py:
        cell = py.doc.add_cell(source="x = 1")
        await py.wait_synced()

        result = await run_node("js_peer.mjs", "oversize", web.ws_url, web.token, NOTEBOOK, cell)

        # The client says why and leaves rather than switching without its edit.
        assert result["closed"] is True
        assert result["epoch"] == 0
        [error] = result["errors"]
        assert error["code"] == "frame_too_large"
        assert "does not fit in a SWITCH frame" in error["message"]
        await py.wait_for(lambda c: c.epoch == 1, 15, "python's switch")
        assert [c.source for c in py.doc.get_cells()] == ["x = 1"]
