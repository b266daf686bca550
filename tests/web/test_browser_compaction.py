"""The notebook page across compactions: its widgets stay live and it keeps working."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bridge.helpers import done, run_cell
from tests.web.conftest import ARTIFACTS, Browser, WebDaemon

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

NOTEBOOK = "browser-compaction"
PROGRESS_CELL = (
    "from ipywidgets import FloatProgress, HTML, HBox\n"
    "bar = FloatProgress(value=0, min=0, max=1_000_000)\n"
    "label = HTML(value='step 0')\n"
    "HBox([bar, label])"
)
# A tqdm-like loop: one update of each widget per step until the test drops the stop
# file, then a last, distinct value.
STREAM = """
import os, time
step = 0
while not os.path.exists({stop!r}):
    step += 1
    bar.value = step
    label.value = f'step {{step}}'
    time.sleep(0.01)
bar.value = step
label.value = f'done {{step}}'
"""
LABEL = "document.querySelector('.widget-html-content')?.textContent ?? ''"
STEP = f"Number(({LABEL}).split(' ')[1] ?? -1)"


async def compact_while_the_page_updates(py, browser: Browser, epoch: int) -> None:
    """Force a compaction; the page switches to `epoch` and its label keeps moving."""
    assert (await py.request("compact"))["epoch"] == epoch
    await browser.wait("p", f"window.runtimed.client.epoch === {epoch}")
    await browser.wait("p", "window.runtimed.client.switching === null")
    seen = await browser.call("eval", page="p", js=STEP)
    await browser.wait("p", f"{STEP} > {seen}")


async def test_a_widget_stream_stays_live_in_the_page_across_compactions(
    web: WebDaemon, browser: Browser, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    stop = tmp_path / "stop"
    async with web.client(NOTEBOOK) as py:
        await py.request("launch_kernel")
        await run_cell(py, PROGRESS_CELL)
        await browser.call("open", page="p", url=web.page_url(NOTEBOOK))
        await browser.wait("p", f"{LABEL} === 'step 0'")

        stream = (await py.request("execute", code=STREAM.format(stop=str(stop))))["msg_id"]
        await browser.wait("p", f"{STEP} > 0")
        await compact_while_the_page_updates(py, browser, 1)
        await compact_while_the_page_updates(py, browser, 2)

        stop.touch()
        await py.wait_for(lambda c: done(c, stream), 60, "the stream's end")
        outputs = await run_cell(py, "print(bar.value, label.value)")
        value, final = outputs[0]["text"].split(" ", 1)
        final = final.strip()
        assert final.startswith("done ")
        await browser.wait("p", f"{LABEL} === {json.dumps(final)}")
        bar_id = next(c.comm_id for c in py.doc.get_comms() if c.model_name == "FloatProgressModel")
        shown = await browser.call(
            "eval",
            page="p",
            js=f"window.runtimed.widgets.model({json.dumps(bar_id)}).then(m => m.get('value'))",
        )
        assert shown == float(value)

        # Every cell is still shown, and the page still edits the (compacted) doc.
        cells = len(py.doc.get_cells())
        assert (
            await browser.call(
                "eval", page="p", js="document.querySelectorAll('section.cell').length"
            )
            == cells
        )
        await browser.call("click", page="p", selector="#add-cell")
        await browser.call(
            "fill", page="p", selector="section.cell:last-of-type .cm-content", text="# typed after"
        )

        def typed(client) -> bool:
            return any(cell.source == "# typed after" for cell in client.doc.get_cells())

        await py.wait_for(typed, 15, "the page's edit after the compactions")
        assert py.epoch == 2
        await browser.call("screenshot", page="p", path=str(ARTIFACTS / "browser-compaction.png"))
        assert await browser.call("errors") == []
        await py.request("shutdown_kernel")
