"""CommStore without a kernel: every event keeps CommState and the doc's comms in step.

The state machine drives random sequences of the events a room sees (kernel opens,
updates, closes, custom messages; client updates; Output-widget captures; reconcile
plans; clears) and, after every flush, reads the doc's comms back and compares them
with CommState: same comms, same seq, same state and buffers, same captured outputs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, rule

from notebook_doc import NotebookDoc
from runtimed.blob_store import BlobStore
from runtimed.comms.comm_state import parse_comm_update
from runtimed.comms.mirror import state_from_doc
from runtimed.comms.reconcile import WIDGET_TARGET, KernelWidget
from runtimed.comms.reconcile import plan as reconcile_plan
from runtimed.comms.store import CommStore

COMM_IDS = ["a", "b", "c", "out"]
SLIDER = {"_model_module": "@jupyter-widgets/controls", "_model_name": "IntSliderModel"}
OUTPUT = {"_model_module": "@jupyter-widgets/output", "_model_name": "OutputModel"}


def new_store(root: Path) -> tuple[CommStore, NotebookDoc, BlobStore]:
    doc = NotebookDoc.new("nb")
    blobs = BlobStore(root)
    return CommStore(doc, blobs, schedule=lambda: None), doc, blobs


def stream(msg_id: str, text: str) -> dict[str, Any]:
    return {
        "msg_type": "stream",
        "header": {"msg_type": "stream"},
        "parent_header": {"msg_id": msg_id},
        "content": {"name": "stdout", "text": text},
    }


def store_view(store: CommStore) -> dict[str, tuple]:
    return {
        e.comm_id: (
            e.target_name,
            e.model_module,
            e.model_name,
            e.state,
            e.buffers,
            e.outputs,
            e.seq,
        )
        for e in store.state.get_all()
    }


def doc_view(doc: NotebookDoc, blobs: BlobStore) -> dict[str, tuple]:
    view = {}
    for c in doc.get_comms():
        state, buffers = state_from_doc(c.state, blobs)
        view[c.comm_id] = (
            c.target_name,
            c.model_module,
            c.model_name,
            state,
            buffers,
            list(c.outputs),
            c.seq,
        )
    return view


class CommStoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory()
        self.store, self.doc, self.blobs = new_store(Path(self._tmp.name))

    def teardown(self) -> None:
        self._tmp.cleanup()

    @rule(
        comm_id=st.sampled_from(COMM_IDS),
        value=st.integers(-5, 5),
        binary=st.booleans(),
    )
    def kernel_open(self, comm_id: str, value: int, binary: bool) -> None:
        base = OUTPUT | {"msg_id": ""} if comm_id == "out" else SLIDER | {"value": value}
        data = {"state": base, "buffer_paths": [["data"]] if binary else []}
        content = {"comm_id": comm_id, "target_name": WIDGET_TARGET, "data": data}
        event = self.store.kernel_open(content, [bytes([value % 256])] if binary else [])
        assert event.event == "comm"
        assert event.fields["msg_type"] == "comm_open"

    @rule(
        comm_id=st.sampled_from(COMM_IDS),
        value=st.integers(-5, 5),
        method=st.sampled_from(["update", "echo_update", "custom"]),
        binary=st.booleans(),
    )
    def kernel_update(self, comm_id: str, value: int, method: str, binary: bool) -> None:
        data = {"method": method, "state": {"value": value}}
        if binary:
            data["buffer_paths"] = [["data"]]
        buffers = [bytes([value % 256])] if binary else []
        known = comm_id in self.store
        event, lost = self.store.kernel_update({"comm_id": comm_id, "data": data}, buffers)
        assert event.fields["msg_type"] == "comm_msg"
        assert lost == (method != "custom" and not known)

    @rule(comm_id=st.sampled_from(COMM_IDS))
    def kernel_close(self, comm_id: str) -> None:
        self.store.kernel_close({"comm_id": comm_id})
        assert comm_id not in self.store

    @rule(comm_id=st.sampled_from(COMM_IDS), value=st.integers(-5, 5))
    def client_update(self, comm_id: str, value: int) -> None:
        update = parse_comm_update(
            {"comm_id": comm_id, "data": {"method": "update", "state": {"value": value}}}
        )
        assert update is not None
        self.store.client_update(update)

    @rule(msg_id=st.sampled_from(["m1", "m2"]), text=st.text("xy\n", min_size=1, max_size=4))
    def capture(self, msg_id: str, text: str) -> None:
        """`with out:` sets the Output widget's msg_id; that request's outputs are its own."""
        if "out" in self.store:
            update = {"method": "update", "state": {"msg_id": msg_id}}
            self.store.kernel_update({"comm_id": "out", "data": update}, [])
        target = self.store.capture_target(msg_id)
        if target is not None:
            self.store.capture_output(target, stream(msg_id, text))

    @rule(
        keep=st.sets(st.sampled_from(COMM_IDS[:3])),
        value=st.integers(-5, 5),
    )
    def reconcile(self, keep: set[str], value: int) -> None:
        """The kernel's own answer: these sliders, at `value`; every other widget is gone."""
        truth = [KernelWidget(cid, SLIDER | {"value": value}, {}) for cid in sorted(keep)]
        plan = reconcile_plan(self.store.state.get_all(), truth)
        events = self.store.apply_plan(plan)
        assert len(events) == len(plan.added) + len(plan.updated) + len(plan.removed)
        assert {e.comm_id for e in self.store.state.get_all()} == keep

    @rule()
    def clear(self) -> None:
        assert self.store.clear().fields == {"comms": []}
        assert len(self.store) == 0

    @rule()
    def flush(self) -> None:
        flushed = self.store.flush()
        assert flushed.storage_error is None
        for comm_id, data in flushed.to_kernel:  # the kernel hears what CommState holds
            assert data["state"]["outputs"] == self.store.get(comm_id).state["outputs"]
        assert doc_view(self.doc, self.blobs) == store_view(self.store)


