"""Case 14: the notebook page opening a 100-cell notebook with 180 outputs and ten formulas.

Headless Chromium (the browser tests' driver) opens the notebook's page in a fresh
browser context each time (nothing cached), against a daemon with its WebSocket
listener. The figures are the page's own timings, milliseconds since navigation
(tests/web/page_open.py): the core bundle running, the wasm compiled, the room joined,
the cells in the DOM, the first paint (the cells on screen with their outputs and math
rendered) and every output shown. The first open also opens the room (the daemon reads
the file): it is reported apart, the rows are the opens of a room already open.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from runtimed.config import token_path
from runtimed.daemon.web_responses import WEB_ROOT
from runtimed.daemon.web_token import page_url

from ..context import BenchContext
from ..jupyter_ws import free_port
from ..procs import DaemonProcess
from ..result import CaseResult, Check, Row

# The page's driver and notebook are the browser tests' own (tests/web/).
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.web.conftest import Browser
from tests.web.page_open import CELLS, OUTPUTS, bundle_sizes, open_timed, write_hundred

KEY = "page"
TITLE = "14. The notebook page: a 100-cell notebook with outputs opens"
TARGET_MS = 1000
STEPS = {
    "scriptStart_ms": "core bundle running",
    "wasmReady_ms": "Automerge wasm ready",
    "joined_ms": "room joined (SNAPSHOT, first SYNC)",
    "rendered_ms": "cells in the DOM",
    "firstPaint_ms": "first paint",
    "all_outputs_ms": "every output shown",
}


async def run(ctx: BenchContext) -> list[CaseResult]:
    repeats = ctx.pick(8, 3)
    workdir = ctx.dir(KEY)
    path = workdir / "hundred.ipynb"
    write_hundred(path)
    sizes = bundle_sizes(WEB_ROOT / "dist")
    daemon = await DaemonProcess(workdir, ws_port=free_port()).start()
    browser = await Browser.launch()
    try:
        token = token_path(daemon.socket_path).read_text().strip()
        url = page_url("127.0.0.1", daemon.ws_port, token, str(path))
        opens = []
        for i in range(repeats + 1):
            opens.append(await open_timed(browser, f"open-{i}", url))
            await browser.call("eval", page=f"open-{i}", js="runtimed.client.close()")
            ctx.progress(KEY, f"open {i}: first paint {opens[-1]['firstPaint_ms']} ms")
    finally:
        await browser.quit()
        await daemon.stop()
    first, joins = opens[0], opens[1:]
    result = CaseResult(
        KEY,
        TITLE,
        params={"cells": CELLS, "outputs": OUTPUTS, "repeats": repeats, **sizes},
    )
    for step, label in STEPS.items():
        result.rows.append(Row(label, "ms", [float(timings[step]) for timings in joins]))
    paint = statistics.median(timings["firstPaint_ms"] for timings in joins)
    result.checks.append(
        Check(
            f"first paint under {TARGET_MS} ms (100 cells with outputs, fresh browser context)",
            paint < TARGET_MS,
            f"median {paint:.0f} ms; the open that also opened the room: "
            f"{first['firstPaint_ms']} ms",
        )
    )
    result.notes.append(
        f"core bundle (app.js and its static chunks) {sizes['core_js_bytes']:,} bytes of "
        f"{sizes['all_js_bytes']:,} (CodeMirror, the widget manager, marked and KaTeX load "
        f"lazily); app.css {sizes['app_css_bytes']:,} bytes; the first open, which also "
        f"opened the room from the file: {first}"
    )
    return [result]
