"""A kernel launched over SSH by a kernel provisioner behaves as a local one.

The kernelspec names gateway_provisioners' DistributedProvisioner; the daemon hands it
to jupyter_client's KernelManager, which logs in to a real sshd (tests/remote/conftest.py)
with paramiko and starts the kernel launcher there. Everything after that is the
daemon's ordinary path: ZMQ to the kernel's ports, CommState, the doc.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import psutil
import pytest

from runtimed.client import Client, ClientError
from tests.bridge.helpers import (
    assert_doc_matches_comm_state,
    doc_comms,
    kernel_widgets,
    run,
    run_cell,
)
from tests.conftest import eventually
from tests.reliability.conftest import DaemonProcess
from tests.remote.conftest import (
    KERNEL_NAME,
    UNREACHABLE_ADDRESS,
    UNREACHABLE_KERNEL_NAME,
    SshHost,
    kernel_logs,
)

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

WHERE = "import json, os\nprint(json.dumps([os.getpid(), os.environ.get('SSH_CONNECTION')]))"
BURST = 2000


async def where(client: Client) -> tuple[int, list[str]]:
    """The kernel's pid and the SSH connection its launcher was started through."""
    outputs = await run_cell(client, WHERE)
    text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    pid, connection = json.loads(text)
    return pid, (connection or "").split()


def assert_started_over_ssh(connection: list[str], host: SshHost) -> None:
    """SSH_CONNECTION is `client_ip client_port server_ip server_port`."""
    assert connection[2:] == [host.address, str(host.port)], connection


def statuses(client: Client, since: int = 0) -> list[str]:
    return [
        e.fields["status"] for e in list(client.broadcasts)[since:] if e.event == "kernel_status"
    ]


def cell_status(client: Client, cell_id: str) -> str | None:
    cell = client.doc.get_cell(cell_id)
    return cell.execution_status if cell is not None else None


async def launch(client: Client, host: SshHost) -> dict:
    try:
        return await client.request("launch_kernel", kernel_name=KERNEL_NAME, timeout=90)
    except ClientError as exc:
        logs = f"sshd: {host.sshd_log.read_text()}\n{kernel_logs(host)}"
        raise AssertionError(f"{exc}\n{logs}") from exc


@pytest.fixture
async def room(
    remote_daemon: DaemonProcess, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Client, Client]]:
    """An actor and an observer on a room of its own (the daemon is the module's)."""
    notebook = f"nb-{request.node.name}"
    async with remote_daemon.client(notebook) as actor, remote_daemon.client(notebook) as observer:
        yield actor, observer


async def assert_comms_cleared(actor: Client, observer: Client, since: int) -> None:
    """No comm left in CommState, the doc or the last comm_sync, as after a local kernel."""
    await observer.wait_for(
        lambda c: any(
            e.event == "comm_sync" and e.fields["comms"] == [] for e in list(c.broadcasts)[since:]
        ),
        30,
        "empty comm_sync",
    )
    await observer.wait_for(lambda c: doc_comms(c) == {}, 30, "doc comms cleared")
    assert (await actor.request("get_comms"))["comms"] == []


