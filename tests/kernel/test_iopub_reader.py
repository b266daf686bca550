"""The IOPub path: decoding, skipping bad messages, and absorbing bursts without loss."""

from __future__ import annotations

import json
from functools import partial

import anyio
import pytest
import zmq
import zmq.asyncio
from jupyter_client.session import Session
from kernel_helpers import Recorder, ScriptedKernel
from structlog.testing import capture_logs

from runtimed.daemon.tasks import TaskOwner
from runtimed.kernel import KernelSession
from runtimed.kernel.decode import MessageDecoder
from runtimed.kernel.zmq_channels import IOPUB_BURST_WAKES, pump_iopub


def signed(session: Session, content: bytes | None = None) -> list[bytes]:
    """A comm_msg's frames, optionally with raw content bytes signed as if valid."""
    msg = session.msg("comm_msg", {"comm_id": "c", "data": {"state": {"value": 1}}})
    frames = session.serialize(msg, ident=[b"comm"])
    if content is not None:
        frames[-1] = content
        frames[2] = session.sign(frames[3:7])
    return frames


# ---------------------------------------------------------------------- decoding


def test_decoded_messages_have_jupyter_clients_shape() -> None:
    session = Session(key=b"k")
    parent = session.msg("execute_request", {"code": "1"})
    msg = session.msg("display_data", {"data": {"text/plain": "x"}}, parent=parent)
    frames = [*session.serialize(msg, ident=[b"topic"]), b"\x00buffer"]

    decoded = MessageDecoder(session).decode(frames)
    reference = Session(key=b"k").deserialize(session.feed_identities(frames)[1])

    assert decoded is not None
    assert decoded.keys() == reference.keys()
    for key in ("msg_id", "msg_type", "content", "metadata"):
        assert decoded[key] == reference[key]
    assert decoded["parent_header"]["msg_id"] == parent["header"]["msg_id"]
    assert decoded["header"]["date"] == reference["header"]["date"].isoformat().replace(
        "+00:00", "Z"
    )
    assert decoded["buffers"] == [b"\x00buffer"]


def test_values_msgspec_refuses_still_decode() -> None:
    session = Session(key=b"k")
    frames = signed(session, b'{"big": 123456789012345678901234567890, "nan": NaN}')
    decoded = MessageDecoder(session).decode(frames)
    assert decoded is not None
    assert decoded["content"]["big"] == 123456789012345678901234567890
    assert decoded["content"]["nan"] != decoded["content"]["nan"]


def test_a_keyless_session_accepts_unsigned_messages() -> None:
    session = Session(key=b"")
    assert MessageDecoder(session).decode(signed(session)) is not None


def _bad_signature(frames: list[bytes]) -> list[bytes]:
    return [*frames[:2], b"0" * 64, *frames[3:]]


def _header_without_id(session: Session) -> list[bytes]:
    frames = signed(session)
    frames[3] = json.dumps({"msg_type": "status"}).encode()
    frames[2] = session.sign(frames[3:7])
    return frames


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda s: _bad_signature(signed(s)), "bad HMAC signature"),
        (lambda s: [f for f in signed(s) if f != b"<IDS|MSG>"], "no <IDS|MSG> delimiter"),
        (lambda s: signed(s)[:5], "frames after the delimiter, need 5"),
        (lambda s: signed(s, b"{not json"), "undecodable frame"),
        (lambda s: signed(s, b"[1, 2]"), "expected a JSON object, got list"),
        (_header_without_id, "header without a string msg_id"),
    ],
)
def test_malformed_frames_are_skipped_with_a_reason(build, reason: str) -> None:
    session = Session(key=b"k")
    with capture_logs() as logs:
        assert MessageDecoder(session).decode(build(session)) is None
    assert len(logs) == 1
    assert logs[0]["event"] == "malformed kernel message skipped"
    assert reason in logs[0]["reason"]


# ---------------------------------------------------------------------- a live reader


async def attach(tasks: TaskOwner, kernel: ScriptedKernel, recorder: Recorder) -> KernelSession:
    return await KernelSession.attach(
        kernel.connection_file, timeout=30, tasks=tasks, **recorder.sinks
    )


def comm_values(recorder: Recorder) -> list[int]:
    return [
        m["content"]["data"]["state"]["value"]
        for m in recorder.messages
        if m["msg_type"] == "comm_msg"
    ]


async def test_a_malformed_iopub_message_is_logged_and_the_reader_goes_on(
    tasks: TaskOwner, scripted_kernel: ScriptedKernel, recorder: Recorder
) -> None:
    with capture_logs() as logs:
        session = await attach(tasks, scripted_kernel, recorder)
        try:
            session_key = scripted_kernel.session
            scripted_kernel.publish("comm_msg", {"comm_id": "c", "data": {"state": {"value": 1}}})
            scripted_kernel.publish_frames(_bad_signature(signed(session_key)))
            scripted_kernel.publish_frames(signed(session_key, b"{broken"))
            scripted_kernel.publish("comm_msg", {"comm_id": "c", "data": {"state": {"value": 2}}})
            await recorder.wait_for(lambda: len(comm_values(recorder)) == 2, "both good messages")
        finally:
            await session.shutdown()

    assert comm_values(recorder) == [1, 2]
    skipped = [e for e in logs if e["event"] == "malformed kernel message skipped"]
    assert len(skipped) == 2
    assert all(e["kernel_id"] == "scripted" for e in skipped)


