"""A peer's outgoing side: frames that would break the cap, and a peer far behind."""

from __future__ import annotations

import asyncio

import pytest

from notebook_doc import NotebookDoc, SyncState, sync_message_heads
from runtimed.daemon.broadcast_log import LARGE, BroadcastLog, FrameBuffer
from runtimed.daemon.peer import Peer
from runtimed.wire import (
    NEED_DATA,
    Broadcast,
    Connection,
    Framing,
    Handshake,
    Response,
    Role,
    Snapshot,
    Sync,
)
from tests.conftest import eventually

CAP = 64 * 1024
HELLO = {"channel": "notebook", "notebook_id": "nb", "snapshot": False}
REPLY = {"ok": True, "protocol": 2, "daemon_version": "0", "notebook_id": "nb"}


class Recorder:
    """A transport that keeps what the writer would have written."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.writes = 0

    async def send_frames(self, frames: list[bytes]) -> None:
        self.writes += 1
        self.written.extend(frames)

    def send_nowait(self, frames: list[bytes]) -> bool:
        return False  # every batch through send_frames, counted

    def send_now(self, frame: bytes) -> None:
        self.written.append(frame)

    def close(self) -> None:
        pass


def connected(cap: int = CAP) -> tuple[Connection, Connection]:
    client = Connection(Role.CLIENT, max_frame_size=cap)
    server = Connection(Role.SERVER, max_frame_size=cap)
    server.receive_data(client.send(Handshake(HELLO)))
    assert isinstance(server.next_event(), Handshake)
    client.receive_data(server.send(Handshake(REPLY)))
    assert isinstance(client.next_event(), Handshake)
    return client, server


def events(client: Connection, frames: list[bytes]) -> list[object]:
    if not frames:
        return []  # (receive_data(b"") would mean end of stream)
    client.receive_data(b"".join(frames))
    out = []
    while (event := client.next_event()) is not NEED_DATA:
        out.append(event)
    return out


async def test_a_peer_too_far_behind_for_one_frame_restarts_from_a_snapshot() -> None:
    daemon_doc = NotebookDoc.new("nb")
    for i in range(200):
        daemon_doc.add_cell(source=f"cell {i} " + "x" * 400)
    client_conn, server_conn = connected()
    peer = Peer(server_conn, Recorder(), queue_limit=10**9, stall_timeout=5)
    peer.sync_source = daemon_doc.generate_sync_message
    peer.snapshot_source = daemon_doc.save

    # The client already has an edit of its own, and nothing of the daemon's doc.
    client_doc = NotebookDoc.empty()
    client_state = SyncState()
    # A first exchange tells the daemon the client has nothing: its next message would
    # carry all 200 cells' changes, far above the cap.
    first = daemon_doc.generate_sync_message(peer.sync_state)
    assert first is not None
    client_doc.receive_sync_message(client_state, first)
    reply = client_doc.generate_sync_message(client_state)
    assert reply is not None
    daemon_doc.receive_sync_message(peer.sync_state, reply)

    peer.request_sync()
    received = events(client_conn, peer._take_batch())
    assert isinstance(received[0], Snapshot)
    assert all(len(frame) <= CAP for frame in [received[0].data])
    # The client merges the snapshot and syncs on from a fresh state, as the spec says.
    client_doc = NotebookDoc.load(received[0].data)
    client_state = SyncState()
    for event in received[1:]:
        assert isinstance(event, Sync)
        client_doc.receive_sync_message(client_state, event.data)
    for _ in range(10):
        message = client_doc.generate_sync_message(client_state)
        if message is None:
            break
        daemon_doc.receive_sync_message(peer.sync_state, message)
        peer.request_sync()
        for event in events(client_conn, peer._take_batch()):
            assert isinstance(event, Sync)
            client_doc.receive_sync_message(client_state, event.data)
    assert client_doc.to_json() == daemon_doc.to_json()


async def test_a_response_over_the_cap_becomes_an_error_response() -> None:
    client_conn, server_conn = connected()
    peer = Peer(server_conn, Recorder(), queue_limit=10**9, stall_timeout=5)
    peer.send(Response(7, True, {"data": "x" * CAP}))
    peer.send(Broadcast("comm_sync", {"comms": [{"state": "y" * CAP}]}))
    [response, broadcast] = events(client_conn, peer._take_batch())
    assert isinstance(response, Response)
    assert response.id == 7
    assert response.ok is False
    assert response.error is not None
    assert response.error.code == "frame_too_large"
    assert isinstance(broadcast, Broadcast)
    assert broadcast.event == "error"
    assert broadcast.fields["code"] == "frame_too_large"
    assert broadcast.fields["message"].startswith("comm_sync:")


async def test_other_local_protocol_errors_still_raise() -> None:
    _client_conn, server_conn = connected()
    peer = Peer(server_conn, Recorder(), queue_limit=10**9, stall_timeout=5)
    with pytest.raises(Exception, match="bad_event"):
        peer.send(Broadcast("comm", {"event": "clash"}))


def fan_out(peers: list[Peer], event: Broadcast, *, comm_event: bool = False) -> BroadcastLog:
    log = BroadcastLog()
    for peer in peers:
        log.attach(peer)
    log.append(event, comm_event=comm_event)
    return log


def test_a_broadcast_to_many_peers_is_framed_once_and_shared() -> None:
    pairs = [connected() for _ in range(5)]
    peers = [Peer(server, Recorder(), queue_limit=10**9, stall_timeout=5) for _, server in pairs]
    closed = peers[4]
    log = BroadcastLog()
    for peer in peers:
        log.attach(peer)
    closed.close()
    event = Broadcast("comm", {"msg_type": "comm_msg", "content": {"comm_id": "a"}})
    log.append(event, comm_event=True)
    batches = [peer._take_batch() for peer in peers[:4]]
    assert all(len(batch) == 1 for batch in batches)
    assert all(batch[0] is batches[0][0] for batch in batches)  # one frame, shared
    for (client, _), batch in zip(pairs, batches, strict=False):
        assert events(client, batch) == [event]
    assert closed._take_batch() == []
    assert len(log) == 1  # kept until the next look at what every peer has read


async def test_broadcasts_go_to_each_framing_and_skip_a_peer_awaiting_comm_sync() -> None:
    stream_client, stream_server = connected()
    ws_client = Connection(Role.CLIENT, framing=Framing.MESSAGE)
    ws_server = Connection(Role.SERVER, framing=Framing.MESSAGE)
    ws_server.receive_data(ws_client.send(Handshake(HELLO)))
    assert isinstance(ws_server.next_event(), Handshake)
    ws_client.receive_data(ws_server.send(Handshake(REPLY)))
    assert isinstance(ws_client.next_event(), Handshake)
    stream = Peer(stream_server, Recorder(), queue_limit=10**9, stall_timeout=5)
    web = Peer(ws_server, Recorder(), queue_limit=10**9, stall_timeout=5)
    lagging_client, lagging_server = connected()
    lagging = Peer(lagging_server, Recorder(), queue_limit=1, stall_timeout=5)
    lagging.comm_sync_source = lambda: Broadcast("comm_sync", {"comms": []})
    lagging.send(Broadcast("comm", {"msg_type": "comm_msg", "content": {}}), comm_event=True)
    lagging.send(Broadcast("comm", {"msg_type": "comm_msg", "content": {}}), comm_event=True)

    comm = Broadcast("comm", {"msg_type": "comm_msg", "content": {"comm_id": "b"}})
    status = Broadcast("kernel_status", {"status": "idle"})
    log = BroadcastLog()
    for peer in (stream, web, lagging):
        log.attach(peer)
    for event, is_comm in ((comm, True), (status, False)):
        log.append(event, comm_event=is_comm)
    assert events(stream_client, stream._take_batch()) == [comm, status]
    for frame in web._take_batch():  # a WebSocket message carries exactly one frame
        ws_client.receive_data(frame)
    assert [ws_client.next_event(), ws_client.next_event()] == [comm, status]
    # The lagging peer's comm events wait for the comm_sync built at write time.
    assert events(lagging_client, lagging._take_batch()) == [
        status,
        Broadcast("comm_sync", {"comms": []}),
    ]


async def test_a_peers_own_frames_and_the_rooms_broadcasts_keep_the_order_they_were_queued() -> (
    None
):
    client, server = connected()
    peer = Peer(server, Recorder(), queue_limit=10**9, stall_timeout=5)
    first = Response(1, True, {})
    peer.send(first)  # before it joined the room
    log = BroadcastLog()
    log.attach(peer)
    one, two, three = (Broadcast("kernel_status", {"status": s}) for s in ("a", "b", "c"))
    log.append(one)
    reply = Response(2, True, {"n": 2})
    peer.send(reply)
    log.append(two)
    log.append(three)
    last = Response(3, True, {})
    peer.send(last)
    assert events(client, peer._take_batch()) == [first, one, reply, two, three, last]
    log.append(one)
    assert events(client, peer._take_batch()) == [one]


def test_a_peer_that_stops_reading_bounds_the_log_and_keeps_what_is_not_a_comm_event() -> None:
    """The reader that keeps up gets every broadcast; the one that does not loses its
    comm broadcasts for one comm_sync, keeps the rest in order, and the log stays small."""
    fast_client, fast_server = connected()
    slow_client, slow_server = connected()
    fast = Peer(fast_server, Recorder(), queue_limit=4096, stall_timeout=5)
    slow = Peer(slow_server, Recorder(), queue_limit=4096, stall_timeout=5)
    slow.comm_sync_source = lambda: Broadcast("comm_sync", {"comms": ["latest"]})
    log = BroadcastLog()
    log.attach(fast)
    log.attach(slow)
    received: list[object] = []
    statuses = []
    longest = 0
    for i in range(3000):
        log.append(Broadcast("comm", {"content": {"value": i}}), comm_event=True)
        if i % 500 == 0:
            statuses.append(Broadcast("kernel_status", {"status": f"s{i}"}))
            log.append(statuses[-1])
        if i % 10 == 0:
            received += events(fast_client, fast._take_batch())
        longest = max(longest, len(log))
    received += events(fast_client, fast._take_batch())
    assert [e.fields["content"]["value"] for e in received if e.event == "comm"] == list(
        range(3000)
    )
    assert longest < 200  # about 4096 bytes of ~40-byte frames, plus one trim interval
    late = events(slow_client, slow._take_batch())
    assert [e for e in late if e.event == "kernel_status"] == statuses
    assert late[-1] == Broadcast("comm_sync", {"comms": ["latest"]})
    assert sum(e.event == "comm" for e in late) < 200


async def test_writers_that_wait_get_every_broadcast_in_order_in_few_writes() -> None:
    pairs = [connected() for _ in range(3)]
    recorders = [Recorder() for _ in pairs]
    peers = [
        Peer(server, recorder, queue_limit=10**9, stall_timeout=5)
        for (_, server), recorder in zip(pairs, recorders, strict=True)
    ]
    log = BroadcastLog()
    writers = []
    for peer in peers:
        log.attach(peer)
        writers.append(asyncio.create_task(peer.run_writer()))
    sent = [Broadcast("comm", {"content": {"value": i}}) for i in range(1000)]
    for i, event in enumerate(sent):
        log.append(event, comm_event=True)
        if i % 100 == 99:
            await asyncio.sleep(0)  # the writers run between bursts
    deadline = asyncio.get_running_loop().time() + 10
    while any(peer.cursor < log.end for peer in peers):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    for peer in peers:
        peer.close()
    await asyncio.gather(*writers)
    for (client, _), recorder in zip(pairs, recorders, strict=True):
        assert events(client, recorder.written) == sent
        assert recorder.writes <= 11  # one write per burst, not one per frame


async def test_the_log_is_emptied_once_every_peer_has_read_it_and_waits() -> None:
    """The trim in `append` runs only while broadcasts come: after a burst, the last
    writer to wait drops what every peer has read, so the burst's frames do not stay."""
    pairs = [connected() for _ in range(2)]
    peers = [Peer(server, Recorder(), queue_limit=10**9, stall_timeout=5) for _, server in pairs]
    log = BroadcastLog()
    for peer in peers:
        log.attach(peer)
    for i in range(100):  # fewer than a trim interval
        log.append(Broadcast("comm", {"content": {"value": i}}), comm_event=True)
    first, second = peers
    assert len(events(pairs[0][0], first._take_batch())) == 100
    log.sleep(first)
    assert len(log) == 100  # the second peer has not read them yet
    assert len(events(pairs[1][0], second._take_batch())) == 100
    log.sleep(second)
    assert len(log) == 0
    after = Broadcast("kernel_status", {"status": "idle"})
    log.append(after)
    assert events(pairs[1][0], second._take_batch()) == [after]


