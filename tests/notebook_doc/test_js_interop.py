"""Schema interop with the JS `@automerge/automerge` 3.x peer in tests/js (real node processes)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from automerge.core import ROOT, Document
from nbdoc_helpers import push_raw

from notebook_doc import NotebookDoc, SchemaError, SyncState
from notebook_doc._automerge import get_fields

JS_DIR = Path(__file__).resolve().parents[1] / "js"
PEER = JS_DIR / "automerge_peer.mjs"


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary; a missing toolchain fails loudly instead of skipping."""
    binary = shutil.which("node")
    if binary is None:
        pytest.fail("node is not installed: the JS interop tests need Node 20+")
    if not (JS_DIR / "node_modules" / "@automerge" / "automerge").is_dir():
        pytest.fail(f"@automerge/automerge is not installed: run `npm install` in {JS_DIR}")
    return binary


def run_peer(node: str, *args: str) -> str:
    result = subprocess.run(
        [node, str(PEER), *args],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def as_json(value: dict[str, Any]) -> Any:
    """What a JSON round trip makes of a view (both sides compared as plain JSON)."""
    return json.loads(json.dumps(value))


def python_notebook() -> NotebookDoc:
    doc = NotebookDoc.new("py-notebook 😀")
    first = doc.add_cell("markdown", "# Título 😀\n\U0001d518 text")
    code = doc.add_cell(source="print('hi')", after=first, metadata={"tags": ["a"], "n": 2.5})
    doc.set_source(code, "print('hi there 🎉')")
    doc.set_execution_count(code, 12)
    doc.set_execution_status(code, "aborted")  # the optional field: JS reads it too
    doc.append_output(code, json.dumps({"output_type": "stream", "name": "stdout", "text": "hi\n"}))
    doc.add_cell("raw", "raw", index=0, cell_id="raw-ünï")
    doc.update_metadata("kernelspec", {"name": "python3", "display_name": "Python 3"})
    doc.put_comm(
        "w-1", "jupyter.widget", "@jupyter-widgets/controls", "IntSliderModel", '{"value": 3}', 2
    )
    doc.put_comm("out", "jupyter.widget", "@jupyter-widgets/output", "OutputModel", "{}", 1)
    doc.append_comm_output("out", "f" * 64)
    return doc


def test_python_doc_reads_the_same_in_js(node: str, tmp_path: Path) -> None:
    doc = python_notebook()
    path = tmp_path / "py.automerge"
    path.write_bytes(doc.save())
    seen_by_js = json.loads(run_peer(node, "dump", str(path)))
    assert seen_by_js == as_json(doc.to_json())
    assert [c["source"] for c in seen_by_js["cells"]] == [
        "raw",
        "# Título 😀\n\U0001d518 text",
        "print('hi there 🎉')",
    ]
    assert [(c["comm_id"], c["seq"]) for c in seen_by_js["comms"]] == [("out", 1), ("w-1", 2)]


def test_js_written_doc_loads_here(node: str, tmp_path: Path) -> None:
    path = tmp_path / "js.automerge"
    run_peer(node, "write", str(path))
    doc = NotebookDoc.load(path.read_bytes())
    assert doc.validate() == []
    assert doc.schema_version == 3
    assert doc.notebook_id == "js-notebook"
    assert as_json(doc.to_json()) == json.loads(run_peer(node, "dump", str(path)))
    code = doc.get_cell("js-code")
    assert code is not None
    assert (code.source, code.execution_count, code.metadata) == (
        "x = 1 + 41 🎉",
        7,
        {"tags": ["t"]},
    )
    assert doc.get_comm("w-1").state == {"value": 5, "description": "ünï"}  # type: ignore[union-attr]
    # Text written by JS is edited here like any other source.
    assert doc.set_source("js-code", "x = 2 + 41 🎉")
    assert NotebookDoc.load(doc.save()).get_cell("js-code").source == "x = 2 + 41 🎉"  # type: ignore[union-attr]


def test_js_counter_is_a_clear_error_not_a_crash(node: str, tmp_path: Path) -> None:
    plain, path = tmp_path / "plain.automerge", tmp_path / "counter.automerge"
    run_peer(node, "write", str(plain))
    run_peer(node, "write-counter", str(plain), str(path))
    with pytest.raises(
        SchemaError, match=r"metadata\.clicks holds a value the Python binding cannot"
    ):
        NotebookDoc.load(path.read_bytes())
    # The same counter arriving by sync: validate names it, repair removes it.
    doc = NotebookDoc.load(plain.read_bytes())
    push_raw(Document.load(path.read_bytes()), doc)
    assert any("clicks" in problem for problem in doc.validate())
    assert any("clicks" in fix for fix in doc.repair())
    assert doc.validate() == []
    assert "clicks" not in doc.get_metadata()


def test_a_map_read_in_bulk_names_a_js_counter(node: str, tmp_path: Path) -> None:
    """`get_fields` (a comm's fields in two binding calls) turns the binding's panic on
    a counter into the same clear error as a key-by-key read; the doc stays usable."""
    plain, path = tmp_path / "plain.automerge", tmp_path / "counter.automerge"
    run_peer(node, "write", str(plain))
    run_peer(node, "write-counter", str(plain), str(path))
    raw = Document.load(path.read_bytes())
    metadata = raw.get(ROOT, "metadata")[1]
    with pytest.raises(SchemaError, match=r"metadata holds a value the Python binding cannot"):
        get_fields(raw, metadata, "metadata")
    assert raw.get(ROOT, "notebook_id") is not None


@pytest.fixture
def js_sync_peer(node: str) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(
        [node, str(PEER), "sync"],
        cwd=JS_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        yield process
        assert process.stdin is not None
        process.stdin.close()  # end of input: the peer exits
        assert process.wait(timeout=30) == 0


def ask(peer: subprocess.Popen[str], request: dict[str, Any]) -> Any:
    assert peer.stdin is not None
    assert peer.stdout is not None
    peer.stdin.write(json.dumps(request) + "\n")
    peer.stdin.flush()
    line = peer.stdout.readline()
    assert line, "the JS peer exited"
    return json.loads(line)


def sync_with_js(doc: NotebookDoc, peer: subprocess.Popen[str], state: SyncState) -> None:
    for _ in range(50):
        outgoing = doc.generate_sync_message(state)
        encoded = None if outgoing is None else base64.b64encode(outgoing).decode()
        reply = ask(peer, {"cmd": "receive", "msg": encoded})["msg"]
        if reply is not None:
            doc.receive_sync_message(state, base64.b64decode(reply))
        if outgoing is None and reply is None:
            return
    raise AssertionError("sync with the JS peer did not converge")


def test_sync_messages_cross_both_ways(js_sync_peer: subprocess.Popen[str]) -> None:
    doc = python_notebook()
    state = SyncState()
    sync_with_js(doc, js_sync_peer, state)
    assert ask(js_sync_peer, {"cmd": "dump"}) == as_json(doc.to_json())
    assert ask(js_sync_peer, {"cmd": "edit"}) == {"ok": True}
    sync_with_js(doc, js_sync_peer, state)
    assert doc.validate() == []
    edited = [c for c in doc.get_cells() if c.source.startswith("# edited in JS\n")]
    assert len(edited) == 1
    assert doc.get_comm("js-widget").seq == 99  # type: ignore[union-attr]
    assert ask(js_sync_peer, {"cmd": "dump"}) == as_json(doc.to_json())
