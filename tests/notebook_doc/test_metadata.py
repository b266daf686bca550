"""Notebook metadata: native JSON, minimal writes, and concurrent edits that both survive."""

from __future__ import annotations

import pytest

from notebook_doc import InvalidArgument, NotebookDoc

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def test_set_and_get_metadata(doc: NotebookDoc) -> None:
    metadata = {"kernelspec": KERNELSPEC, "tags": ["a", 1, 2.5, None, True], "title": "ünï 😀"}
    assert doc.set_metadata(metadata) is True
    assert doc.get_metadata() == metadata
    heads = doc.get_heads()
    assert doc.set_metadata(metadata) is False
    assert doc.get_heads() == heads
    assert NotebookDoc.load(doc.save()).get_metadata() == metadata


def test_set_metadata_removes_missing_keys(doc: NotebookDoc) -> None:
    doc.set_metadata({"a": 1, "b": {"c": 2, "d": 3}})
    assert doc.set_metadata({"b": {"d": 3}}) is True
    assert doc.get_metadata() == {"b": {"d": 3}}


def test_update_metadata_one_key(doc: NotebookDoc) -> None:
    doc.set_metadata({"keep": True})
    assert doc.update_metadata("kernelspec", KERNELSPEC) is True
    heads = doc.get_heads()
    assert doc.update_metadata("kernelspec", dict(KERNELSPEC)) is False
    assert doc.get_heads() == heads
    assert doc.get_metadata() == {"keep": True, "kernelspec": KERNELSPEC}
    with pytest.raises(InvalidArgument, match="metadata key"):
        doc.update_metadata("", 1)
    with pytest.raises(InvalidArgument, match="must be a dict"):
        doc.set_metadata([("a", 1)])  # type: ignore[arg-type]


def test_concurrent_nested_metadata_edits_both_survive(doc: NotebookDoc) -> None:
    doc.set_metadata({"kernelspec": KERNELSPEC})
    left, right = doc.fork(), doc.fork()
    left.set_metadata({"kernelspec": {**KERNELSPEC, "name": "python3.11"}})
    right.set_metadata({"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    left.merge(right)
    assert left.get_metadata() == {
        "kernelspec": {**KERNELSPEC, "name": "python3.11"},
        "language_info": {"name": "python"},
    }
