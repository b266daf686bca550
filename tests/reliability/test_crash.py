"""SIGKILL the daemon, again and again, while a kernel floods widget updates and
clients edit: every restart reloads every room from files that load, and everything
older than the save window is on disk.

The window: `save_max_interval` (under constant change a dirty doc waits at most
that long for its save) plus `SAVE_SLACK` for the save itself (doc.save, write,
fsync) on a loaded machine. An edit counts from the moment the daemon acknowledged
it (`wait_synced` returned), a widget value from the moment a client's doc held it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from jupyter_client.manager import AsyncKernelManager

from notebook_doc import NotebookDoc, doc_filename
from runtimed.client import Client, ClientError
from tests.bridge.helpers import run
from tests.reliability.conftest import DaemonProcess

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

ROUNDS = 20
SAVE_DEBOUNCE = 0.1
SAVE_MAX_INTERVAL = 0.5
SAVE_SLACK = 1.0
WINDOW = SAVE_MAX_INTERVAL + SAVE_SLACK
KILL_AFTER = (0.3, 3.0)  # seconds of edits and bursts before the kill, drawn per round
BURST = "for _ in range(2000):\n    s.value += 1"

WIDGETS = "nb-crash-widgets"
EDITS = "nb-crash-edits"
SHARED_CELL = "shared"


@dataclass
class Ledger:
    """What the clients know the daemon had, and when (time.monotonic)."""

    cells: list[tuple[float, str, str]] = field(default_factory=list)  # (t, notebook, source)
    appended: list[tuple[float, str]] = field(default_factory=list)  # tokens in SHARED_CELL
    slider: list[tuple[float, int]] = field(default_factory=list)  # value in a synced doc
    written: set[str] = field(default_factory=set)  # every source or token ever written

    def before(self, deadline: float) -> Ledger:
        return Ledger(
            [c for c in self.cells if c[0] <= deadline],
            [a for a in self.appended if a[0] <= deadline],
            [s for s in self.slider if s[0] <= deadline],
            self.written,
        )


def slider_value(doc: NotebookDoc) -> int | None:
    values = [c.state["value"] for c in doc.get_comms() if c.model_name == "IntSliderModel"]
    return values[0] if values else None


def load_from_disk(daemon: DaemonProcess, notebook_id: str) -> NotebookDoc:
    """The file must load as it is: not corrupt, not quarantined."""
    docs = daemon.settings.docs_dir
    assert not list(docs.glob("*.corrupt")), "a doc file was quarantined"
    doc = NotebookDoc.load((docs / doc_filename(notebook_id)).read_bytes())
    assert doc.notebook_id == notebook_id
    return doc


async def keep_editing(
    client: Client,
    edit: Callable[[Client, int], str],
    ledger: Ledger,
    record: Callable[[float, str], None],
) -> None:
    """Edit, wait for the daemon's acknowledgement, record; until the daemon dies."""
    for i in itertools.count():
        token = edit(client, i)
        ledger.written.add(token)
        await client.wait_synced()
        record(time.monotonic(), token)


async def keep_bursting(actor: Client, ledger: Ledger) -> None:
    while True:
        await run(actor, BURST)
        value = slider_value(actor.doc)
        if value is not None:
            ledger.slider.append((time.monotonic(), value))