async def test_a_failing_sink_does_not_stop_the_reader(
    tasks: TaskOwner, scripted_kernel: ScriptedKernel
) -> None:
    recorder = Recorder()
    calls = []

    def flaky_sink(batch: list[dict]) -> None:
        calls.append(batch)
        if len(calls) == 1:
            raise RuntimeError("sink bug")
        recorder.on_iopub(batch)

    with capture_logs() as logs:
        session = await KernelSession.attach(
            scripted_kernel.connection_file,
            tasks=tasks,
            on_iopub=flaky_sink,
            on_event=recorder.on_event,
        )
        try:
            scripted_kernel.publish("comm_msg", {"comm_id": "c", "data": {"state": {"value": 7}}})
            await recorder.wait_for(lambda: comm_values(recorder) == [7], "the later message")
        finally:
            await session.shutdown()
    assert any(e["event"] == "kernel session callback failed" for e in logs)


async def test_a_burst_published_while_the_loop_is_busy_arrives_whole(
    tasks: TaskOwner, scripted_kernel: ScriptedKernel, recorder: Recorder
) -> None:
    """The test's own loop publishes 20,000 messages without yielding, so the reader
    cannot run meanwhile: only an unlimited receive buffer keeps the publisher's
    1000-message queue from overflowing (lessons.md: RCVHWM 0)."""
    session = await attach(tasks, scripted_kernel, recorder)
    try:
        for value in range(1, 20001):
            scripted_kernel.publish(
                "comm_msg", {"comm_id": "c", "data": {"state": {"value": value}}}
            )
        final = scripted_kernel.publish("status", {"execution_state": "idle"})
        await recorder.wait_for(
            lambda: recorder.messages[-1]["msg_id"] == final["header"]["msg_id"], "the final status"
        )
    finally:
        await session.shutdown()

    assert comm_values(recorder) == list(range(1, 20001))
    assert recorder.batches < 20000 / 10  # drained in batches, not one await per message


async def test_a_burst_is_read_at_the_gaps_end_and_a_lone_message_at_once() -> None:
    """In a burst the SUB is read once per gap (one wake-up for many messages); the
    first message after a quiet spell is read as soon as it arrives, and so are the
    next few (a cell's handful of messages is not a burst)."""
    gap = 1.0
    session = Session(key=b"k")
    context = zmq.asyncio.Context()
    pub = context.socket(zmq.PUB)
    sub = context.socket(zmq.SUB)
    sub.subscribe(b"")
    sub.connect(f"tcp://127.0.0.1:{pub.bind_to_random_port('tcp://127.0.0.1')}")
    recorder = Recorder()
    batches: list[list[int]] = []

    def deliver(batch: list[dict]) -> None:
        batches.append([m["content"]["data"]["state"]["value"] for m in batch])
        recorder.on_iopub(batch)

    def publish(value: int) -> None:
        msg = session.msg("comm_msg", {"comm_id": "c", "data": {"state": {"value": value}}})
        pub.send_multipart(session.serialize(msg, ident=[b"comm"]))

    last = 2 * IOPUB_BURST_WAKES + 8  # enough that the deferred tail is long, even if a
    # loaded machine folds some of the burst's first messages into one wake-up
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(pump_iopub, sub, MessageDecoder(session), deliver, burst_gap=gap))
            while not batches:  # a SUB misses what is published before it is connected
                publish(0)
                with anyio.move_on_after(0.05):
                    await recorder.wait_for(lambda: batches, "the connection")
            await anyio.sleep(gap * 1.5)  # a quiet spell (the last zeros read meanwhile)
            batches.clear()

            sent = anyio.current_time()
            publish(1)
            await recorder.wait_for(lambda: [1] in batches, "the lone message")
            lone_took = anyio.current_time() - sent
            publish(2)
            await recorder.wait_for(lambda: [2] in batches, "the second message")
            for value in range(3, last + 1):  # a burst: the loop runs between the messages
                publish(value)
                await anyio.sleep(0.02)
            await recorder.wait_for(lambda: any(last in b for b in batches), "the burst")
            tg.cancel_scope.cancel()
    finally:
        pub.close(linger=0)
        sub.close(linger=0)
        context.term()

    assert [value for batch in batches for value in batch] == list(range(1, last + 1))
    assert batches[:2] == [[1], [2]]  # read at once, each alone
    assert len(batches[-1]) >= 3  # the burst's tail waited for the gap's end, together
    assert lone_took < gap
