"""How each execution ended, with a real kernel: in `execution_done` and in the doc."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from runtimed.client import Client
from tests.conftest import RunningDaemon, eventually

README = Path(__file__).resolve().parents[2] / "README.md"


def status(client: Client, cell_id: str) -> str | None:
    cell = client.doc.get_cell(cell_id)
    return cell.execution_status if cell is not None else None


async def test_an_error_aborts_the_queued_cell_and_both_say_so(
    pair: tuple[Client, Client],
) -> None:
    actor, observer = pair
    failing = actor.doc.add_cell(source="import time\ntime.sleep(1)\nraise ValueError('boom')")
    skipped = actor.doc.add_cell(source="print('never')")
    await actor.wait_synced()
    done = actor.subscribe()
    first = (await actor.request("execute_cell", cell_id=failing))["msg_id"]
    second = (await actor.request("execute_cell", cell_id=skipped))["msg_id"]
    # A late joiner's view (the observer's doc): [*] while running and queued.
    await observer.wait_for(
        lambda c: status(c, failing) == "running" and status(c, skipped) == "queued",
        timeout=30,
    )
    ended: dict[str, dict] = {}
    while len(ended) < 2:
        event = await asyncio.wait_for(done.get(), 60)
        if event.event == "execution_done":
            ended[event.fields["msg_id"]] = event.fields
    assert ended[first]["status"] == "error"
    assert ended[first]["ename"] == "ValueError"
    assert ended[first]["evalue"] == "boom"
    assert ended[second]["status"] == "aborted"
    assert "ename" not in ended[second]
    await observer.wait_for(
        lambda c: status(c, failing) == "error" and status(c, skipped) == "aborted"
    )
    assert observer.doc.get_outputs(skipped) == []


async def test_run_cell_waits_for_the_end_and_returns_the_status(
    pair: tuple[Client, Client],
) -> None:
    actor, _observer = pair
    cell = actor.doc.add_cell(source="21 * 2")
    outcome = await actor.run_cell(cell)
    assert outcome["status"] == "ok"
    assert outcome["execution_count"] >= 1
    [output] = actor.doc.get_outputs(cell)  # in place when run_cell returns
    assert json.loads(output)["data"]["text/plain"] == "42"
    assert status(actor, cell) == "ok"
    failing = actor.doc.add_cell(source="1 / 0")
    assert (await actor.run_cell(failing))["ename"] == "ZeroDivisionError"


async def test_an_interrupted_queue_ends_aborted_on_restart(pair: tuple[Client, Client]) -> None:
    actor, observer = pair
    sleeper = actor.doc.add_cell(source="import time\ntime.sleep(60)")
    await actor.wait_synced()
    await actor.request("execute_cell", cell_id=sleeper)
    await observer.wait_for(lambda c: status(c, sleeper) == "running", timeout=30)
    await actor.request("restart_kernel")
    await observer.wait_for(lambda c: status(c, sleeper) == "aborted", timeout=30)
    assert any(
        b.event == "execution_done" and b.fields["status"] == "aborted" for b in actor.broadcasts
    )


def readme_snippet() -> str:
    [snippet] = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    return snippet


async def test_the_readme_snippet_runs_and_really_moves_the_slider(
    running: RunningDaemon, tmp_path: Path
) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(readme_snippet())
    env = {**os.environ, "RUNTIMED_SOCKET": str(running.settings.socket_path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert "'status': 'ok'" in lines[0]
    assert lines[-1] == "7"  # the kernel's own slider says it moved
    notebook = tmp_path / "demo.ipynb"

    def saved_value() -> object:
        try:
            nb = json.loads(notebook.read_text())
        except (OSError, ValueError):
            return None
        models = nb["metadata"].get("widgets", {})
        state = models.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
        return [m["state"].get("value") for m in state.values() if "IntSlider" in m["model_name"]]

    await eventually(lambda: saved_value() == [7], timeout=90, what="autosaved slider value")
