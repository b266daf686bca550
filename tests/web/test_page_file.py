"""The page and a notebook file, in real headless Chromium: the save state, `[*]` while a
cell is queued or running, an aborted cell shown as aborted, and New creating a file."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest

from tests.conftest import eventually
from tests.web.conftest import Browser, WebDaemon

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

SAVE = "document.querySelector('#save-status')?.textContent"


def prompts_js(cell_ids: list[str]) -> str:
    selectors = [f"section[data-cell-id='{cell_id}'] .prompt" for cell_id in cell_ids]
    return (
        "["
        + ",".join(f"document.querySelector({json.dumps(s)})?.textContent" for s in selectors)
        + "]"
    )


async def test_page_shows_save_state_and_how_cells_ended(
    web: WebDaemon, browser: Browser, tmp_path: Path
) -> None:
    path = tmp_path / "page.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import time; time.sleep(2); raise ValueError('boom')"),
        nbformat.v4.new_code_cell("print('skipped')"),
    ]
    nb.cells[0].id, nb.cells[1].id = "failing", "skipped"
    nbformat.write(nb, str(path))
    async with web.client(str(path), path=str(path)) as py:
        await browser.call("open", page="p", url=web.page_url(str(path)))
        await browser.wait("p", f"{SAVE} === 'saved'")
        await py.request("launch_kernel")
        await py.request("execute_cell", cell_id="failing")
        await py.request("execute_cell", cell_id="skipped")
        prompts = prompts_js(["failing", "skipped"])
        await browser.wait("p", f'JSON.stringify({prompts}) === \'["[*]:","[*]:"]\'', timeout=30)
        await browser.wait("p", f"{prompts}[1] === '[ ]: aborted'", timeout=30)
        assert (await browser.call("eval", page="p", js=prompts))[0].endswith("error")
        # Outputs and counts changed: the page follows the autosave to "saved".
        await browser.wait("p", f"{SAVE} === 'saved'", timeout=30)
        await py.request("shutdown_kernel")
    saved = nbformat.read(str(path), as_version=4)
    assert saved.cells[0].outputs[0]["ename"] == "ValueError"
    assert "execution_status" not in json.dumps(saved)  # never written into the file


async def test_new_button_creates_the_file(
    web: WebDaemon, browser: Browser, tmp_path: Path
) -> None:
    path = tmp_path / "fresh.ipynb"
    await browser.call("open", page="list", url=web.page_url(""))
    await browser.call("fill", page="list", selector="input[name=notebook]", text=str(path))
    await browser.call("click", page="list", selector="#new")
    await browser.wait("list", f"{SAVE} === 'saved'", timeout=30)
    await eventually(path.exists, what="the new file")
    assert nbformat.read(str(path), as_version=4).cells == []
    # Open (not New) on a path that does not exist says so and makes nothing.
    missing = tmp_path / "typo.ipynb"
    url = web.page_url("").split("&notebook")[0] + f"&notebook={quote(str(missing), safe='')}"
    with pytest.raises(AssertionError, match="does not exist"):
        await browser.call("open", page="typo", url=url)
    assert not missing.exists()
