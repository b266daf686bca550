"""Notebook trust in real headless Chromium: a downloaded notebook runs nothing in the page.

A real daemon, a real .ipynb with hostile outputs and widget state, a real kernel and
the real `runtimed trust` command. Every hostile piece sets a window global when it
runs; the page must render them inert, with the not-trusted mark, until trusted.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from runtimed.client import Client
from tests.daemon.test_trust import html_widget_state
from tests.web.conftest import ARTIFACTS, Browser, WebDaemon

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

HTML = (
    '<b>hello</b><img src="x" onerror="window.ranImg = 1">'
    "<script>window.ranScript = 1</script>"
    '<a href="javascript:window.ranLink = 1">link</a>'
)
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" onload="window.ranSvg = 1">'
    '<script>window.ranSvg = 2</script><rect width="40" height="40" fill="teal"/></svg>'
)
MARKDOWN = '**bold** <img src="x" onerror="window.ranMarkdown = 1">'
WIDGET_HTML = '<img src="x" onerror="window.ranWidget = 1">'
RAN = ["ranImg", "ranScript", "ranJs", "ranSvg", "ranMarkdown", "ranWidget", "ranLink"]


def display(data: dict) -> dict:
    return new_output("display_data", data=data)


def hostile_notebook(path: Path) -> str:
    nb = new_notebook(
        cells=[
            new_code_cell("html()", id="html", outputs=[display({"text/html": HTML})]),
            new_code_cell(
                "js()",
                id="js",
                outputs=[
                    display({"application/javascript": "window.ranJs = 1", "text/plain": "js-text"})
                ],
            ),
            new_code_cell("svg()", id="svg", outputs=[display({"image/svg+xml": SVG})]),
            new_code_cell("md()", id="md", outputs=[display({"text/markdown": MARKDOWN})]),
            new_code_cell(
                "w",
                id="widget",
                outputs=[
                    display(
                        {
                            "application/vnd.jupyter.widget-view+json": {
                                "version_major": 2,
                                "version_minor": 0,
                                "model_id": "w1",
                            },
                            "text/plain": "HTML(value=...)",
                        }
                    )
                ],
            ),
            new_code_cell("", id="fresh"),
        ]
    )
    nb.metadata["widgets"] = html_widget_state("w1", WIDGET_HTML)
    nbformat.write(nb, path)
    return str(path)


def cell(cell_id: str, selector: str = "") -> str:
    return f"document.querySelector('[data-cell-id={cell_id}] {selector}')"


MARKED = "[...document.querySelectorAll('.trust-mark')].filter(m => !m.hidden).length"


def ran_now(names: list[str]) -> str:
    """JS: which of the named window globals are set."""
    return f"({json.dumps(names)}).filter(name => window[name] !== undefined)"


async def runtimed_trust(web: WebDaemon, path: str) -> str:
    """The real command, run without blocking the loop the daemon serves on."""
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "runtimed.cli", "--socket", str(web.settings.socket_path)],
        *["trust", path],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


async def ran_in_page(browser: Browser, page: str, names: list[str]) -> None:
    """Until every named global is set: the markup was rendered trusted and its script
    ran. A Content-Security-Policy that refuses inline script also proves the page
    rendered it trusted (the browser, not the page, stopped it)."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        ran = await browser.call("eval", page=page, js=ran_now(names))
        if set(names) <= set(ran):
            return
        refused = [e for e in await browser.call("errors") if "Content Security Policy" in e]
        if refused:
            return
        assert asyncio.get_running_loop().time() < deadline, f"only {ran} ran of {names}"
        await asyncio.sleep(0.05)


