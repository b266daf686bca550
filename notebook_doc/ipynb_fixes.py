"""Lenient reading of .ipynb files: fix in place what nbformat only warns about.

Jupyter opens a notebook whose kernelspec lacks `name`, whose cells lack `metadata`,
or that declares an older nbformat 4 minor version; so does the daemon. Each fix is
reported in words (the loader logs them), and the doc written back on save is a valid
nbformat 4.5 notebook. What no fix can make readable is still refused, with nbformat's
reason.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Final

__all__ = ["CELL_ID", "CURRENT_MINOR", "fix_notebook"]

CURRENT_MINOR: Final = 5
CELL_ID: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")  # nbformat 4.5's cell id pattern
# Keys only a code cell may have; a markdown or raw cell loses them.
_CODE_ONLY: Final = ("outputs", "execution_count")
# Fields an output needs, with the value Jupyter front ends assume when one is missing.
_OUTPUT_DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "execute_result": {"metadata": {}, "data": {}, "execution_count": None},
    "display_data": {"metadata": {}, "data": {}},
    "stream": {"name": "stdout", "text": ""},
    "error": {"ename": "", "evalue": "", "traceback": []},
}


def fix_notebook(notebook: dict[str, Any]) -> list[str]:
    """Fill what nbformat requires and Jupyter does without; returns what was fixed.

    `notebook` is an nbformat 4 dict whose `cells` is a list of objects.
    """
    fixes: list[str] = []
    minor = notebook.get("nbformat_minor")
    if not isinstance(minor, int) or isinstance(minor, bool) or minor < 0:
        notebook["nbformat_minor"] = 0
        fixes.append(f"nbformat_minor {minor!r} read as 0")
    elif minor < CURRENT_MINOR:
        fixes.append(f"nbformat 4.{minor} is saved as 4.{CURRENT_MINOR}")
    if "metadata" not in notebook:
        notebook["metadata"] = {}
        fixes.append("missing notebook metadata set to {}")
    if isinstance(notebook["metadata"], dict):
        fixes.extend(_fix_metadata(notebook["metadata"]))
    check_ids = notebook["nbformat_minor"] >= CURRENT_MINOR
    for index, cell in enumerate(notebook["cells"]):
        fixes.extend(f"cells[{index}]: {fix}" for fix in _fix_cell(cell, check_ids))
    return fixes


def _fix_metadata(metadata: dict[str, Any]) -> list[str]:
    fixes: list[str] = []
    kernelspec = metadata.get("kernelspec")
    if "kernelspec" in metadata and not (
        isinstance(kernelspec, dict) and isinstance(kernelspec.get("name"), str)
    ):
        del metadata["kernelspec"]
        fixes.append("kernelspec without a name dropped (the default kernel is used)")
    elif isinstance(kernelspec, dict) and not isinstance(kernelspec.get("display_name"), str):
        kernelspec["display_name"] = kernelspec["name"]
        fixes.append("kernelspec.display_name set to its name")
    language_info = metadata.get("language_info")
    if "language_info" in metadata and not (
        isinstance(language_info, dict) and isinstance(language_info.get("name"), str)
    ):
        del metadata["language_info"]
        fixes.append("language_info without a name dropped (the kernel sends it again)")
    return fixes


def _fix_cell(cell: dict[str, Any], check_ids: bool) -> list[str]:
    fixes: list[str] = []
    if "metadata" not in cell:
        cell["metadata"] = {}
        fixes.append("missing metadata set to {}")
    if "source" not in cell:
        cell["source"] = ""
        fixes.append("missing source set to ''")
    if (
        check_ids
        and "id" in cell
        and not (isinstance(cell["id"], str) and CELL_ID.fullmatch(cell["id"]))
    ):
        fixes.append(f"id {cell.pop('id')!r} replaced by a fresh one")
    if cell.get("cell_type") in ("markdown", "raw"):
        for key in _CODE_ONLY:
            if key in cell:
                del cell[key]
                fixes.append(f"{key} removed from a {cell['cell_type']} cell")
    if cell.get("cell_type") != "code":
        return fixes
    if "execution_count" not in cell:
        cell["execution_count"] = None
        fixes.append("missing execution_count set to null")
    if "outputs" not in cell:
        cell["outputs"] = []
        fixes.append("missing outputs set to []")
    elif isinstance(cell["outputs"], list):
        for number, output in enumerate(cell["outputs"]):
            fixes.extend(f"outputs[{number}]: {fix}" for fix in _fix_output(output))
    return fixes


def _fix_output(output: object) -> list[str]:
    if not isinstance(output, dict):
        return []
    defaults = _OUTPUT_DEFAULTS.get(output.get("output_type"), {})  # type: ignore[arg-type]
    missing = [key for key in defaults if key not in output]
    for key in missing:
        output[key] = copy.deepcopy(defaults[key])  # never one shared {} or []
    return [f"missing {key} set to {defaults[key]!r}" for key in missing]