@pytest.mark.parametrize("large_every", [0, 5])
def test_a_frame_buffer_gives_back_each_frame_and_spans_after_drops(large_every: int) -> None:
    """Small frames only, and with a large one (kept as its own object) every few."""
    frames = [
        bytes([n % 251]) * (LARGE + n if large_every and n % large_every == 3 else n % 7)
        for n in range(50)
    ]  # empty ones included
    buffer = FrameBuffer()
    for frame in frames[:30]:
        buffer.append(frame)
    buffer.drop(12)
    for frame in frames[30:]:
        buffer.append(frame)
    kept = frames[12:]
    assert len(buffer) == len(kept)
    assert buffer[:] == kept
    assert buffer[5:9] == kept[5:9]
    assert buffer.join(3, 20) == b"".join(kept[3:20])
    assert buffer.join(4, 4) == b""
    if large_every:
        assert buffer[1:2][0] is kept[1]  # a large frame, not copied
    buffer.drop(len(kept))
    assert len(buffer) == 0
    assert buffer[:] == []


def _crossing_changes() -> tuple[NotebookDoc, Peer, Connection, NotebookDoc, SyncState, bytes]:
    """Daemon and client in sync, then change C on the client and D on the daemon,
    each side's sync message generated before it saw the other's. The client's message
    carries C unless its Bloom filter falsely says the daemon has C already (Automerge
    sends it a round later then): such a draw is made again."""
    for _ in range(20):
        daemon_doc = NotebookDoc.new("nb")
        client_conn, server_conn = connected()
        peer = Peer(server_conn, Recorder(), queue_limit=10**9, stall_timeout=5)
        peer.sync_source = daemon_doc.generate_sync_message
        client_doc = NotebookDoc.empty()
        client_state = SyncState()
        for _ in range(5):  # an ordinary first sync: both have the notebook
            message = daemon_doc.generate_sync_message(peer.sync_state)
            if message is not None:
                client_doc.receive_sync_message(client_state, message)
            reply = client_doc.generate_sync_message(client_state)
            if reply is not None:
                daemon_doc.receive_sync_message(peer.sync_state, reply)
        client_doc.add_cell(source="C")
        daemon_doc.add_cell(source="D")
        d_message = daemon_doc.generate_sync_message(peer.sync_state)
        with_c = client_doc.generate_sync_message(client_state)
        assert d_message is not None
        assert with_c is not None
        if daemon_doc.receive_sync_message(peer.sync_state, with_c):  # as the room does:
            return daemon_doc, peer, client_conn, client_doc, client_state, d_message
    raise AssertionError("the client's message never carried its change")


