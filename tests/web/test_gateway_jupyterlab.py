"""JupyterLab (from PyPI, prebuilt) with `--gateway-url` at the daemon, in headless Chromium.

The notebook makes a slider and moves it 20,000 times: through the daemon the slider
JupyterLab renders ends at the kernel's value (jupyter_server alone, rate-limited,
delivers a few thousand and stops at a wrong one). A page reloaded while the kernel
sleeps shows the slider at once: the daemon answers the widget manager's
`request_states` from CommState instead of the busy kernel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.web.conftest import Browser, WebDaemon
from tests.web.kernel_ws import gateway_server

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.timeout(600)]

UPDATES = 20_000
CELLS = [
    "import ipywidgets as w\ns = w.IntSlider(0, max=10**6)\ns",
    f"for i in range({UPDATES}):\n    s.value = i",
    "import time\ntime.sleep(120)",
]
READOUT = "document.querySelector('.widget-slider .widget-readout')"
APP = "window.jupyterapp"


def _notebook(path: Path) -> None:
    cells = [
        {
            "cell_type": "code",
            "metadata": {},
            "source": source,
            "outputs": [],
            "execution_count": None,
            "id": f"cell{i}",
        }
        for i, source in enumerate(CELLS)
    ]
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))


async def _run_cell(browser: Browser, index: int) -> None:
    """Start a cell (the command's promise, which ends with the cell, is not awaited)."""
    await browser.call(
        "eval",
        page="lab",
        js=f"{APP}.shell.currentWidget.content.activeCellIndex = {index};"
        f" {APP}.commands.execute('notebook:run-cell'); true",
    )


async def _kernel_idle(browser: Browser, timeout: float = 120) -> None:
    js = (
        f"{APP}.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'"
        f" && {APP}.shell.currentWidget.sessionContext.session.kernel.connectionStatus"
        " === 'connected'"
    )
    await browser.wait("lab", js, timeout=timeout)


async def _open_notebook(browser: Browser) -> None:
    """Once JupyterLab has started (again), open the notebook (it rejoins its kernel)."""
    await browser.wait("lab", f"{APP}?.started !== undefined", timeout=120)
    await browser.call(
        "eval",
        page="lab",
        js=f"{APP}.started.then(() => {APP}.restored)"
        f".then(() => {APP}.commands.execute('docmanager:open', {{path: 'widgets.ipynb'}}))"
        ".then(() => true)",
        timeout=120,
    )


async def test_jupyterlab_widgets_through_the_daemon(
    web: WebDaemon, browser: Browser, tmp_path: Path
) -> None:
    root = tmp_path / "lab"
    root.mkdir()
    _notebook(root / "widgets.ipynb")
    async with gateway_server(
        "jupyterlab", web.port, web.token, root, "--LabApp.expose_app_in_browser=True"
    ) as lab:
        url = f"http://127.0.0.1:{lab.port}/lab?token={lab.token}"
        await browser.call("goto", page="lab", url=url, timeout=120)
        await _open_notebook(browser)
        await _kernel_idle(browser)
        assert web.daemon is not None
        (room,) = [r for r in web.daemon.rooms.values() if r.notebook_id.startswith("gateway-")]

        await _run_cell(browser, 0)
        await browser.wait("lab", f"{READOUT}?.textContent === '0'", timeout=60)
        await _kernel_idle(browser)
        await _run_cell(browser, 1)
        await browser.wait("lab", f"{READOUT}?.textContent === '{UPDATES - 1}'", timeout=300)
        await _kernel_idle(browser)
        (slider,) = [e for e in room.comms.state.get_all() if e.model_name == "IntSliderModel"]
        assert slider.state["value"] == UPDATES - 1  # the kernel's value, via the room
        # A runtimed client of the room sees JupyterLab's slider, at that value, too.
        async with web.client(room.notebook_id) as watcher:
            await watcher.wait_for(
                lambda c: any(x.state.get("value") == UPDATES - 1 for x in c.doc.get_comms())
            )

        # Save (the slider's view is in the outputs), start the sleep, reload meanwhile.
        await browser.call("eval", page="lab", js=f"{APP}.commands.execute('docmanager:save')")
        await _run_cell(browser, 2)
        await browser.wait(
            "lab",
            f"{APP}.shell.currentWidget.sessionContext.session.kernel.status === 'busy'",
        )
        await browser.call("reload", page="lab", timeout=120)
        await _open_notebook(browser)
        await browser.wait("lab", f"{READOUT}?.textContent === '{UPDATES - 1}'", timeout=60)
        # Shown while the kernel still sleeps: the sleep's execution has not ended.
        sleeping = [e for e in room.kernel_binding.router.executions.values() if e.cell_id is None]
        assert len(sleeping) == 1
        await browser.call(
            "eval",
            page="lab",
            js=f"{APP}.commands.execute('notebook:interrupt-kernel').then(() => true)",
        )
