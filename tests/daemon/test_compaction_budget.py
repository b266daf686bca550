"""The history budget (docs/compaction.md, "When"): real docs, no daemon."""

from __future__ import annotations

import json
import platform

from notebook_doc import NotebookDoc
from notebook_doc.compaction import build_fresh, read_content
from runtimed.daemon.compaction_budget import MIN_HISTORY, HistoryBudget
from runtimed.daemon.memory import give_back

STATE = {"value": 0, "description": "x" * 600}


def sliders(count: int) -> tuple[NotebookDoc, list[str]]:
    doc = NotebookDoc.new("nb-budget")
    ids = [f"w{i}" for i in range(count)]
    for seq, comm_id in enumerate(ids):
        doc.put_comm(comm_id, "jupyter.widget", "m", "IntSliderModel", json.dumps(STATE), seq)
    return doc, ids


def move(doc: NotebookDoc, ids: list[str], value: int) -> None:
    for comm_id in ids:
        doc.update_comm_state(comm_id, json.dumps({**STATE, "value": value}))


def test_few_changes_that_overwrite_many_states_go_over_the_size_budget() -> None:
    """The daemon coalesces a burst into few changes of many writes each: the change
    count stays low while the history's raw size grows with every write."""
    doc, ids = sliders(200)
    budget = HistoryBudget(doc, changes=0, ratio=2.0)
    fresh = build_fresh(read_content(doc))
    budget.new_epoch(fresh)  # as after a compaction: the fresh doc is the baseline
    baseline = budget.size
    assert baseline == fresh.history_size([]) >= MIN_HISTORY
    assert not budget.over(fresh, max_changes=2000)
    for value in range(1, 4):  # three rounds of writes
        move(fresh, ids, value)
    assert budget.over(fresh, max_changes=2000)
    assert budget.size == fresh.history_size([])  # measured a change at a time
    assert budget.changes == 0  # the room counts changes; the size alone decided


def test_a_small_history_is_never_worth_a_compaction() -> None:
    doc, ids = sliders(2)
    budget = HistoryBudget(doc, changes=0, ratio=2.0)
    budget.new_epoch(doc)
    for value in range(1, 20):
        move(doc, ids, value)
    assert budget.measure(doc) > 10 * budget.fresh  # type: ignore[operator]
    assert budget.size < MIN_HISTORY
    assert not budget.over(doc, max_changes=2000)
    budget.changes = 2000
    assert budget.over(doc, max_changes=2000)  # the count still counts


def test_an_unknown_fresh_size_asks_for_a_compaction_to_measure_it() -> None:
    doc, _ids = sliders(200)
    budget = HistoryBudget(doc, changes=0, ratio=2.0)
    assert budget.fresh is None
    assert budget.over(doc, max_changes=2000)  # over MIN_HISTORY, fresh size unknown
    budget.fresh = build_fresh(read_content(doc)).history_size([])
    assert not budget.over(doc, max_changes=2000)  # a compaction would gain nothing


def test_giving_memory_back_works_here() -> None:
    """With glibc the trim is found (and takes some time); elsewhere it does nothing."""
    seconds = give_back()
    assert seconds > 0.0 if platform.libc_ver()[0] == "glibc" else seconds == 0.0
