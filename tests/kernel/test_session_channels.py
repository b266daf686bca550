"""KernelSession on a live ipykernel: IOPub, replies by msg_id, stdin, comms, the burst."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from kernel_helpers import Recorder

from runtimed.daemon.tasks import TaskOwner
from runtimed.kernel import KernelError, KernelSession

pytestmark = pytest.mark.kernel


async def test_launch_fetches_kernel_info_and_runs_the_venv_python(
    kernel: KernelSession, recorder: Recorder
) -> None:
    assert kernel.owned
    assert kernel.status == "idle"
    assert kernel.kernel_info is not None
    assert kernel.kernel_info["language_info"]["name"] == "python"
    assert [e.kind for e in recorder.events] == ["starting", "started"]

    msg_id = kernel.execute("import sys; print(sys.prefix)")
    assert (await recorder.stdout_of(msg_id)).strip() == sys.prefix


async def test_execute_output_and_status_arrive_with_their_parent(
    kernel: KernelSession, recorder: Recorder
) -> None:
    msg_id = kernel.execute("print(1)")
    messages = await recorder.until_idle(msg_id)

    kinds = [(m["msg_type"], m["content"].get("execution_state")) for m in messages]
    assert kinds[0] == ("status", "busy")
    assert kinds[-1] == ("status", "idle")
    streams = [m["content"] for m in messages if m["msg_type"] == "stream"]
    assert streams == [{"name": "stdout", "text": "1\n"}]
    assert all(isinstance(m["header"]["date"], str) for m in messages)

    reply = await recorder.wait_for(lambda: recorder.reply_to(msg_id), "execute_reply")
    assert reply["msg_type"] == "execute_reply"
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["execution_count"] == 1


async def test_requests_in_flight_on_shell_and_control_get_their_own_replies(
    kernel: KernelSession, recorder: Recorder
) -> None:
    busy = kernel.execute("import time; time.sleep(0.5)")
    requests = [
        ("kernel_info_request", {}, "shell"),
        ("comm_info_request", {}, "shell"),
        ("is_complete_request", {"code": "for x in y:"}, "shell"),
        ("kernel_info_request", {}, "control"),
        ("is_complete_request", {"code": "1 + 1"}, "shell"),
    ]
    replies = await asyncio.gather(
        *(kernel.request(t, c, channel=ch, timeout=30) for t, c, ch in requests)  # type: ignore[arg-type]
    )

    assert [r["msg_type"] for r in replies] == [
        t.replace("request", "reply") for t, _, _ in requests
    ]
    assert replies[2]["content"]["status"] == "incomplete"
    assert replies[4]["content"]["status"] == "complete"
    assert len({r["parent_header"]["msg_id"] for r in replies}) == len(requests)
    # Nobody awaited the execute_reply: it went to on_reply, and nothing else did.
    await recorder.wait_for(lambda: recorder.reply_to(busy), "the execute_reply")
    assert all(r["msg_type"] == "execute_reply" for r in recorder.replies)


async def test_input_request_is_answered_instead_of_hanging(
    kernel: KernelSession, recorder: Recorder
) -> None:
    msg_id = kernel.execute("print(repr(input('? ')))", allow_stdin=True)
    assert (await recorder.stdout_of(msg_id)).strip() == "''"


async def test_interrupt_stops_a_running_cell(kernel: KernelSession, recorder: Recorder) -> None:
    msg_id = kernel.execute("print('go', flush=True); import time; time.sleep(60)")
    await recorder.wait_for(
        lambda: any(m["msg_type"] == "stream" for m in recorder.children_of(msg_id)), "'go'"
    )
    await kernel.interrupt()
    reply = await recorder.wait_for(lambda: recorder.reply_to(msg_id), "the execute_reply")
    assert reply["content"]["ename"] == "KeyboardInterrupt"


async def test_send_comm_moves_a_slider_in_the_kernel(
    kernel: KernelSession, recorder: Recorder
) -> None:
    created = kernel.execute("from ipywidgets import IntSlider; w = IntSlider(max=10**9)")
    opens = [m for m in await recorder.until_idle(created) if m["msg_type"] == "comm_open"]
    assert [m["content"]["data"]["state"]["_model_name"] for m in opens][-1] == "IntSliderModel"
    comm_id = opens[-1]["content"]["comm_id"]

    kernel.send_comm(comm_id, {"method": "update", "state": {"value": 42}, "buffer_paths": []})
    check = kernel.execute("print(w.value)")
    assert (await recorder.stdout_of(check)).strip() == "42"


@pytest.mark.slow
async def test_a_20000_update_burst_reaches_on_iopub_whole(
    tasks: TaskOwner, recorder: Recorder, unbounded_kernel: str
) -> None:
    kernel = await KernelSession.launch(unbounded_kernel, tasks=tasks, **recorder.sinks)
    try:
        setup = kernel.execute("from ipywidgets import IntSlider; w = IntSlider(max=10**9)")
        await recorder.until_idle(setup)
        burst = kernel.execute("for i in range(1, 20001): w.value = i")
        messages = await recorder.until_idle(burst)
        check = kernel.execute("print(w.value)")
        assert (await recorder.stdout_of(check)).strip() == "20000"
    finally:
        await kernel.shutdown()

    values = [
        m["content"]["data"]["state"]["value"]
        for m in messages
        if m["msg_type"] == "comm_msg" and "value" in m["content"]["data"].get("state", {})
    ]
    assert values == list(range(1, 20001))


async def test_bad_sends_raise_a_clear_error_and_the_session_goes_on(
    kernel: KernelSession, recorder: Recorder
) -> None:
    with pytest.raises(KernelError) as not_json:
        kernel.send_shell("execute_request", {"code": object()})
    assert not_json.value.code == "bad_message"
    with pytest.raises(KernelError) as bad_comm:
        kernel.send_comm("c1", {}, msg_type="comm_open")
    assert "target_name" in bad_comm.value.message
    with pytest.raises(KernelError) as bad_channel:
        await kernel.request("kernel_info_request", {}, channel="iopub")  # type: ignore[arg-type]
    assert bad_channel.value.code == "bad_message"

    msg_id = kernel.execute("print('still here')")
    assert (await recorder.stdout_of(msg_id)).strip() == "still here"


async def test_launch_in_a_directory_then_shut_down_twice(
    tasks: TaskOwner, recorder: Recorder, tmp_path: Path
) -> None:
    session = await KernelSession.launch(cwd=str(tmp_path), tasks=tasks, **recorder.sinks)
    cwd = session.execute("import os; print(os.getcwd())")
    assert (await recorder.stdout_of(cwd)).strip() == str(tmp_path)
    connection_file = session.connection_file
    assert connection_file is not None
    await session.shutdown()
    await session.shutdown()

    assert session.status == "shutdown"
    assert [e.kind for e in recorder.events].count("shutdown") == 1
    assert not Path(connection_file).exists()
    with pytest.raises(KernelError) as closed:
        session.execute("1")
    assert closed.value.code == "no_kernel"