TestCommStore = CommStoreMachine.TestCase
TestCommStore.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_kernel_messages_apply_through_the_parsers(tmp_path: Path) -> None:
    store, _, _ = new_store(tmp_path)
    data = {"state": SLIDER | {"value": 1}, "buffer_paths": []}
    store.kernel_open({"comm_id": "a", "target_name": WIDGET_TARGET, "data": data}, [])
    assert store.get("a").model_name == "IntSliderModel"
    update = {"comm_id": "a", "data": {"method": "update", "state": {"value": 3}}}
    assert store.kernel_update(update, [])[1] is False
    assert store.get("a").state["value"] == 3
    for ignored in ({"method": "custom", "content": {}}, {"method": ["update"], "state": {}}):
        event, lost = store.kernel_update({"comm_id": "a", "data": ignored}, [])
        assert not lost
        assert event.fields["content"]["data"] == ignored
    assert store.get("a").state["value"] == 3


def test_an_echo_of_our_own_capture_does_not_undo_it(tmp_path: Path) -> None:
    """The daemon publishes an Output widget's captures; the kernel's echo_update of an
    older publication must not put the old outputs back."""
    store, doc, blobs = new_store(tmp_path)
    data = {"state": OUTPUT | {"msg_id": "m1"}, "buffer_paths": []}
    store.kernel_open({"comm_id": "out", "target_name": WIDGET_TARGET, "data": data}, [])
    store.capture_output("out", stream("m1", "one\n"))
    first = store.flush().to_kernel
    assert [comm_id for comm_id, _ in first] == ["out"]
    store.capture_output("out", stream("m1", "two\n"))
    store.flush()
    echo = {"method": "echo_update", "state": first[0][1]["state"]}
    store.kernel_update({"comm_id": "out", "data": echo}, [])
    store.flush()
    assert store.get("out").state["outputs"][0]["text"] == "one\ntwo\n"
    assert doc_view(doc, blobs) == store_view(store)
