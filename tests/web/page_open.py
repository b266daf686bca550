"""Opening a 100-cell notebook with outputs in the page: what the browser test and
`make bench` (case `page`) measure, from one place.

First paint (js/src/page/notebook_page.js, `firstPaint`): every cell on screen once the
cells are in the DOM has its outputs and its markdown, math included, rendered, and the
browser has painted a frame. The page records it in `runtimed.timings.firstPaint`,
milliseconds since navigation, beside the steps before it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tests.web.conftest import Browser

CELLS = 100
OUTPUTS = 180
FORMULAS = 10

ALL_SHOWN = (
    f"document.querySelectorAll('.cell').length === {CELLS} && "
    f"document.querySelectorAll('.jp-OutputArea-output').length === {OUTPUTS} && "
    f"document.querySelectorAll('.rendered-markdown .katex').length === {FORMULAS}"
)

# Every cell in the viewport has what first paint promises: a code cell its two outputs,
# a markdown cell its formula. Holds from first paint on (rendering only pushes cells
# below the screen down, never brings an unrendered one up).
ON_SCREEN_RENDERED = """(() => {
  const onScreen = [...document.querySelectorAll('.cell')].filter((node) => {
    const { top, bottom } = node.getBoundingClientRect();
    return bottom > 0 && top < innerHeight;
  });
  return onScreen.length > 0 && onScreen.every((node) => node.classList.contains('code')
    ? node.querySelectorAll('.jp-OutputArea-output').length === 2
    : node.querySelector('.rendered-markdown .katex') !== null);
})()"""

_STATIC_IMPORT = re.compile(r'(?:from|import)\s*"\./([\w.-]+\.js)"')


def hundred_cells() -> list:
    """Ten sections, each a markdown cell with math and nine code cells with two outputs."""
    cells = []
    for i in range(CELLS):
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


def write_hundred(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=hundred_cells()), path)


def bundle_sizes(dist: Path) -> dict[str, int]:
    """Bytes of the core (app.js and the chunks it imports statically: what first paint
    loads), of all the page's JS (the lazy chunks too), and of app.css."""
    core: set[str] = set()
    todo = ["app.js"]
    while todo:
        name = todo.pop()
        if name not in core:
            core.add(name)
            todo += _STATIC_IMPORT.findall((dist / name).read_text())
    return {
        "core_js_bytes": sum((dist / name).stat().st_size for name in core),
        "all_js_bytes": sum(path.stat().st_size for path in dist.glob("*.js")),
        "app_css_bytes": (dist / "app.css").stat().st_size,
    }


async def open_timed(browser: Browser, page: str, url: str) -> dict[str, Any]:
    """Open the notebook in a fresh page; its timings (ms since navigation) once every
    output is shown. Fails when first paint left a cell on screen unrendered."""
    await browser.call("open", page=page, url=url)
    await browser.wait(page, "runtimed.timings?.firstPaint !== undefined", timeout=60)
    assert await browser.call("eval", page=page, js=ON_SCREEN_RENDERED), "first paint incomplete"
    await browser.wait(page, ALL_SHOWN, timeout=60)
    shown_ms = await browser.call("eval", page=page, js="performance.now()")
    timings = await browser.call("eval", page=page, js="runtimed.timings")
    report = {f"{step}_ms": round(ms) for step, ms in timings.items()}
    report["all_outputs_ms"] = round(shown_ms)  # polled from outside: within about 50 ms
    return report