async def test_changes_from_a_peer_are_acknowledged_even_if_its_next_sync_says_synced() -> None:
    """A client's change C crosses the daemon's change D. The daemon gets C, the client
    gets D, and the client's next message says it has both before the writer ran: a
    sync message generated only then is nothing at all, so the answer to C is made on
    receipt and names C."""
    daemon_doc, peer, client_conn, client_doc, client_state, d_message = _crossing_changes()
    [c_head] = client_doc.get_heads()
    peer.acknowledge_sync()
    client_doc.receive_sync_message(client_state, d_message)
    synced = client_doc.generate_sync_message(client_state)
    assert synced is not None
    daemon_doc.receive_sync_message(peer.sync_state, synced)
    peer.request_sync()

    named = set()
    for event in events(client_conn, peer._take_batch()):
        assert isinstance(event, Sync)
        named |= sync_message_heads(event.data)
    assert c_head in named


async def test_a_sync_answer_made_before_a_switch_goes_out_before_the_notice() -> None:
    """An answer belongs to the doc it was made from: one made before a compaction's
    restart goes before the notice, the new doc's first message after the SNAPSHOT."""
    old, new = NotebookDoc.new("nb"), NotebookDoc.new("nb")
    client_conn, server_conn = connected()
    peer = Peer(server_conn, Recorder(), queue_limit=10**9, stall_timeout=5)
    peer.sync_source = old.generate_sync_message
    peer.acknowledge_sync()
    peer.sync_source = new.generate_sync_message
    peer.restart_sync(Broadcast("compaction", {"epoch": 1}), Snapshot(new.save()))

    received = events(client_conn, peer._take_batch())

    assert [type(event).__name__ for event in received] == ["Sync", "Broadcast", "Snapshot", "Sync"]
    first, *_, last = received
    assert isinstance(first, Sync)
    assert isinstance(last, Sync)
    assert sync_message_heads(first.data) == set(old.get_heads())
    assert sync_message_heads(last.data) == set(new.get_heads())


