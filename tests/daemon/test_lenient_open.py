"""A room opens the notebooks Jupyter opens and saves them valid (what cannot be read
is refused: tests/reliability/test_corrupt_files.py)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

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
