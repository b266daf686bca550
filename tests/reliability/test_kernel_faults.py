"""Kernels that fail: the room says what happened, clears its comms, and goes on.

A kernel killed with SIGKILL mid-life is covered by
tests/bridge/test_widgets.py::test_restart_shutdown_and_death_clear_both_stores[sigkill];
here the two ways a launch fails: a kernel that exits at start and one that never
answers kernel_info.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from runtimed.client import ClientError
from runtimed.config import Settings
from tests.bridge.helpers import doc_comms, run
from tests.conftest import RunningDaemon

pytestmark = pytest.mark.kernel

STARTUP_TIMEOUT = 3.0
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@pytest.fixture
async def running(settings: Settings) -> AsyncIterator[RunningDaemon]:
    """A daemon that gives up on a silent kernel after a few seconds, not a minute."""
    handle = RunningDaemon(dataclasses.replace(settings, kernel_startup_timeout=STARTUP_TIMEOUT))
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


def notebook_with_a_saved_slider(path: Path) -> None:
    slider = {
        "model_name": "IntSliderModel",
        "model_module": "@jupyter-widgets/controls",
        "model_module_version": "2.0.0",
        "state": {"value": 7, "max": 10},
    }
    metadata = {
        "widgets": {WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": {"w1": slider}}}
    }
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": []}
    path.write_text(json.dumps(nb))


FAILURES = {
    "exits at start": (
        [sys.executable, "-c", "import sys; sys.exit(3)"],
        "kernel_dead",
        "exited with code 3",
    ),
    "never answers kernel_info": (
        [sys.executable, "-c", "import time; time.sleep(600)"],
        "kernel_timeout",
        f"no kernel_info_reply within {STARTUP_TIMEOUT:g} s",
    ),
}


@pytest.mark.parametrize("failure", list(FAILURES))
async def test_a_kernel_that_fails_to_start_leaves_a_usable_room(
    running: RunningDaemon,
    make_kernelspec: Callable[..., str],
    tmp_path: Path,
    failure: str,
) -> None:
    argv, code, reason = FAILURES[failure]
    name = make_kernelspec("broken", argv)
    path = tmp_path / "saved.ipynb"
    notebook_with_a_saved_slider(path)
    async with (
        running.client(str(path), path=str(path)) as actor,
        running.client(str(path), path=str(path)) as observer,
    ):
        assert [c["comm_id"] for c in (await actor.request("get_comms"))["comms"]] == ["w1"]
        assert list(doc_comms(observer)) == ["w1"]

        with pytest.raises(ClientError) as refused:
            await actor.request("launch_kernel", kernel_name=name)
        assert refused.value.code == code
        assert reason in refused.value.message

        # Said to everyone: the error, the status, and the comms gone from both stores.
        await observer.wait_for(lambda c: c.kernel_status == "dead", what="status dead")
        errors = [e.fields for e in observer.broadcasts if e.event == "error"]
        assert [e["code"] for e in errors] == [code]
        assert reason in errors[0]["message"]
        assert observer.comms_from_sync == []
        assert (await actor.request("get_comms"))["comms"] == []
        await observer.wait_for(lambda c: doc_comms(c) == {}, what="doc comms cleared")
        with pytest.raises(ClientError) as no_kernel:
            await actor.request("execute", code="1")
        assert no_kernel.value.code == "no_kernel"

        # The room goes on: edits sync, and a working kernel launches and runs.
        actor.doc.add_cell(source="still editable")
        await actor.wait_synced()
        await observer.wait_for(lambda c: len(c.doc.cell_ids()) == 1, what="edit synced")
        assert (await actor.request("launch_kernel"))["status"] == "idle"
        await run(actor, "from ipywidgets import IntSlider\ns = IntSlider(value=2)")
        await observer.wait_for(lambda c: len(doc_comms(c)) >= 1, what="new widgets")
        assert observer.kernel_status in ("idle", "busy")
        await actor.request("shutdown_kernel")