async def test_in_a_burst_writers_are_woken_once_per_window_and_every_broadcast_arrives() -> None:
    """The first broadcast after a pause is written at once; those appended soon after
    wait for one wake of every writer (2 peers at 4 wakes a second: 0.5 s apart)."""
    pairs = [connected() for _ in range(2)]
    recorders = [Recorder() for _ in pairs]
    peers = [
        Peer(server, recorder, queue_limit=10**9, stall_timeout=5)
        for (_, server), recorder in zip(pairs, recorders, strict=True)
    ]
    log = BroadcastLog(write_rate=4.0)
    for peer in peers:
        log.attach(peer)
    writers = [asyncio.create_task(peer.run_writer()) for peer in peers]
    try:
        burst = [Broadcast("comm", {"content": {"value": i}}) for i in range(21)]
        await asyncio.sleep(0)  # the writers wait for work
        log.append(burst[0], comm_event=True)
        await eventually(lambda: all(r.writes == 1 for r in recorders), what="first write")
        for event in burst[1:]:
            log.append(event, comm_event=True)
            await asyncio.sleep(0)
        assert all(r.writes == 1 for r in recorders)  # the rest wait for the next wake
        await eventually(lambda: all(r.writes == 2 for r in recorders), what="the next wake")
        for (client, _), recorder in zip(pairs, recorders, strict=True):
            assert events(client, recorder.written) == burst
    finally:
        for peer in peers:
            peer.close()
        await asyncio.gather(*writers)
