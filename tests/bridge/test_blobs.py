"""Large outputs, binary buffers and big widget states: out of the doc, never lost."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import nbformat
import pytest

from tests.bridge.helpers import (
    assert_doc_matches_comm_state,
    fetch_blob,
    only,
    resolve_output,
    run,
    run_cell,
)
from tests.conftest import RunningDaemon

pytestmark = pytest.mark.kernel


async def test_ten_thousand_prints_become_one_growing_stream(pair) -> None:
    actor, observer = pair
    outputs = await run_cell(actor, "for i in range(10000): print(i)")
    assert len(outputs) == 1
    assert outputs[0]["name"] == "stdout"
    assert outputs[0]["text"] == "".join(f"{i}\n" for i in range(10000))
    # The observer's doc holds the same single entry.
    await observer.wait_for(lambda c: any(cell.outputs for cell in c.doc.get_cells()))
    [cell] = [cell for cell in observer.doc.get_cells() if cell.outputs]
    assert len(cell.outputs) == 1


async def test_a_two_megabyte_display_lands_in_a_blob_and_resolves_byte_for_byte(pair) -> None:
    actor, observer = pair
    make_html = "''.join(f'<p>{i}</p>' for i in range(300_000))[: 2 * 1024 * 1024]"
    html = eval(make_html)  # the same expression the kernel runs
    outputs = await run_cell(actor, f"display({{'text/html': {make_html}}}, raw=True)")
    assert outputs[0]["data"]["text/html"] == html
    [cell] = [cell for cell in actor.doc.get_cells() if cell.outputs]
    [entry] = cell.outputs
    assert len(entry) == 64  # a manifest hash, not 2 MB inside the doc
    assert len(actor.doc.save()) < 64 * 1024
    assert (await resolve_output(observer, entry))["data"]["text/html"] == html


async def test_image_bytes_round_trip_through_buffers_both_ways(pair) -> None:
    actor, observer = pair
    await run(actor, "from ipywidgets import Image\nimg = Image(value=bytes(range(256)) * 4096)")
    legacy = await assert_doc_matches_comm_state(observer, actor)
    image_id = only(legacy, "ImageModel")
    original = bytes(range(256)) * 4096
    assert legacy[image_id]["state"]["value"] == {"$bytes": hashlib.sha256(original).hexdigest()}
    # In the doc the bytes are a blob reference; the blob holds them exactly.
    ref = observer.doc.get_comm(image_id).state["value"]
    assert set(ref) == {"$blob"}
    assert (await fetch_blob(observer, ref["$blob"]))[1] == original
    # The legacy path hands the bytes back as a buffer at the right path.
    [snapshot] = [c for c in observer.comms_from_sync or [] if c["comm_id"] == image_id] or [
        c for c in (await observer.request("get_comms"))["comms"] if c["comm_id"] == image_id
    ]
    assert snapshot["buffer_paths"] == [["value"]]
    assert base64.b64decode(snapshot["buffers"][0]) == original
    # The live `comm` broadcast carries the same bytes, base64 beside the JSON.
    [opened] = [
        b.fields
        for b in observer.broadcasts
        if b.event == "comm"
        and b.fields["msg_type"] == "comm_open"
        and b.fields["content"]["comm_id"] == image_id
    ]
    assert [base64.b64decode(data) for data in opened["buffers"]] == [original]

    new = bytes(reversed(range(256))) * 4096
    await observer.request(
        "send_comm",
        comm_id=image_id,
        data={"method": "update", "state": {}, "buffer_paths": [["value"]]},
        buffers=[base64.b64encode(new).decode()],
    )
    outputs = await run_cell(actor, "import hashlib; print(hashlib.sha256(img.value).hexdigest())")
    assert outputs[0]["text"].strip() == hashlib.sha256(new).hexdigest()
    legacy = await assert_doc_matches_comm_state(observer, actor)
    assert legacy[image_id]["state"]["value"] == {"$bytes": hashlib.sha256(new).hexdigest()}


async def test_a_five_megabyte_state_stays_out_of_the_doc(pair) -> None:
    actor, observer = pair
    await run(
        actor,
        "from ipywidgets import Textarea\nbig = Textarea(value='x' * (5 * 1024 * 1024))",
    )
    legacy = await assert_doc_matches_comm_state(observer, actor)
    comm_id = only(legacy, "TextareaModel")
    assert legacy[comm_id]["state"]["value"] == "x" * (5 * 1024 * 1024)
    stored = observer.doc.get_comm_state_json(comm_id)
    assert stored is not None
    assert len(stored) < 10 * 1024
    assert set(json.loads(stored)["value"]) == {"$blob"}


async def test_missing_blob_is_reported_and_the_notebook_still_works(
    pair, running: RunningDaemon, tmp_path: Path
) -> None:
    actor, _observer = pair
    outputs = await run_cell(actor, "print('y' * 5000)")
    assert outputs[0]["text"] == "y" * 5000 + "\n"
    [cell] = [cell for cell in actor.doc.get_cells() if cell.outputs]
    [entry] = cell.outputs
    running.daemon.blobs.path_for(entry).unlink()
    with pytest.raises(Exception, match="blob_not_found"):
        await actor.request("get_blob", hash=entry)
    # The rest of the notebook is intact, and saving it still works (with a placeholder).
    await run_cell(actor, "print('still fine')")
    target = tmp_path / "saved.ipynb"
    await actor.request("save", path=str(target))
    nb = nbformat.read(str(target), as_version=4)
    texts = [json.dumps(o) for c in nb.cells for o in c.outputs]
    assert any("still fine" in t for t in texts)
    assert any("unavailable" in t for t in texts)


async def test_saved_ipynb_reopens_with_outputs_and_widget_state(
    running: RunningDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "widgets.ipynb"
    async with running.client(str(path), path=str(path), create=True) as client:
        await client.request("launch_kernel")
        await run_cell(
            client,
            "from ipywidgets import IntSlider, Image\n"
            "s = IntSlider(value=42); img = Image(value=b'\\x89PNG fake')\n"
            "print('out'); s",
        )
        before = await assert_doc_matches_comm_state(client, client)
        await client.request("save")
        await client.request("shutdown_kernel")
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    widgets = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]
    assert widgets["version_major"] == 2
    assert len(widgets["state"]) == len(before)

    # A fresh daemon, a fresh room id for the same file: the widgets come back.
    await running.stop()
    for doc_file in running.settings.docs_dir.glob("*.automerge"):
        doc_file.unlink()
    await running.start()
    async with running.client(str(path), path=str(path)) as reopened:
        after = await assert_doc_matches_comm_state(reopened, reopened)
        assert after == before
        assert {c["comm_id"] for c in reopened.comms_from_sync or []} == set(before)
        entries = [o for cell in reopened.doc.get_cells() for o in cell.outputs]
        texts = [(await resolve_output(reopened, entry)).get("text", "") for entry in entries]
        assert "out\n" in texts
