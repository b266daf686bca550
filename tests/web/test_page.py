"""The notebook page as a Jupyter user works in it, in real headless Chromium.

A real daemon and kernel, real pages: JupyterLab's renderers for markdown (with math)
and outputs, the keyboard model driving cell operations that land in the shared doc,
and a widget whose kernel restarted. Two pages typing in one cell are in
test_page_collab.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bridge.helpers import done, run_cell
from tests.web.conftest import ARTIFACTS, Browser, WebDaemon

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

MARKDOWN = (
    "# A heading\n\nEuler says $e^{i\\pi} + 1 = 0$, and\n\n$$\\int_0^1 x\\,dx = \\frac{1}{2}$$\n"
)
OUTPUTS_CELL = (
    "import sys\n"
    "from IPython.display import HTML, Markdown, display\n"
    "display(HTML('<b class=\"made-here\">bold from the kernel</b>'))\n"
    "display(Markdown('inline math: $x^2$'))\n"
    "print('to stdout')\n"
    "print('to stderr', file=sys.stderr)\n"
)


def js_str(value: str) -> str:
    return json.dumps(value)


def query(selector: str, then: str) -> str:
    """JS: the first element matching `selector`, then an expression on it (`?.` safe)."""
    return f"document.querySelector({js_str(selector)})?.{then}"


def cells_of(client) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in client.doc.get_cells()]


async def test_markdown_with_math_html_and_stderr(web: WebDaemon, browser: Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with web.client("page-render") as py:
        py.doc.add_cell(cell_type="markdown", source=MARKDOWN)
        code = py.doc.add_cell(source=OUTPUTS_CELL)
        await py.wait_synced()
        await browser.call("open", page="r", url=web.page_url("page-render"))
        # The markdown cell renders through rendermime: a heading, and KaTeX for the math.
        heading = query(".rendered-markdown h1", "textContent.startsWith('A heading')")
        await browser.wait("r", heading)
        await browser.wait("r", "document.querySelectorAll('.rendered-markdown .katex').length==2")
        assert "$" not in await browser.call(
            "eval", page="r", js="document.querySelector('.rendered-markdown').innerText"
        )
        await py.request("launch_kernel")
        msg_id = (await py.request("execute_cell", cell_id=code))["msg_id"]
        await py.wait_for(lambda c: done(c, msg_id), 60, "cell finished")
        await browser.wait("r", "document.querySelector('.outputs b.made-here') !== null")
        await browser.wait("r", query(".outputs .jp-RenderedMarkdown .katex", "tagName"))
        stderr = "[data-mime-type='application/vnd.jupyter.stderr']"
        await browser.wait("r", query(stderr, "innerText.includes('to stderr')"))
        colors = await browser.call(
            "eval",
            page="r",
            js="""[...document.querySelectorAll('.jp-RenderedText')].map((n) => [
                n.dataset.mimeType, getComputedStyle(n).backgroundColor])""",
        )
        by_kind = {kind.rsplit(".", 1)[-1]: color for kind, color in colors}
        assert by_kind["stderr"] != by_kind["stdout"]
        # A cell that raises is marked, beside its traceback.
        failing = py.doc.add_cell(source="1 / 0")
        await py.wait_synced()
        msg_id = (await py.request("execute_cell", cell_id=failing))["msg_id"]
        await py.wait_for(lambda c: done(c, msg_id), 60, "failing cell finished")
        last_prompt = "[...document.querySelectorAll('.cell .prompt')].at(-1).textContent"
        await browser.wait("r", f"{last_prompt} === '[2]: error'")
        traceback = "[...document.querySelectorAll('.cell')].at(-1).innerText"
        await browser.wait("r", f"{traceback}.includes('ZeroDivisionError')")
        await browser.call("screenshot", page="r", path=str(ARTIFACTS / "page-render.png"))
        assert await browser.call("errors") == []
        await py.request("shutdown_kernel")


async def test_keyboard_model_end_to_end(web: WebDaemon, browser: Browser, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = str(tmp_path / "keys.ipynb")
    flag = tmp_path / "go"
    async with web.client(path, path=path, create=True) as py:
        await browser.call("open", page="k", url=web.page_url(path))
        await browser.wait("k", "document.body.dataset.mode === 'command'")

        async def press(*keys: str) -> None:
            for key in keys:
                await browser.call("press", page="k", key=key)

        async def doc_has(expected: list[tuple[str, str]]) -> None:
            await py.wait_for(lambda c: cells_of(c) == expected, 20, f"cells {expected}")

        # B adds a cell, Enter edits it, Shift+Enter runs it and adds one at the end.
        await press("b")
        await doc_has([("code", "")])
        await press("Enter")
        await browser.wait("k", "document.body.dataset.mode === 'edit'")
        await browser.call("type", page="k", text="6 * 7")
        await press("Shift+Enter")
        await doc_has([("code", "6 * 7"), ("code", "")])
        answer = query(".cell .jp-OutputArea-output", "innerText.includes('42')")
        await browser.wait("k", answer, 60)
        await browser.wait("k", "document.querySelector('.cell .prompt').textContent === '[1]:'")
        await browser.wait("k", "document.body.dataset.mode === 'edit'")

        # A cell blocked on a file shows [*] until the file appears (Ctrl+Enter: in place).
        blocked = f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.05)"
        await browser.call("type", page="k", text=blocked)
        await press("Control+Enter")
        await browser.wait("k", "document.body.dataset.mode === 'command'")
        second = "document.querySelectorAll('.cell .prompt')[1].textContent"
        await browser.wait("k", f"{second} === '[*]:'", 30)
        flag.touch()
        await browser.wait("k", f"{second} === '[2]:'", 30)

        # Escape is command mode; M makes a markdown cell; Shift+Enter renders it.
        await press("Escape", "a", "m", "Enter")
        await browser.call("type", page="k", text="## Notes")
        await press("Shift+Enter")
        await browser.wait("k", query(".rendered-markdown h2", "textContent.startsWith('Notes')"))
        sources = [s for _, s in cells_of(py)]
        assert [t for t, _ in cells_of(py)] == ["code", "markdown", "code"]
        assert sources[1] == "## Notes"

        # Up/down (and K/J) select; Shift+Up moves the selected cell up in the doc.
        await press("j", "k", "ArrowDown")  # the last cell is selected
        await press("Shift+ArrowUp")
        await py.wait_for(
            lambda c: [t for t, _ in cells_of(c)] == ["code", "code", "markdown"], 20, "moved up"
        )
        # Y turns the markdown cell into code; D D deletes the selected cell; Z brings it back.
        await press("ArrowDown", "y")
        await py.wait_for(lambda c: [t for t, _ in cells_of(c)] == ["code"] * 3, 20, "y")
        before = cells_of(py)
        await press("ArrowUp", "d", "d")
        await py.wait_for(lambda c: len(c.doc.get_cells()) == 2, 20, "deleted")
        assert cells_of(py) == [before[0], before[2]]
        await press("z")
        await py.wait_for(lambda c: cells_of(c) == before, 20, "undone")
        # Alt+Enter runs and inserts a cell below, in edit mode.
        await press("ArrowUp", "ArrowUp", "Alt+Enter")
        await py.wait_for(
            lambda c: len(c.doc.get_cells()) == 4 and cells_of(c)[1] == ("code", ""), 20, "inserted"
        )
        await browser.wait("k", "document.body.dataset.mode === 'edit'")

        # Up on an editor's first line edits the cell above.
        await press("ArrowUp")
        first_active = "document.querySelector('.cell.active') === document.querySelector('.cell')"
        await browser.wait("k", first_active)
        assert await browser.call("eval", page="k", js="document.body.dataset.mode") == "edit"

        # Run all runs every cell in order; Clear outputs empties them through the doc.
        counts = [c.execution_count for c in py.doc.get_cells()]
        await browser.call("click", page="k", selector="#run-all")

        def all_ran(c) -> bool:
            cells = c.doc.get_cells()
            return all(
                cell.execution_count is not None and (old is None or cell.execution_count > old)
                for cell, old in zip(cells, counts, strict=True)
                if cell.source
            )

        await py.wait_for(all_ran, 60, "every cell ran again")
        await browser.call("click", page="k", selector="#clear-outputs")
        await py.wait_for(
            lambda c: all(not x.outputs and x.execution_count is None for x in c.doc.get_cells()),
            20,
            "outputs cleared",
        )

        # Run above runs the cells before the selected one, Run below it and the rest.
        await press("Escape", "ArrowDown", "ArrowDown", "ArrowDown")  # the last cell

        def ran(c) -> list[bool]:
            return [cell.execution_count is not None for cell in c.doc.get_cells() if cell.source]

        await browser.call("click", page="k", selector="#run-above")
        await py.wait_for(lambda c: ran(c) == [True, True, False], 60, "the cells above ran")
        await browser.call("click", page="k", selector="#run-below")
        await py.wait_for(lambda c: ran(c) == [True, True, True], 60, "the last cell ran")

        # H shows the help overlay, Escape hides it; Ctrl+S saves the file.
        await press("Escape", "h")
        await browser.wait("k", "!document.querySelector('#help').hidden")
        assert "Shift-Enter" in await browser.call("eval", page="k", js=query("#help", "innerText"))
        await browser.call("screenshot", page="k", path=str(ARTIFACTS / "page-help.png"))
        await press("Escape")
        await browser.wait("k", "document.querySelector('#help').hidden")
        await press("Control+s")
        await browser.wait("k", "document.querySelector('#save-status').textContent === 'saved'")
        saved = json.loads(Path(path).read_text())
        assert saved["cells"][0]["source"] == "6 * 7"
        await browser.call("screenshot", page="k", path=str(ARTIFACTS / "page-keyboard.png"))
        assert await browser.call("errors") == []
        await py.request("shutdown_kernel")


SLIDER = "from ipywidgets import IntSlider\nslider = IntSlider(value=10, description='x')\nslider"
READOUT = "document.querySelector('.widget-slider .widget-readout')?.textContent"


async def test_a_restarted_kernels_widget_shows_its_saved_state(
    web: WebDaemon, browser: Browser
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with web.client("page-restart") as py:
        await py.request("launch_kernel")
        await browser.call("open", page="w", url=web.page_url("page-restart"))
        await run_cell(py, SLIDER)
        await browser.wait("w", f"{READOUT} === '10'", 60)
        await run_cell(py, "slider.value = 42")
        await browser.wait("w", f"{READOUT} === '42'")
        await py.request("restart_kernel")
        # The model is gone with the kernel: the page shows the state it last had, read only.
        await browser.wait("w", query(".widget-unavailable .widget-slider", "tagName"), 30)
        assert await browser.call("eval", page="w", js=READOUT) == "42"
        text = await browser.call("eval", page="w", js="document.body.innerText")
        assert "Saved state, read only" in text
        assert "Error creating widget" not in text
        shot = str(ARTIFACTS / "page-restarted-widget.png")
        await browser.call("screenshot", page="w", path=shot)
        # A page opened after the restart never saw the model: a plain placeholder.
        await browser.call("open", page="late", url=web.page_url("page-restart"))
        await browser.wait("late", "document.body.innerText.includes('Widget not available')", 30)
        assert "Error creating widget" not in await browser.call(
            "eval", page="late", js="document.body.innerText"
        )
        assert await browser.call("errors") == []
        await py.request("shutdown_kernel")
