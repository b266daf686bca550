"""Pages working together and the page around the notebook, in real headless Chromium.

Two pages type into one cell at the same moment (CodeMirror on the cell's Automerge
Text), the landing page lists rooms and the working directory's notebooks, and a
100-cell notebook with outputs opens (bundle size and first paint go to the log and
test-artifacts/page-bench.json).
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from runtimed.daemon.web_responses import WEB_ROOT
from tests.web.conftest import ARTIFACTS, Browser, WebDaemon

pytestmark = [pytest.mark.slow]

TYPED_A = "the quick brown fox jumps over the lazy dog "
TYPED_B = "PACK MY BOX WITH FIVE DOZEN LIQUOR JUGS 0123 "


def is_subsequence(part: str, whole: str) -> bool:
    letters = iter(whole)
    return all(char in letters for char in part)


def editor_text(cell_id: str) -> str:
    return f"runtimed.page.views.get({json.dumps(cell_id)}).editor.state.doc.toString()"


async def test_two_pages_typing_in_one_cell_keep_every_character(
    web: WebDaemon, browser: Browser
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with web.client("page-collab") as py:
        cell_id = py.doc.add_cell(source="")
        await py.wait_synced()
        for page in ("a", "b"):
            await browser.call("open", page=page, url=web.page_url("page-collab"))
            await browser.call("click", page=page, selector=".cm-content")
        await browser.call(
            "typeTogether",
            typing=[
                {"page": "a", "text": TYPED_A, "delay": 10},
                {"page": "b", "text": TYPED_B, "delay": 10},
            ],
            timeout=120,
        )
        total = len(TYPED_A) + len(TYPED_B)
        await py.wait_for(
            lambda c: len(c.doc.get_cells()[0].source) == total, 30, "every character"
        )
        final = py.doc.get_cells()[0].source
        # Both pages' editors and docs end equal to the daemon's, with every keystroke.
        for page in ("a", "b"):
            await browser.wait(page, f"{editor_text(cell_id)} === {json.dumps(final)}")
        assert sorted(final) == sorted(TYPED_A + TYPED_B)
        assert is_subsequence(TYPED_A, final)
        assert is_subsequence(TYPED_B, final)
        # Each page shows the other's cursor (PRESENCE frames through the daemon).
        for page in ("a", "b"):
            await browser.wait(page, "document.querySelector('.remote-cursor') !== null")
        await browser.call("screenshot", page="a", path=str(ARTIFACTS / "page-collab-a.png"))
        await browser.call("screenshot", page="b", path=str(ARTIFACTS / "page-collab-b.png"))
        # Leaving the editor (Escape) takes the caret away from the other page.
        await browser.call("press", page="b", key="Escape")
        await browser.wait("a", "document.querySelector('.remote-cursor') === null")
        assert await browser.call("errors") == []


def inner_text(selector: str) -> str:
    return f"document.querySelector({json.dumps(selector)})?.innerText"


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def write_notebook(path: Path, cells: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=cells), path)


async def test_landing_lists_rooms_and_notebooks_on_disk(
    web: WebDaemon, browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "work"
    write_notebook(folder / "analysis.ipynb", [new_markdown_cell("# Analysis")])
    write_notebook(folder / "sub" / "deeper.ipynb", [])
    write_notebook(folder / ".hidden" / "secret.ipynb", [])
    write_notebook(tmp_path / "outside.ipynb", [])
    (folder / "link.ipynb").symlink_to(tmp_path / "outside.ipynb")
    (folder / "notes.txt").write_text("not a notebook")
    monkeypatch.chdir(folder)

    base = f"http://127.0.0.1:{web.port}/files"
    status, _ = await asyncio.to_thread(fetch, base)
    assert status == 401
    status, body = await asyncio.to_thread(fetch, f"{base}?token={web.token}")
    assert status == 200
    listing = json.loads(body)
    assert [f["name"] for f in listing["files"]] == ["analysis.ipynb", "sub/deeper.ipynb"]
    assert listing["files"][0]["path"] == str(folder.resolve() / "analysis.ipynb")

    async with web.client("untitled-room"):
        await browser.call("open", page="l", url=web.page_url(None))
        await browser.wait("l", "document.querySelectorAll('#files li').length === 2")
        names = await browser.call(
            "eval", page="l", js="[...document.querySelectorAll('#files code')].map(n=>n.innerText)"
        )
        assert names == ["analysis.ipynb", "sub/deeper.ipynb"]
        rooms = await browser.call("eval", page="l", js=inner_text("#rooms"))
        assert "untitled-room" in rooms
        await browser.call("screenshot", page="l", path=str(ARTIFACTS / "page-landing.png"))
        # A file's link opens it, in the same tab (which keeps the token: token.js), as a
        # room whose id is its path, shown as a path.
        href = await browser.call("eval", page="l", js="document.querySelector('#files a').href")
        assert "token" not in href
        await browser.call("eval", page="l", js="document.querySelector('#files a').click()")
        title = str(folder.resolve() / "analysis.ipynb")
        await browser.wait("l", f"{inner_text('#title code')} === {json.dumps(title)}")
        await browser.wait("l", "document.querySelector('.rendered-markdown h1') !== null")
        assert await browser.call("errors") == []


def hundred_cells() -> list:
    """Ten sections, each a markdown cell with math and nine code cells with two outputs."""
    cells = []
    for i in range(100):
        if i % 10 == 0:
            cells.append(new_markdown_cell(f"## Section {i // 10}\n\nSome $x_{i}^2$ math."))
            continue
        html = {"text/html": f"<b>cell {i}</b>", "text/plain": f"cell {i}"}
        outputs = [
            new_output("stream", name="stdout", text=f"line {i}\n" * 5),
            new_output("execute_result", data=html, execution_count=i),
        ]
        source = f"for j in range(5):\n    print('line', {i})\nHTML('cell {i}')"
        cells.append(new_code_cell(source, outputs=outputs, execution_count=i))
    return cells


async def test_a_hundred_cell_notebook_opens(
    web: WebDaemon, browser: Browser, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    cells = hundred_cells()
    path = tmp_path / "hundred.ipynb"
    write_notebook(path, cells)
    url = web.page_url(str(path))
    await browser.call("open", page="h", url=url)
    all_shown = (
        "document.querySelectorAll('.cell').length === 100 && "
        "document.querySelectorAll('.jp-OutputArea-output').length === 180 && "
        "document.querySelectorAll('.rendered-markdown .katex').length === 10"
    )
    await browser.wait("h", all_shown, timeout=60)
    shown_ms = await browser.call("eval", page="h", js="performance.now()")
    timings = await browser.call("eval", page="h", js="runtimed.timings")
    await browser.call("screenshot", page="h", path=str(ARTIFACTS / "page-hundred-cells.png"))
    dist = WEB_ROOT / "dist"
    report = {
        "app_js_bytes": (dist / "app.js").stat().st_size,
        "app_css_bytes": (dist / "app.css").stat().st_size,
        "cells": 100,
        "outputs": 180,
        # milliseconds since navigation: script running, wasm compiled, room joined,
        # cells in the DOM, and every output and formula shown (polled: +-50 ms)
        **{f"{step}_ms": round(ms) for step, ms in timings.items()},
        "all_outputs_ms": round(shown_ms),
    }
    (ARTIFACTS / "page-bench.json").write_text(json.dumps(report, indent=1) + "\n")
    with capsys.disabled():  # in the test log even when the test passes
        print(f"\npage bench: {json.dumps(report)}")
    assert await browser.call("errors") == []
