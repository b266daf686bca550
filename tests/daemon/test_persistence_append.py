"""The save path: appended changes, full saves, and a doc replaced by a compaction."""

from __future__ import annotations

import json
from pathlib import Path

from notebook_doc import NotebookDoc
from notebook_doc.compaction import build_fresh, read_content
from runtimed.daemon.persistence import DocPersister

STATE = {"value": 0, "description": "x" * 300}


async def saved(
    tmp_path: Path, widget_count: int
) -> tuple[NotebookDoc, list[str], Path, DocPersister]:
    """A doc of `widget_count` widgets, its persister (no timer fires: a long debounce)
    and its file, saved once."""
    doc = NotebookDoc.new("nb-save")
    ids = widgets(doc, widget_count)
    path = tmp_path / "doc.automerge"
    saver = DocPersister(doc, path, debounce=60.0, max_interval=60.0, spawn=_no_timed_save)
    assert await saver.save()
    return doc, ids, path, saver


def _no_timed_save(*args: object) -> None:
    raise AssertionError("only the test's own saves run here")


def widgets(doc: NotebookDoc, count: int) -> list[str]:
    ids = [f"w{i}" for i in range(count)]
    for seq, comm_id in enumerate(ids):
        doc.put_comm(comm_id, "jupyter.widget", "m", "IntSliderModel", json.dumps(STATE), seq)
    return ids


def move(doc: NotebookDoc, ids: list[str], value: int) -> None:
    doc.update_comm_state(ids[value % len(ids)], json.dumps({**STATE, "value": value}))


def assert_file_is(path: Path, doc: NotebookDoc) -> NotebookDoc:
    loaded = NotebookDoc.load(path.read_bytes())
    assert loaded.get_heads() == doc.get_heads()
    assert loaded.to_json() == doc.to_json()
    return loaded


async def test_a_save_appends_the_changes_to_the_last_full_save(tmp_path: Path) -> None:
    doc, ids, path, saver = await saved(tmp_path, 300)
    full = path.read_bytes()
    assert full == doc.save()
    move(doc, ids, 1)
    move(doc, ids, 2)
    assert await saver.save()
    appended = path.read_bytes()
    assert appended.startswith(full)
    assert len(appended) > len(full)
    assert_file_is(path, doc)
    move(doc, ids, 3)
    assert await saver.save()
    assert path.read_bytes().startswith(appended)
    assert_file_is(path, doc)


async def test_a_tail_past_half_the_full_save_makes_a_full_save_again(tmp_path: Path) -> None:
    doc, ids, path, saver = await saved(tmp_path, 5)
    full = path.read_bytes()
    value = 0
    while True:  # one change per save, until the file no longer starts with that save
        value += 1
        move(doc, ids, value)
        assert await saver.save()
        data = path.read_bytes()
        if not data.startswith(full):
            break
        assert len(data) - len(full) <= len(full) // 2 + 1
    assert data == doc.save()  # a full save once more
    assert_file_is(path, doc)


async def test_after_a_compaction_the_file_holds_the_new_doc_alone(tmp_path: Path) -> None:
    doc, ids, path, saver = await saved(tmp_path, 20)
    move(doc, ids, 1)
    assert await saver.save()  # appended: the file's tail builds on the old history
    fresh = build_fresh(read_content(doc))
    saver.doc = fresh  # what the room's replace_doc does
    move(fresh, ids, 2)
    assert await saver.save()
    loaded = assert_file_is(path, fresh)
    assert loaded.change_count() == fresh.change_count()  # nothing of the old history
    saver.cancel()
