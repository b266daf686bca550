"""Open what Jupyter opens: fixable notebooks load with a logged warning and save valid."""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable
from typing import Any

import nbformat
import pytest
from structlog.testing import capture_logs

from notebook_doc import from_ipynb, to_ipynb


def base() -> dict[str, Any]:
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3"},
            "language_info": {"name": "python"},
        },
        "cells": [
            {"id": "md", "cell_type": "markdown", "metadata": {}, "source": "# Title"},
            {
                "id": "code",
                "cell_type": "code",
                "metadata": {},
                "source": "1 + 1",
                "execution_count": 1,
                "outputs": [
                    {
                        "output_type": "execute_result",
                        "execution_count": 1,
                        "data": {"text/plain": "2"},
                        "metadata": {},
                    }
                ],
            },
        ],
    }


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(nb: dict[str, Any]) -> None:
        target = nb
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return change


def _delete(*path: Any) -> Callable[[dict[str, Any]], None]:
    def change(nb: dict[str, Any]) -> None:
        target = nb
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return change


FIXABLE: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "kernelspec without name": (_delete("metadata", "kernelspec", "name"), "kernelspec without"),
    "kernelspec without display_name": (
        _delete("metadata", "kernelspec", "display_name"),
        "display_name set",
    ),
    "language_info without name": (_delete("metadata", "language_info", "name"), "language_info"),
    "notebook without metadata": (_delete("metadata"), "missing notebook metadata"),
    "cell without metadata": (_delete("cells", 1, "metadata"), "cells[1]: missing metadata"),
    "cell without source": (_delete("cells", 0, "source"), "missing source"),
    "code cell without outputs": (_delete("cells", 1, "outputs"), "missing outputs"),
    "code cell without execution_count": (
        _delete("cells", 1, "execution_count"),
        "missing execution_count",
    ),
    "result without metadata": (
        _delete("cells", 1, "outputs", 0, "metadata"),
        "outputs[0]: missing metadata",
    ),
    "markdown cell with outputs": (_set(["cells", 0, "outputs"], []), "outputs removed"),
    "cell id nbformat refuses": (_set(["cells", 0, "id"], "a b"), "replaced by a fresh one"),
    "nbformat 4.0": (_set(["nbformat_minor"], 0), "nbformat 4.0 is saved as 4.5"),
    "nbformat 4.2": (_set(["nbformat_minor"], 2), "nbformat 4.2 is saved as 4.5"),
    "nbformat 4.4": (_set(["nbformat_minor"], 4), "nbformat 4.4 is saved as 4.5"),
}

# nbformat.reads refuses these (a missing metadata object); reading them costs nothing.
BEYOND_NBFORMAT = {"notebook without metadata", "cell without metadata"}


@pytest.mark.parametrize("case", list(FIXABLE))
def test_fixable_notebook_opens_with_a_warning_and_saves_valid(case: str) -> None:
    change, fix = FIXABLE[case]
    nb = base()
    change(nb)
    if nb["nbformat_minor"] < 5:
        for cell in nb["cells"]:
            cell.pop("id")
    if case not in BEYOND_NBFORMAT:  # nbformat, which Jupyter uses, reads it too
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.reads(json.dumps(nb), as_version=4)
    with capture_logs() as logs:
        doc = from_ipynb(copy.deepcopy(nb), notebook_id="nb")
    [warning] = [entry for entry in logs if entry["log_level"] == "warning"]
    assert any(fix in line for line in warning["fixes"]), warning["fixes"]
    saved = to_ipynb(doc)
    nbformat.validate(saved)
    assert (saved["nbformat"], saved["nbformat_minor"]) == (4, 5)
    sources = [cell["source"] for cell in saved["cells"]]
    assert sources == [cell.get("source", "") for cell in nb["cells"]]


def test_a_sound_notebook_logs_no_fix() -> None:
    with capture_logs() as logs:
        from_ipynb(base(), notebook_id="nb")
    assert [entry for entry in logs if entry["log_level"] == "warning"] == []


def test_kernelspec_without_name_keeps_the_rest() -> None:
    nb = base()
    del nb["metadata"]["kernelspec"]["name"]
    doc = from_ipynb(nb, notebook_id="nb")
    assert "kernelspec" not in doc.get_metadata()
    assert doc.get_metadata()["language_info"] == {"name": "python"}
    assert [cell.source for cell in doc.get_cells()] == ["# Title", "1 + 1"]