async def inert_rendered(browser: Browser, page: str) -> None:
    """The hostile outputs are on screen, sanitized, and have finished loading."""
    await browser.wait(page, f"{cell('html', 'b')}?.innerText === 'hello'")
    await browser.wait(page, f"{MARKED} === 5")  # html, js, svg, md, widget view
    await browser.wait(page, f"{cell('html', 'img')}?.complete === true")
    await browser.wait(page, f"{cell('md', 'img')}?.complete === true")
    assert await browser.call("eval", page=page, js=cell("html", "script")) is None
    assert await browser.call("eval", page=page, js=cell("html", "[onerror]")) is None
    href = await browser.call("eval", page=page, js=f"{cell('html', 'a')}?.href")
    assert not (href or "").startswith("javascript:")
    js_text = await browser.call("eval", page=page, js=f"{cell('js', '.outputs')}.innerText")
    assert "js-text" in js_text  # the safe fallback, not the JavaScript renderer
    svg = await browser.call("eval", page=page, js=f"{cell('svg', 'img')}?.src ?? ''")
    assert svg.startswith("data:image/svg+xml")  # shown as an image: it runs nothing
    # No markdown parser in the page: the source is shown, sanitized, in a <pre>.
    assert await browser.call("eval", page=page, js=cell("md", "[onerror]")) is None
    assert await browser.call("eval", page=page, js="window.runtimed.widgets.open.size") == 0
    assert (
        await browser.call("eval", page=page, js="document.querySelector('.widget-html')") is None
    )
    badge = await browser.call("eval", page=page, js="document.querySelector('#trust').innerText")
    assert badge == "Not trusted"
    assert await browser.call("eval", page=page, js=ran_now(RAN)) == []


@pytest.fixture
async def shown(
    web: WebDaemon, browser: Browser, tmp_path: Path
) -> AsyncIterator[tuple[Client, str]]:
    """A downloaded notebook shown in page "t", checked inert; a Python peer holds its room."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = hostile_notebook(tmp_path / "downloaded.ipynb")
    async with web.client(path, path=path) as py:
        await browser.call("open", page="t", url=web.page_url(path))
        await inert_rendered(browser, "t")
        yield py, path


async def test_an_untrusted_notebook_runs_nothing_until_trusted(
    web: WebDaemon, browser: Browser, shown: tuple[Client, str]
) -> None:
    py, path = shown
    await browser.call("screenshot", page="t", path=str(ARTIFACTS / "trust-untrusted.png"))

    # `runtimed trust`: the same outputs and the saved widget now render in full.
    assert await runtimed_trust(web, path) == f"trusted {path}"
    await browser.wait("t", f"{MARKED} === 0")
    await browser.wait("t", "document.querySelector('#trust').innerText === 'Trusted'")
    await browser.wait("t", "document.querySelector('.widget-html img') !== null")
    await ran_in_page(browser, "t", ["ranImg", "ranScript", "ranWidget"])
    # JupyterLab 4 has no JavaScript renderer, only its placeholder, trusted or not.
    await browser.wait("t", f"{cell('js', '.jp-RenderedJavaScript')} !== null")
    await browser.call("screenshot", page="t", path=str(ARTIFACTS / "trust-trusted.png"))
    assert py.kernel_status == "none"


async def test_outputs_a_cell_produces_now_are_rendered(
    browser: Browser, shown: tuple[Client, str]
) -> None:
    py, _path = shown
    py.doc.set_source(
        "fresh",
        "from IPython.display import HTML\n"
        "HTML('<b>fresh</b>"
        '<img src="x" onerror="window.ranFresh = 1">\')',
    )
    await py.wait_synced()
    await py.request("launch_kernel")
    await py.request("execute_cell", cell_id="fresh")
    await browser.wait("t", f"{cell('fresh', 'b')}?.innerText === 'fresh'", timeout=60)
    await ran_in_page(browser, "t", ["ranFresh"])
    assert await browser.call("eval", page="t", js=f"{cell('fresh', '.trust-mark')}.hidden")
    # The file's outputs are still untrusted and inert.
    assert await browser.call("eval", page="t", js=MARKED) == 5
    assert await browser.call("eval", page="t", js=ran_now(RAN)) == []
    await browser.call("screenshot", page="t", path=str(ARTIFACTS / "trust-fresh-output.png"))
    await py.request("shutdown_kernel")