async def one_round(
    daemon: DaemonProcess, kernel: AsyncKernelManager, round_: int, ledger: Ledger
) -> float:
    """Edits and a burst until a SIGKILL at a random moment; returns the kill time."""
    loop = asyncio.get_running_loop()
    async with (
        daemon.client(WIDGETS) as actor,
        daemon.client(EDITS) as adder,
        daemon.client(EDITS) as appender,
    ):
        await actor.request("attach_kernel", connection_file=kernel.connection_file)
        if round_ == 0:
            await run(actor, "from ipywidgets import IntSlider\ns = IntSlider(max=10**9)")
            appender.doc.add_cell(source="", cell_id=SHARED_CELL)
            await appender.wait_synced()

        def add_cell(client: Client, i: int) -> str:
            source = f"r{round_}-{client.notebook_id}-{i}"
            client.doc.add_cell(source=source)
            return source

        def append(client: Client, i: int) -> str:
            token = f"<r{round_}.{i}>"
            client.doc.append_source(SHARED_CELL, token)
            return token

        tasks = [
            loop.create_task(keep_bursting(actor, ledger)),
            loop.create_task(
                keep_editing(
                    actor, add_cell, ledger, lambda t, s: ledger.cells.append((t, WIDGETS, s))
                )
            ),
            loop.create_task(
                keep_editing(
                    adder, add_cell, ledger, lambda t, s: ledger.cells.append((t, EDITS, s))
                )
            ),
            loop.create_task(
                keep_editing(appender, append, ledger, lambda t, s: ledger.appended.append((t, s)))
            ),
        ]
        await asyncio.sleep(random.Random(round_).uniform(*KILL_AFTER))  # the moment to kill
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        assert not failed, failed[0].exception()
        killed_at = time.monotonic()
        daemon.kill()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ClientError):
                await task
    return killed_at


def check_disk(
    daemon: DaemonProcess, ledger: Ledger, killed_at: float, earlier: dict[str, NotebookDoc]
) -> dict[str, NotebookDoc]:
    """Everything acknowledged in this round more than WINDOW before the kill is in the
    files, and everything earlier rounds left on disk is still there."""
    on_disk = {nb: load_from_disk(daemon, nb) for nb in (WIDGETS, EDITS)}
    for nb, doc in earlier.items():
        kept = {c.id for c in on_disk[nb].get_cells()}
        assert {c.id for c in doc.get_cells()} <= kept, f"{nb}: cells saved earlier are gone"
    sources = {nb: {c.source for c in doc.get_cells()} for nb, doc in on_disk.items()}
    due = ledger.before(killed_at - WINDOW)
    missing = [(nb, s, t, killed_at) for t, nb, s in due.cells if s not in sources[nb]]
    assert not missing, f"{len(missing)} acknowledged cells lost, first {missing[0]}"
    shared = on_disk[EDITS].get_cell(SHARED_CELL)
    assert shared is not None
    lost_tokens = [token for _, token in due.appended if token not in shared.source]
    assert not lost_tokens, f"{len(lost_tokens)} acknowledged appends lost"
    # Nothing invented: every cell on disk is one a client wrote.
    tokens = shared.source.replace("><", ">\n<").splitlines()
    assert all(t in ledger.written for t in tokens), "the shared cell holds a stranger's text"
    sources[EDITS].discard(shared.source)
    assert all(s in ledger.written for nb in on_disk for s in sources[nb]), "invented cells"
    if due.slider:
        value = slider_value(on_disk[WIDGETS])
        assert value is not None, "the widget synced before the window is not on disk"
        assert value >= due.slider[-1][1], (value, due.slider[-1])
    return on_disk


async def test_twenty_sigkills_during_a_widget_burst_and_edits_lose_nothing_saved(
    daemon_process: Callable[..., DaemonProcess], external_kernel: AsyncKernelManager
) -> None:
    daemon = daemon_process(save_debounce=SAVE_DEBOUNCE, save_max_interval=SAVE_MAX_INTERVAL)
    written: set[str] = set()
    on_disk: dict[str, NotebookDoc] = {}
    checked = acknowledged = 0
    for round_ in range(ROUNDS):
        ledger = Ledger(written=written)
        await daemon.start()
        # Every room reloads: a joining client gets exactly what the last kill left.
        for notebook_id, saved in on_disk.items():
            async with daemon.client(notebook_id) as client:
                assert client.doc.to_json()["cells"] == saved.to_json()["cells"]
        killed_at = await one_round(daemon, external_kernel, round_, ledger)
        on_disk = check_disk(daemon, ledger, killed_at, on_disk)
        checked += len(ledger.before(killed_at - WINDOW).cells)
        acknowledged += len(ledger.cells)
    print(
        f"{ROUNDS} SIGKILLs: {acknowledged} acknowledged edits, {checked} of them older "
        f"than the {WINDOW:g} s window and all found on disk"
    )
    # The check was not vacuous: many acknowledged edits were old enough to be due.
    assert checked > acknowledged // 4, (checked, acknowledged)
