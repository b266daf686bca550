"""Several clients edit while compactions are forced at random moments, some while a
client is still in the old epoch: everyone converges and keeps every edit it made."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from runtimed.config import Settings
from tests.conftest import RunningDaemon, eventually
from tests.daemon.compaction_helpers import LateClient

CLIENTS = 3
BASE_CELLS = ("base-0", "base-1")

steps = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(0, CLIENTS - 1), st.integers(0, 99)),
        st.tuples(st.just("delete_text"), st.integers(0, CLIENTS - 1), st.integers(0, 99)),
        st.tuples(st.just("add_cell"), st.integers(0, CLIENTS - 1), st.integers(0, 99)),
        st.tuples(st.just("delete_cell"), st.integers(0, CLIENTS - 1), st.integers(0, 99)),
        st.tuples(st.just("move_cell"), st.integers(0, CLIENTS - 1), st.integers(0, 99)),
        st.tuples(st.just("metadata"), st.integers(0, CLIENTS - 1), st.integers(0, 99)),
        st.tuples(st.just("push"), st.integers(0, CLIENTS - 1), st.just(0)),
        st.tuples(st.just("compact"), st.just(0), st.just(0)),
        st.tuples(st.just("hold"), st.integers(0, CLIENTS - 1), st.just(0)),
        st.tuples(st.just("release"), st.integers(0, CLIENTS - 1), st.just(0)),
    ),
    min_size=5,
    max_size=30,
)


@dataclasses.dataclass
class Expected:
    """What one client did, so what the converged notebook must show of it."""

    live_tokens: set[str] = dataclasses.field(default_factory=set)
    deleted_tokens: set[str] = dataclasses.field(default_factory=set)
    live_cells: set[str] = dataclasses.field(default_factory=set)
    deleted_cells: set[str] = dataclasses.field(default_factory=set)
    metadata: int | None = None


def apply_step(client: LateClient, index: int, kind: str, pick: int, want: Expected) -> None:
    """One edit. Tokens go at token boundaries (never inside another client's token);
    a client deletes only its own tokens and cells, so every expectation is decidable."""
    doc = client.doc
    ids = doc.cell_ids()
    if kind == "insert":
        targets = [cell for cell in ids if cell in BASE_CELLS or cell in want.live_cells]
        if not targets:
            return
        cell = targets[pick % len(targets)]
        source = doc.get_cell(cell).source  # type: ignore[union-attr]
        bounds = [0] + [i + 1 for i, char in enumerate(source) if char == ">"]
        at = bounds[pick % len(bounds)]
        token = f"<c{index}t{len(want.live_tokens) + len(want.deleted_tokens)}>"
        doc.set_source(cell, source[:at] + token + source[at:])
        want.live_tokens.add(token)
    elif kind == "delete_text":
        for cell in ids:
            source = doc.get_cell(cell).source  # type: ignore[union-attr]
            mine = sorted(token for token in want.live_tokens if token in source)
            if mine:
                token = mine[pick % len(mine)]
                doc.set_source(cell, source.replace(token, ""))
                want.live_tokens.discard(token)
                want.deleted_tokens.add(token)
                return
    elif kind == "add_cell":
        cell = doc.add_cell(source="", index=pick % (len(ids) + 1))
        want.live_cells.add(cell)
    elif kind == "delete_cell":
        mine = sorted(cell for cell in ids if cell in want.live_cells)
        if mine:
            cell = mine[pick % len(mine)]
            source = doc.get_cell(cell).source  # type: ignore[union-attr]
            doc.delete_cell(cell)
            want.live_cells.discard(cell)
            want.deleted_cells.add(cell)
            gone = {token for token in want.live_tokens if token in source}
            want.live_tokens -= gone
            want.deleted_tokens |= gone
    elif kind == "move_cell" and len(ids) > 1:
        doc.move_cell(ids[pick % len(ids)], index=pick % len(ids))
    elif kind == "metadata":
        doc.update_metadata(f"client{index}", pick)
        want.metadata = pick


async def scenario(base: Settings, plan: list[tuple[str, int, int]]) -> None:
    running = RunningDaemon(base)
    await running.start()
    clients = [
        LateClient("nb-prop", socket_path=base.socket_path, name=f"c{i}") for i in range(CLIENTS)
    ]
    expected = [Expected() for _ in clients]
    compactions: list[asyncio.Task[dict]] = []
    try:
        for client in clients:
            await client.connect()
            client.release()
        for cell in BASE_CELLS:
            clients[0].doc.add_cell(source="", cell_id=cell)
        await clients[0].wait_synced()
        for client in clients:
            await client.wait_for(lambda c: len(c.doc.cell_ids()) == len(BASE_CELLS))
        for kind, index, pick in plan:
            client = clients[index]
            if kind == "push":
                await client.push()
            elif kind == "compact":
                compactions.append(asyncio.create_task(clients[0].request("compact")))
                await asyncio.sleep(0)  # let it start: the next steps may run inside the switch
            elif kind == "hold":
                client.gate.clear()
            elif kind == "release":
                client.release()
            else:
                apply_step(client, index, kind, pick, expected[index])
        for client in clients:
            client.release()
        await asyncio.gather(*compactions)
        for client in clients:
            await client.push()
        room = running.daemon.rooms["nb-prop"]  # type: ignore[union-attr]

        def converged() -> bool:
            views = [client.doc.to_json() for client in clients]
            return all(view == room.doc.to_json() for view in views)

        await eventually(converged, timeout=30, what="all clients converge on the room's doc")
        check_expectations(room.doc, expected)
        assert room.compactor.epoch == len(compactions)
        late = sum(
            b.fields["late_changes"] for c in clients for b in c.broadcasts if b.event == "switched"
        )
        event(f"late changes in SWITCH: {'some' if late else 'none'}")
    finally:
        for client in reversed(clients):  # a client's reader group: closed last in, first out
            client.release()
            await client.aclose()
        await running.stop()


def check_expectations(doc, expected: list[Expected]) -> None:
    text = "\n".join(cell.source for cell in doc.get_cells())
    cells = set(doc.cell_ids())
    metadata = doc.get_metadata()
    for index, want in enumerate(expected):
        for token in want.live_tokens:
            assert text.count(token) == 1, f"client {index}'s {token} is not in {text!r}"
        for token in want.deleted_tokens:
            assert token not in text, f"client {index} deleted {token}, yet it is in {text!r}"
        assert want.live_cells <= cells
        assert not want.deleted_cells & cells
        if want.metadata is not None:
            assert metadata[f"client{index}"] == want.metadata


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan=steps)
def test_clients_editing_through_random_compactions_converge_with_their_edits(
    plan: list[tuple[str, int, int]],
) -> None:
    root = Path(tempfile.mkdtemp(prefix="rtd-", dir="/tmp"))
    try:
        base = Settings(
            socket_path=root / "runtimed.sock",
            data_dir=root / "data",
            save_debounce=0.05,
            save_max_interval=0.5,
            compact_deadline=60.0,
        )
        asyncio.run(scenario(base, plan))
    finally:
        shutil.rmtree(root, ignore_errors=True)
