"""The notebook page in real headless Chromium, against a real daemon, kernel and ipywidgets."""

from __future__ import annotations

import json

import pytest

from tests.bridge.helpers import done, run_cell
from tests.web.conftest import ARTIFACTS, Browser, WebDaemon

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

NOTEBOOK = "browser-notebook"
SLIDER_CELL = (
    "from ipywidgets import IntSlider\n"
    "slider = IntSlider(value=10, min=0, max=100, description='x')\n"
    "slider"
)
READOUT = "document.querySelector('.widget-slider .widget-readout')?.textContent"


async def kernel_slider_value(client) -> int:
    outputs = await run_cell(client, "print(slider.value)")
    return int("".join(o.get("text", "") for o in outputs if o["output_type"] == "stream"))


async def page_shows(browser: Browser, page: str, value: int, timeout: float = 20) -> None:
    await browser.wait(page, f"{READOUT} === {json.dumps(str(value))}", timeout=timeout)


async def test_slider_moves_between_pages_and_the_kernel(web: WebDaemon, browser: Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with web.client(NOTEBOOK) as py:
        # A person opens the page, writes a cell and runs it: the kernel starts, the
        # slider appears, rendered by @jupyter-widgets/html-manager.
        await browser.call("open", page="a", url=web.page_url(NOTEBOOK))
        await browser.call("click", page="a", selector="#add-cell")
        await browser.call("fill", page="a", selector="section.cell .cm-content", text=SLIDER_CELL)
        await browser.call("click", page="a", selector="section.cell button.run")
        await page_shows(browser, "a", 10, timeout=60)

        # Dragging it in the page reaches the kernel.
        await browser.call("drag", page="a", selector=".widget-slider .noUi-handle", dx=40)
        await browser.wait("a", f"{READOUT} !== '10'")
        dragged = int(await browser.call("eval", page="a", js=READOUT))
        assert 10 < dragged < 100, "the drag should land inside the range"
        await py.wait_for(lambda c: c.kernel_status == "idle", 30, "kernel idle")
        deadline = 20
        while (value := await kernel_slider_value(py)) != int(
            await browser.call("eval", page="a", js=READOUT)
        ):
            deadline -= 1
            assert deadline, f"kernel holds {value}, the page shows another value"
        assert 10 < value < 100

        # A change made in the kernel moves the page's slider.
        await run_cell(py, "slider.value = 42")
        await page_shows(browser, "a", 42)

        # A page opened late, while the kernel is asleep and cannot answer anything,
        # already shows the widget at 42: its state came from the daemon's doc.
        sleep = (await py.request("execute", code="import time; time.sleep(300)"))["msg_id"]
        await py.wait_for(lambda c: c.kernel_status == "busy", 30, "kernel busy")
        await browser.call("open", page="b", url=web.page_url(NOTEBOOK))
        await page_shows(browser, "b", 42)
        assert py.kernel_status == "busy"
        await py.request("interrupt_kernel")
        await py.wait_for(lambda c: done(c, sleep), 30, "sleep interrupted")

        # The kernel moves every open page; a drag in one page moves the other.
        await run_cell(py, "slider.value = 70")
        await page_shows(browser, "a", 70)
        await page_shows(browser, "b", 70)
        await browser.call("drag", page="b", selector=".widget-slider .noUi-handle", dx=-40)
        await browser.wait("b", f"{READOUT} !== '70'")
        moved = int(await browser.call("eval", page="b", js=READOUT))
        assert 0 < moved < 70
        await page_shows(browser, "a", moved)
        assert await kernel_slider_value(py) == moved

        await browser.call("screenshot", page="a", path=str(ARTIFACTS / "browser-page-a.png"))
        await browser.call("screenshot", page="b", path=str(ARTIFACTS / "browser-page-b.png"))
        assert await browser.call("errors") == []
        await py.request("shutdown_kernel")


async def test_an_output_widget_shows_what_it_captured(web: WebDaemon, browser: Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with web.client("browser-output") as py:
        await py.request("launch_kernel")
        await run_cell(py, "from ipywidgets import Output, IntSlider\nout = Output()\nout")
        await browser.call("open", page="o", url=web.page_url("browser-output"))
        # Captured while the page is open: a print and a nested widget, inside the widget.
        cell_outputs = await run_cell(
            py, "with out:\n    print('captured line')\n    display(IntSlider(value=3))"
        )
        assert cell_outputs == []  # nothing went to the cell
        await browser.wait("o", "document.body.innerText.includes('captured line')")
        await browser.wait("o", f"{READOUT} === '3'")
        # A page opened afterwards gets the same from the doc.
        await browser.call("open", page="late", url=web.page_url("browser-output"))
        await browser.wait("late", "document.body.innerText.includes('captured line')")
        await browser.call("screenshot", page="late", path=str(ARTIFACTS / "output-widget.png"))
        assert await browser.call("errors") == []
        await py.request("shutdown_kernel")
