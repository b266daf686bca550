"""nbformat 4 import and export of realistic notebooks, widget state and blob references."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import nbformat
import pytest
from nbformat import v4

from notebook_doc import IpynbError, NotebookDoc, from_ipynb, to_ipynb

WIDGET_MIME = "application/vnd.jupyter.widget-state+json"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image").decode()


def slider_state(value: int) -> dict[str, Any]:
    return {
        "_model_module": "@jupyter-widgets/controls",
        "_model_module_version": "2.0.0",
        "_model_name": "IntSliderModel",
        "value": value,
        "description": "n 😀",
    }


def realistic_notebook() -> dict[str, Any]:
    nb = v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python", "version": "3.11.7", "file_extension": ".py"},
            "custom": {"nested": [1, 2.5, None, True, "ü"]},
            "widgets": {
                "other/mime": {"kept": True},
                WIDGET_MIME: {
                    "version_major": 2,
                    "version_minor": 0,
                    "state": {
                        "slider-1": {
                            "model_name": "IntSliderModel",
                            "model_module": "@jupyter-widgets/controls",
                            "model_module_version": "2.0.0",
                            "state": slider_state(7),
                        },
                        "layout-1": {
                            "model_name": "LayoutModel",
                            "model_module": "@jupyter-widgets/base",
                            "model_module_version": "2.0.0",
                            "state": {
                                "_model_module": "@jupyter-widgets/base",
                                "_model_module_version": "2.0.0",
                                "_model_name": "LayoutModel",
                                "width": "50%",
                            },
                        },
                    },
                },
            },
        }
    )
    nb.cells = [
        v4.new_markdown_cell(
            "# Analysis 😀\n![img](attachment:img.png)",
            id="intro",
            attachments={"img.png": {"image/png": PNG}},
        ),
        v4.new_code_cell(
            "print('hi')\n1 + 1",
            id="compute",
            execution_count=3,
            metadata={
                "tags": ["parameters"],
                "collapsed": False,
                "jupyter": {"source_hidden": True},
            },
            outputs=[
                v4.new_output("stream", name="stdout", text="hi\n"),
                v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=3),
                v4.new_output(
                    "display_data",
                    data={"image/png": PNG, "text/plain": "<Figure>"},
                    metadata={"image/png": {"width": 100}},
                ),
                v4.new_output("error", ename="ValueError", evalue="bad", traceback=["Trace", "x"]),
            ],
        ),
        v4.new_code_cell("", id="empty-code"),
        v4.new_raw_cell("raw \\LaTeX", id="raw-1", metadata={"format": "text/latex"}),
    ]
    nbformat.validate(nb)
    return json.loads(json.dumps(nb))


def test_realistic_notebook_round_trips() -> None:
    nb = realistic_notebook()
    doc = from_ipynb(nb, notebook_id="nb")
    out = to_ipynb(doc)
    nbformat.validate(out)
    assert out["cells"] == nb["cells"]
    assert out["metadata"] == nb["metadata"]
    assert (out["nbformat"], out["nbformat_minor"]) == (4, 5)


def test_import_maps_onto_the_schema() -> None:
    doc = from_ipynb(json.dumps(realistic_notebook()), notebook_id="nb")
    assert doc.validate() == []
    cells = doc.get_cells()
    assert [c.id for c in cells] == ["intro", "compute", "empty-code", "raw-1"]
    assert cells[0].metadata == {"attachments": {"img.png": {"image/png": PNG}}}
    compute = cells[1]
    assert compute.execution_count == 3
    assert compute.source == "print('hi')\n1 + 1"
    assert compute.outputs[0] == '{"output_type":"stream","name":"stdout","text":"hi\\n"}'
    assert [json.loads(o)["output_type"] for o in compute.outputs] == [
        "stream",
        "execute_result",
        "display_data",
        "error",
    ]
    # Widget state lives in comms, in file order, and not twice.
    assert doc.get_metadata()["widgets"] == {"other/mime": {"kept": True}}
    comms = doc.get_comms()
    assert [(c.comm_id, c.seq, c.target_name, c.model_name) for c in comms] == [
        ("slider-1", 0, "jupyter.widget", "IntSliderModel"),
        ("layout-1", 1, "jupyter.widget", "LayoutModel"),
    ]
    assert comms[0].state == slider_state(7)


def test_live_comm_changes_are_exported() -> None:
    doc = from_ipynb(realistic_notebook(), notebook_id="nb")
    doc.update_comm_state("slider-1", json.dumps(slider_state(42)))
    doc.remove_comm("layout-1")
    doc.put_comm("comm-x", "not.a.widget", "", "", "{}", 9)  # not a widget model: not exported
    state = to_ipynb(doc)["metadata"]["widgets"][WIDGET_MIME]["state"]
    assert list(state) == ["slider-1"]
    assert state["slider-1"]["state"]["value"] == 42
    assert state["slider-1"]["model_module_version"] == "2.0.0"


def test_no_comms_no_widget_state() -> None:
    doc = NotebookDoc.new("nb")
    doc.add_cell(source="x")
    out = to_ipynb(doc)
    assert "widgets" not in out["metadata"]
    nbformat.validate(out)


def test_source_lists_and_str_and_bytes_inputs() -> None:
    nb = realistic_notebook()
    nb["cells"][1]["source"] = ["line 1\n", "line 2"]
    for given in (nb, json.dumps(nb), json.dumps(nb).encode()):
        doc = from_ipynb(given, notebook_id="nb")
        assert doc.get_cell("compute").source == "line 1\nline 2"  # type: ignore[union-attr]


def test_blob_outputs_are_resolved() -> None:
    doc = NotebookDoc.new("nb")
    cell = doc.add_cell(source="plot()")
    blob = "d" * 64
    output = {"output_type": "display_data", "data": {"image/png": PNG}, "metadata": {}}
    doc.set_outputs(cell, [blob])
    with pytest.raises(IpynbError, match="no resolve_output"):
        to_ipynb(doc)
    out = to_ipynb(doc, resolve_output={blob: output}.__getitem__)
    assert out["cells"][0]["outputs"] == [output]
    with pytest.raises(IpynbError, match="not make a valid notebook"):
        to_ipynb(doc, resolve_output=lambda _: {"output_type": "nonsense"})


def test_blob_values_in_widget_state() -> None:
    doc = NotebookDoc.new("nb")
    state = {**slider_state(1), "big": {"$blob": "1" * 64}, "data": [{"$blob": "2" * 64}]}
    doc.put_comm("w", "jupyter.widget", "m", "IntSliderModel", json.dumps(state), 0)
    blobs = {"1" * 64: {"large": "value"}, "2" * 64: b"\x00\x01binary"}
    model = to_ipynb(doc, resolve_blob=blobs.__getitem__)["metadata"]["widgets"][WIDGET_MIME]
    model = model["state"]["w"]
    assert model["state"]["big"] == {"large": "value"}
    assert model["state"]["data"] == [None]
    assert model["buffers"] == [
        {
            "path": ["data", 0],
            "encoding": "base64",
            "data": base64.b64encode(b"\x00\x01binary").decode(),
        }
    ]
    unresolved = to_ipynb(doc)["metadata"]["widgets"][WIDGET_MIME]["state"]["w"]["state"]
    assert unresolved["big"] == {"$blob": "1" * 64}


def test_widget_buffers_go_to_the_blob_store() -> None:
    nb = realistic_notebook()
    model = nb["metadata"]["widgets"][WIDGET_MIME]["state"]["slider-1"]
    model["state"]["array"] = None
    model["buffers"] = [{"path": ["array"], "encoding": "base64", "data": PNG}]
    stored: dict[str, bytes] = {}

    def store(data: bytes) -> str:
        stored["f" * 64] = data
        return "f" * 64

    doc = from_ipynb(copy.deepcopy(nb), notebook_id="nb", store_blob=store)
    assert doc.get_comm("slider-1").state["array"] == {"$blob": "f" * 64}  # type: ignore[union-attr]
    assert stored == {"f" * 64: base64.b64decode(PNG)}
    dropped = from_ipynb(nb, notebook_id="nb")  # no store: the buffer is dropped, not faked
    assert dropped.get_comm("slider-1").state["array"] is None  # type: ignore[union-attr]


def test_old_minor_versions_and_missing_or_repeated_ids() -> None:
    nb = realistic_notebook()
    for cell in nb["cells"]:
        del cell["id"]
    nb["nbformat_minor"] = 4
    doc = from_ipynb(nb, notebook_id="nb")
    assert len(set(doc.cell_ids())) == 4
    nbformat.validate(to_ipynb(doc))
    nb = realistic_notebook()
    del nb["cells"][0]["id"]
    nb["cells"][2]["id"] = nb["cells"][1]["id"]
    doc = from_ipynb(nb, notebook_id="nb")
    assert len(set(doc.cell_ids())) == 4
    assert doc.cell_ids()[1] == "compute"


def test_ids_nbformat_cannot_hold_are_exported_stably() -> None:
    doc = NotebookDoc.new("nb")
    doc.add_cell(cell_id="célula 😀")
    doc.add_cell(cell_id="plain-id")
    first, second = to_ipynb(doc)["cells"], to_ipynb(doc)["cells"]
    assert first[0]["id"] == second[0]["id"]
    assert first[0]["id"] != "célula 😀"
    assert first[1]["id"] == "plain-id"


@pytest.mark.parametrize(
    ("nb", "match"),
    [
        ("{not json", "not a JSON notebook"),
        (b"\xff\xfe", "not a JSON notebook"),
        ("[1, 2]", "JSON object, not list"),
        ({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}, "nbformat 3"),
        ({"cells": []}, "nbformat None"),
        (
            {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "sql"}]},
            "invalid",
        ),
        ({"nbformat": 4, "nbformat_minor": 5, "metadata": {}}, "'cells' must be a list"),
        ({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [3]}, "list of objects"),
        ({"nbformat": 4, "nbformat_minor": 5, "metadata": [], "cells": []}, "'metadata' must"),
        ({"x": {1, 2}}, "not a JSON notebook"),
    ],
)
def test_bad_ipynb(nb: Any, match: str) -> None:
    with pytest.raises(IpynbError, match=match):
        from_ipynb(nb, notebook_id="nb")


@pytest.mark.parametrize(
    ("widgets", "match"),
    [
        ({WIDGET_MIME: {"version_major": 2}}, "no 'state' object"),
        ({WIDGET_MIME: {"state": {"m": {"model_name": "X"}}}}, "not an object with a 'state'"),
        ({WIDGET_MIME: {"state": {"m": {"state": {}, "model_name": 3}}}}, "must be strings"),
    ],
)
def test_bad_widget_state(widgets: dict, match: str) -> None:
    nb = v4.new_notebook(metadata={"widgets": widgets})
    with pytest.raises(IpynbError, match=match):
        from_ipynb(nb, notebook_id="nb")
