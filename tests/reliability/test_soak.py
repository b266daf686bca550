"""The soak: 20 clients edit cells at random while a kernel moves widgets, for a minute
(`make soak` runs it longer: RUNTIMED_SOAK_SECONDS). At the end every client holds the
same doc, CommState equals the doc, and the daemon's memory stopped growing after the
warm-up (within a stated bound, sampled every few seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Callable

import pytest

from notebook_doc import NotebookDocError
from runtimed.client import Client
from tests.bridge.helpers import assert_doc_matches_comm_state, run
from tests.conftest import eventually
from tests.reliability.conftest import DaemonProcess

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

SECONDS = float(os.environ.get("RUNTIMED_SOAK_SECONDS", "60"))
CLIENTS = 20
WARM_UP = 0.25  # the first quarter: rooms, kernel, caches and the doc reach their size
MiB = 1024 * 1024
# RSS may grow this much after warm-up: the doc's history grows with every edit
# (about 1,500 edits a minute here), nothing else should.
GROWTH_BOUND = 16 * MiB + int(8 * MiB * SECONDS / 60)
NOTEBOOK = "nb-soak"
CELLS = 40
WIDGETS = """
import time
from ipywidgets import IntSlider, Text, HBox
s = IntSlider(max=10**9); t = Text(); box = HBox([s, t])
end = time.monotonic() + {seconds}
i = 0
while time.monotonic() < end:
    i += 1
    s.value = i
    if i % 10 == 0:
        t.value = f"update {{i}}"
    if i % 50 == 0:
        time.sleep(0.2)
"""


async def edit_at_random(client: Client, rng: random.Random, stop: asyncio.Event) -> int:
    """Add, rewrite, append to, move and delete cells until told to stop; returns edits.

    Adds and deletes balance around CELLS cells, so the notebook keeps its size and
    only its history grows.
    """
    edits = 0
    while not stop.is_set():
        cells = client.doc.cell_ids()
        roll = rng.random()
        # Another client may delete the cell we picked before our edit reaches the daemon.
        with contextlib.suppress(NotebookDocError):
            if roll < 0.2 or not cells:
                client.doc.add_cell(source=f"{client.name} {edits}")
            elif roll < 0.5:
                client.doc.set_source(rng.choice(cells), f"{client.name} rewrote this {edits}")
            elif roll < 0.75:
                client.doc.append_source(rng.choice(cells), f"+{edits}")
            elif roll < 0.85 or len(cells) < CELLS:
                client.doc.move_cell(rng.choice(cells), index=rng.randrange(len(cells)))
            else:
                client.doc.delete_cell(rng.choice(cells))
        await client.wait_synced(timeout=60)
        edits += 1
        await asyncio.sleep(rng.uniform(0.05, 0.3))  # a person's pace, not a benchmark
    return edits


@pytest.mark.timeout(SECONDS + 300)  # the soak itself, then convergence and checks
async def test_soak_twenty_clients_and_a_busy_kernel(
    daemon_process: Callable[..., DaemonProcess],
) -> None:
    daemon = daemon_process()
    await daemon.start()
    clients = [daemon.client(NOTEBOOK, name=f"c{i}") for i in range(CLIENTS)]
    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await stack.enter_async_context(client)
        actor, observer = clients[0], clients[1]
        await actor.request("launch_kernel")
        widgets = asyncio.create_task(run(actor, WIDGETS.format(seconds=SECONDS), SECONDS + 60))
        stop = asyncio.Event()
        editors = [
            asyncio.create_task(edit_at_random(c, random.Random(i), stop))
            for i, c in enumerate(clients)
        ]
        loop = asyncio.get_running_loop()
        start = loop.time()
        samples: list[tuple[float, int]] = []
        while (elapsed := loop.time() - start) < SECONDS:
            await asyncio.sleep(min(5.0, SECONDS - elapsed))  # the sampling period
            samples.append((loop.time() - start, daemon.rss()))

        stop.set()
        per_client = await asyncio.gather(*editors)
        edits = sum(per_client)
        await widgets

        # Everyone converges to one doc. Not to a snapshot of one client's heads: the
        # daemon may still change the doc after the burst (a reconcile, when the
        # kernel's IOPub dropped messages under this load).
        for client in clients:
            await client.wait_synced(timeout=60)
        await eventually(
            lambda: len({tuple(c.doc.get_heads()) for c in clients}) == 1,
            timeout=90,
            what="all twenty clients at the same heads",
        )
        views = [client.doc.to_json() for client in clients]
        assert all(view == views[0] for view in views)
        assert views[0]["cells"], "the edits left no cells"
        legacy = await assert_doc_matches_comm_state(observer, actor)
        assert len(legacy) >= 3  # slider, text, box (and their layouts and styles)

        warm = max(rss for t, rss in samples if t <= SECONDS * WARM_UP + 5)
        final = max(rss for _, rss in samples)
        print(
            f"soak {SECONDS:g} s: {edits} edits by {CLIENTS} clients, "
            f"RSS warm {warm / MiB:.1f} MiB, peak after {final / MiB:.1f} MiB"
        )
        assert min(per_client) > 0, per_client
        assert final - warm < GROWTH_BOUND, f"grew {(final - warm) / MiB:.1f} MiB"
        await actor.request("shutdown_kernel")
