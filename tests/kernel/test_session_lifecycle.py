"""Launch failures, attach, death, restart: the kernel's life as the room sees it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from jupyter_client.manager import AsyncKernelManager
from kernel_helpers import Recorder

from runtimed.daemon.tasks import TaskOwner
from runtimed.kernel import KernelError, KernelSession

pytestmark = pytest.mark.kernel


async def kernel_pid(session: KernelSession, recorder: Recorder) -> int:
    msg_id = session.execute("import os; print(os.getpid())")
    return int(await recorder.stdout_of(msg_id))


def live_processes_with(marker: str) -> list[psutil.Process]:
    """Our children whose command line carries `marker` (zombies count as gone)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if marker in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


# ---------------------------------------------------------------------- failed starts


async def test_a_kernel_that_exits_at_start_fails_launch_with_its_exit_code(
    tasks: TaskOwner, recorder: Recorder, make_kernelspec: Callable[..., str]
) -> None:
    name = make_kernelspec("exits", [sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(KernelError) as failed:
        await KernelSession.launch(name, startup_timeout=30, tasks=tasks, **recorder.sinks)

    assert failed.value.code == "kernel_dead"
    assert "failed to start: exited with code 3" in failed.value.message
    assert [e.kind for e in recorder.events] == ["starting", "died"]
    assert recorder.events[-1].reason == "failed to start: exited with code 3"


async def test_a_kernel_that_never_answers_times_out_and_is_killed(
    tasks: TaskOwner, recorder: Recorder, make_kernelspec: Callable[..., str], tmp_path: Path
) -> None:
    marker = f"never-answers-{tmp_path.name}"
    argv = [sys.executable, "-c", "import time; time.sleep(600)", marker]
    name = make_kernelspec("mute", argv)
    with pytest.raises(KernelError) as failed:
        await KernelSession.launch(name, startup_timeout=1.5, tasks=tasks, **recorder.sinks)

    assert failed.value.code == "kernel_timeout"
    assert "no kernel_info_reply within 1.5 s" in failed.value.message
    assert recorder.events[-1].kind == "died"
    assert live_processes_with(marker) == []


async def test_a_cancelled_launch_leaves_no_process(
    tasks: TaskOwner, recorder: Recorder, make_kernelspec: Callable[..., str], tmp_path: Path
) -> None:
    marker = f"cancelled-{tmp_path.name}"
    name = make_kernelspec("slow", [sys.executable, "-c", "import time; time.sleep(600)", marker])
    launching = asyncio.ensure_future(KernelSession.launch(name, tasks=tasks, **recorder.sinks))
    deadline = asyncio.get_running_loop().time() + 30
    while not live_processes_with(marker):
        assert asyncio.get_running_loop().time() < deadline, "the kernel process never started"
        await asyncio.sleep(0.05)

    launching.cancel()
    with pytest.raises(asyncio.CancelledError):
        await launching
    assert live_processes_with(marker) == []


async def test_an_unknown_kernelspec_is_a_clear_error(tasks: TaskOwner, recorder: Recorder) -> None:
    with pytest.raises(KernelError) as failed:
        await KernelSession.launch("no-such-kernel-here", tasks=tasks, **recorder.sinks)
    assert failed.value.code == "no_such_kernel"
    assert "no-such-kernel-here" in failed.value.message


# ---------------------------------------------------------------------- attach


async def test_attach_bridges_an_external_kernel_and_never_kills_it(
    tasks: TaskOwner, external_kernel: AsyncKernelManager, recorder: Recorder
) -> None:
    session = await KernelSession.attach(
        external_kernel.connection_file, tasks=tasks, **recorder.sinks
    )
    try:
        assert not session.owned
        assert session.kernel_info is not None
        msg_id = session.execute("print(6 * 7)")
        assert (await recorder.stdout_of(msg_id)).strip() == "42"
        with pytest.raises(KernelError) as not_owned:
            await session.restart()
        assert not_owned.value.code == "not_owned"
    finally:
        await session.shutdown()

    assert [e.kind for e in recorder.events][-1] == "shutdown"
    assert await external_kernel.is_alive()
    assert Path(external_kernel.connection_file).exists()
    again = Recorder()
    second = await KernelSession.attach(external_kernel.connection_file, tasks=tasks, **again.sinks)
    try:
        msg_id = second.execute("print('still alive')")
        assert (await again.stdout_of(msg_id)).strip() == "still alive"
    finally:
        await second.shutdown()


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (None, "does not exist"),
        ("{not json", "not readable JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"transport": "tcp", "ip": "127.0.0.1"}), "'key' missing"),
    ],
)
async def test_attach_refuses_a_bad_connection_file(
    tasks: TaskOwner, tmp_path: Path, recorder: Recorder, content: str | None, complaint: str
) -> None:
    path = tmp_path / "kernel-bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(KernelError) as refused:
        await KernelSession.attach(str(path), tasks=tasks, **recorder.sinks)
    assert refused.value.code == "bad_connection_file"
    assert complaint in refused.value.message
    assert recorder.events == []


async def test_attach_to_nobody_fails_in_time(
    tasks: TaskOwner, tmp_path: Path, recorder: Recorder
) -> None:
    ports = {f"{c}_port": 1 + n for n, c in enumerate(["shell", "iopub", "stdin", "control", "hb"])}
    info = {"transport": "tcp", "ip": "127.0.0.1", "key": "k", "signature_scheme": "hmac-sha256"}
    path = tmp_path / "kernel-nobody.json"
    path.write_text(json.dumps(info | ports))

    with pytest.raises(KernelError) as failed:
        await KernelSession.attach(str(path), timeout=1, tasks=tasks, **recorder.sinks)
    assert failed.value.code == "kernel_timeout"
    assert recorder.events[-1].kind == "died"


# ---------------------------------------------------------------------- death


async def test_a_killed_owned_kernel_is_reported_dead_and_can_be_restarted(
    kernel: KernelSession, recorder: Recorder
) -> None:
    os.kill(await kernel_pid(kernel, recorder), signal.SIGKILL)

    died = await recorder.event("died", within=10)
    assert died.reason == "exited with code -9 (SIGKILL)"
    assert kernel.status == "dead"
    with pytest.raises(KernelError) as dead:
        await kernel.request("kernel_info_request", {})
    assert dead.value.code == "kernel_dead"

    await kernel.restart()
    assert kernel.status == "idle"
    msg_id = kernel.execute("print('back')")
    assert (await recorder.stdout_of(msg_id)).strip() == "back"


async def test_a_killed_attached_kernel_is_reported_dead_by_heartbeat(
    tasks: TaskOwner, external_kernel: AsyncKernelManager, recorder: Recorder
) -> None:
    session = await KernelSession.attach(
        external_kernel.connection_file, heartbeat_timeout=1.5, tasks=tasks, **recorder.sinks
    )
    try:
        os.kill(await kernel_pid(session, recorder), signal.SIGKILL)
        died = await recorder.event("died", within=15)
        assert died.reason == "no heartbeat for 1.5 s"
        assert session.status == "dead"
    finally:
        await session.shutdown()


async def test_pending_requests_fail_when_the_kernel_dies(
    kernel: KernelSession, recorder: Recorder
) -> None:
    pid = await kernel_pid(kernel, recorder)
    msg_id = kernel.execute("import time; time.sleep(60)")
    waiting = asyncio.ensure_future(kernel.request("kernel_info_request", {}, timeout=60))
    await recorder.wait_for(
        lambda: any(
            m["msg_type"] == "status" and m["content"]["execution_state"] == "busy"
            for m in recorder.children_of(msg_id)
        ),
        "the kernel to be busy",
    )
    os.kill(pid, signal.SIGKILL)

    with pytest.raises(KernelError) as dead:
        await waiting
    assert dead.value.code == "kernel_dead"


# ---------------------------------------------------------------------- restart


async def test_restart_starts_a_fresh_kernel_and_iopub_keeps_flowing(
    kernel: KernelSession, recorder: Recorder
) -> None:
    old_pid = await kernel_pid(kernel, recorder)
    kernel.execute("x = 1")

    await kernel.restart()

    kinds = [e.kind for e in recorder.events]
    assert kinds == ["starting", "started", "restarting", "restarted"]
    assert kernel.status == "idle"
    assert await kernel_pid(kernel, recorder) != old_pid
    msg_id = kernel.execute("print('x' in globals())")
    assert (await recorder.stdout_of(msg_id)).strip() == "False"
