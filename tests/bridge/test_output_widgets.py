"""Output widgets capture outputs: into the widget (CommState, doc, kernel), never the cell."""

from __future__ import annotations

import pytest

from tests.bridge.helpers import (
    assert_doc_matches_comm_state,
    kernel_widgets,
    resolve_output,
    run,
    run_cell,
)

pytestmark = pytest.mark.kernel


def output_widget_ids(comms: dict[str, dict]) -> list[str]:
    return sorted(cid for cid, c in comms.items() if c["model_name"] == "OutputModel")


async def doc_outputs(client, comm_id: str) -> list[dict]:
    comm = client.doc.get_comm(comm_id)
    assert comm is not None
    return [await resolve_output(client, entry) for entry in comm.outputs]


def texts(outputs: list[dict]) -> list[str]:
    return [o.get("text") or o.get("data", {}).get("text/plain", "") for o in outputs]


async def test_captured_print_and_display_go_to_the_widget_not_the_cell(pair) -> None:
    actor, observer = pair
    await run(actor, "from ipywidgets import Output\nout = Output()")
    cell_outputs = await run_cell(
        actor,
        "with out:\n"
        "    print('hello from inside')\n"
        "    display({'text/plain': 'shown inside'}, raw=True)\n"
        "print('to the cell')",
    )
    assert texts(cell_outputs) == ["to the cell\n"]
    legacy = await assert_doc_matches_comm_state(observer, actor)
    [out_id] = output_widget_ids(legacy)
    state_outputs = legacy[out_id]["state"]["outputs"]
    assert texts(state_outputs) == ["hello from inside\n", "shown inside"]
    # The doc keeps manifest hashes only, and they resolve to the same outputs.
    comm = observer.doc.get_comm(out_id)
    assert comm is not None
    assert all(len(h) == 64 for h in comm.outputs)
    assert await doc_outputs(observer, out_id) == state_outputs
    # The kernel's own Output widget holds the same outputs (the daemon syncs them back).
    truth = await kernel_widgets(actor)
    assert texts(list(truth[out_id]["outputs"])) == ["hello from inside\n", "shown inside"]


async def test_nested_captures_go_to_the_innermost_widget(pair) -> None:
    actor, observer = pair
    await run(
        actor,
        "from ipywidgets import Output\n"
        "outer = Output(); inner = Output()\n"
        "with outer:\n"
        "    print('a')\n"
        "    with inner:\n"
        "        print('b')\n"
        "    print('c')\n",
    )
    legacy = await assert_doc_matches_comm_state(observer, actor)
    truth = await kernel_widgets(actor)
    by_text = {
        cid: "".join(texts(c["state"]["outputs"]))
        for cid, c in legacy.items()
        if c["model_name"] == "OutputModel"
    }
    assert sorted(by_text.values()) == ["a\nc\n", "b\n"]
    for comm_id, text in by_text.items():
        assert "".join(texts(list(truth[comm_id]["outputs"]))) == text


async def test_clear_output_inside_a_capture_clears_the_widget(pair) -> None:
    actor, observer = pair
    await run(
        actor,
        "from ipywidgets import Output\n"
        "from IPython.display import clear_output\n"
        "out = Output()\n"
        "with out:\n"
        "    print('old')\n",
    )
    await run(actor, "with out:\n    clear_output()\n    print('new')\n")
    legacy = await assert_doc_matches_comm_state(observer, actor)
    [out_id] = output_widget_ids(legacy)
    assert texts(legacy[out_id]["state"]["outputs"]) == ["new\n"]
    assert texts(await doc_outputs(observer, out_id)) == ["new\n"]


async def test_outputs_set_by_the_kernel_are_followed(pair) -> None:
    actor, observer = pair
    await run(actor, "from ipywidgets import Output\nout = Output()\nout.append_stdout('x\\n')")
    legacy = await assert_doc_matches_comm_state(observer, actor)
    [out_id] = output_widget_ids(legacy)
    assert texts(legacy[out_id]["state"]["outputs"]) == ["x\n"]
    assert texts(await doc_outputs(observer, out_id)) == ["x\n"]
    await run(actor, "out.outputs = ()")
    legacy = await assert_doc_matches_comm_state(observer, actor)
    assert legacy[out_id]["state"]["outputs"] == []
    assert observer.doc.get_comm(out_id).outputs == []