async def test_widgets_outputs_interrupt_restart_and_shutdown_through_the_provisioner(
    room: tuple[Client, Client], ssh_host: SshHost
) -> None:
    actor, observer = room
    launched = await launch(actor, ssh_host)
    assert launched["kernel_name"] == KERNEL_NAME
    pid, connection = await where(actor)
    assert_started_over_ssh(connection, ssh_host)
    assert "Accepted publickey" in ssh_host.sshd_log.read_text()

    # Outputs: a stream and rich display data reach the cell in the doc.
    outputs = await run_cell(
        actor,
        "from IPython.display import HTML, display\nprint('hi')\ndisplay(HTML('<b>x</b>'))",
    )
    assert [o["output_type"] for o in outputs] == ["stream", "display_data"]
    assert outputs[0]["text"] == "hi\n"
    assert outputs[1]["data"]["text/html"] == "<b>x</b>"

    # Widgets: a burst of updates ends where the kernel's registry is, in both stores.
    await run(
        actor,
        "from ipywidgets import IntSlider\n"
        "w = IntSlider(max=10**9)\n"
        f"for i in range(1, {BURST + 1}): w.value = i",
    )
    legacy = await assert_doc_matches_comm_state(observer, actor)
    truth = await kernel_widgets(actor)
    assert set(truth) == set(legacy)
    for comm_id, state in truth.items():
        assert {k: legacy[comm_id]["state"].get(k) for k in state} == state, comm_id
    [slider] = [c for c in legacy.values() if c["model_name"] == "IntSliderModel"]
    assert slider["state"]["value"] == BURST

    # Interrupt: a SIGINT sent through the provisioner ends a sleeping cell.
    # Sent once the cell's code runs (its output is in the doc): a SIGINT that came
    # while the kernel was still taking the request in would be ignored.
    sleeper = actor.doc.add_cell(
        source="import time\nprint('sleeping', flush=True)\ntime.sleep(60)"
    )
    running_cell = asyncio.ensure_future(actor.run_cell(sleeper, timeout=60))
    await actor.wait_for(lambda c: c.doc.get_outputs(sleeper), 30, "the sleeper's output")
    assert cell_status(actor, sleeper) == "running"
    await actor.request("interrupt_kernel")
    ended = await running_cell
    assert ended["status"] == "error", ended
    assert ended["ename"] == "KeyboardInterrupt", ended
    await eventually(
        lambda: "got request: {'signum': 2}" in kernel_logs(ssh_host),
        what="the SIGINT carried by the launcher's listener",
    )

    # Restart: a new kernel, launched over ssh again, and no comms left anywhere.
    before = len(observer.broadcasts)
    await actor.request("restart_kernel", timeout=90)
    await assert_comms_cleared(actor, observer, before)
    assert "restarting" in statuses(observer, before)
    new_pid, connection = await where(actor)
    assert new_pid != pid
    assert_started_over_ssh(connection, ssh_host)
    await run(actor, "from ipywidgets import IntSlider\nt = IntSlider(value=5)")
    await assert_doc_matches_comm_state(observer, actor)

    # Shutdown: the room says so, its comms are gone, and so is the remote process
    # (gateway_provisioners' launcher makes it linger ~30 s: docs/remote-kernels.md).
    await actor.request("shutdown_kernel")
    await observer.wait_for(lambda c: "shutdown" in statuses(c, before), 30)
    await observer.wait_for(lambda c: doc_comms(c) == {}, 30, "doc comms cleared")
    await eventually(lambda: not psutil.pid_exists(new_pid), timeout=60, what="kernel exit")


async def test_a_kernel_killed_or_frozen_on_the_remote_host_is_dead(
    room: tuple[Client, Client], ssh_host: SshHost
) -> None:
    actor, observer = room
    await launch(actor, ssh_host)
    await run(actor, "from ipywidgets import IntSlider\ns = IntSlider()")
    await observer.wait_for(lambda c: len(doc_comms(c)) >= 2, 30, "widgets in the doc")
    pid, connection = await where(actor)
    assert_started_over_ssh(connection, ssh_host)
    before = len(observer.broadcasts)

    ssh_host.run(f"kill -KILL {pid}")

    # The provisioner only learns that the kernel is gone, and the message says who said
    # so; on a loaded machine the heartbeat may notice first.
    assert await death(observer, before) in (
        "DistributedProvisioner reports the kernel gone (exit code 0)",
        "no heartbeat for 3 s",
    )
    await assert_comms_cleared(actor, observer, before)

    # The room stays usable: the next kernel is launched over ssh again.
    await launch(actor, ssh_host)
    frozen_pid, connection = await where(actor)
    assert frozen_pid != pid
    assert_started_over_ssh(connection, ssh_host)

    # Frozen (or cut off): its launcher's listener still answers the provisioner's poll,
    # so only the heartbeat tells.
    before = len(observer.broadcasts)
    ssh_host.run(f"kill -STOP {frozen_pid}")
    try:
        assert await death(observer, before) == "no heartbeat for 3 s"
    finally:
        ssh_host.run(f"kill -KILL {frozen_pid}")


async def death(observer: Client, since: int) -> str:
    """Wait for `dead`; the one `kernel_died` error's message."""
    await observer.wait_for(lambda c: "dead" in statuses(c, since), 30, "kernel dead")
    [message] = [
        e.fields["message"]
        for e in list(observer.broadcasts)[since:]
        if e.event == "error" and e.fields["code"] == "kernel_died"
    ]
    return message


async def test_a_host_without_sshd_is_a_clear_launch_error(
    room: tuple[Client, Client], ssh_host: SshHost
) -> None:
    """The provisioner's SSH error reaches the client, and the room says `dead`."""
    actor, observer = room
    with pytest.raises(ClientError) as refused:
        await actor.request("launch_kernel", kernel_name=UNREACHABLE_KERNEL_NAME, timeout=90)
    assert refused.value.code == "kernel_error"
    assert refused.value.message.startswith(f"kernel '{UNREACHABLE_KERNEL_NAME}': failed to start")
    assert f"Unable to connect to port {ssh_host.port} on {UNREACHABLE_ADDRESS}" in (
        refused.value.message
    )
    await observer.wait_for(lambda c: "dead" in statuses(c), 30, "kernel dead")
    assert [
        e.fields["message"]
        for e in observer.broadcasts
        if e.event == "error" and e.fields["code"] == "kernel_error"
    ] == [refused.value.message]
