"""A room opens the notebooks Jupyter opens, saves them valid, and refuses only what
cannot be read, saying why."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from runtimed.client import ClientError
from tests.conftest import RunningDaemon


async def test_a_fixable_notebook_opens_and_is_saved_valid(
    running: RunningDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "old.ipynb"
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 2,
        "metadata": {"kernelspec": {"display_name": "Python 3"}},  # no name
        "cells": [
            {"cell_type": "markdown", "source": ["# Old"]},  # no metadata
            {"cell_type": "code", "metadata": {}, "source": "x = 1"},  # no outputs, count
        ],
    }
    path.write_text(json.dumps(notebook))
    async with running.client(str(path), path=str(path)) as client:
        assert [cell.source for cell in client.doc.get_cells()] == ["# Old", "x = 1"]
        await client.request("save")
    saved = nbformat.read(str(path), as_version=4)
    nbformat.validate(saved)
    assert (saved.nbformat, saved.nbformat_minor) == (4, 5)
    assert [cell.source for cell in saved.cells] == ["# Old", "x = 1"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not a JSON notebook"),
        (json.dumps({"nbformat": 3, "worksheets": []}), "nbformat 3 is not supported"),
        (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}}), "'cells'"),
    ],
)
async def test_an_unreadable_notebook_is_refused_with_the_reason(
    running: RunningDaemon, tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text(text)
    with pytest.raises(ClientError) as caught:
        async with running.client(str(path), path=str(path)):
            pass
    assert caught.value.code == "bad_notebook"
    assert reason in caught.value.message
    assert path.read_text() == text  # left as it was
