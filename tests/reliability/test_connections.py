"""Clients that misbehave at the transport: vanish mid-frame, reset, stop reading.

The room and its other clients go on, and the daemon's memory stays bounded by the
per-peer queue limit however long a stuck client stays connected.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Callable

import pytest

from runtimed.client import Client
from tests.bridge.helpers import run
from tests.daemon.test_wire import PREAMBLE, frame, typed
from tests.reliability.conftest import DaemonProcess

pytestmark = pytest.mark.kernel

NOTEBOOK = "nb-conn"
MiB = 1024 * 1024
BURST = "for _ in range(20000):\n    s.value += 1"
# The same, paced so the daemon keeps up even on a loaded machine: IOPub never queues
# up in the daemon, and its memory measures the peers' queues alone.
PACED_BURST = (
    "import time\nfor i in range(20000):\n    s.value += 1\n    i % 500 or time.sleep(0.02)"
)


def stuck_client(daemon: DaemonProcess, notebook_id: str) -> socket.socket:
    """Joins the room, then never reads again (a frozen or half-open peer)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(str(daemon.settings.socket_path))
    hello = {"channel": "notebook", "notebook_id": notebook_id, "snapshot": False}
    sock.sendall(PREAMBLE + frame(json.dumps(hello).encode()))
    return sock


def slider(client: Client) -> int | None:
    values = [c.state["value"] for c in client.doc.get_comms() if c.model_name == "IntSliderModel"]
    return values[0] if values else None


async def kernel_value(actor: Client) -> int:
    await run(actor, "print(s.value)")
    comms = (await actor.request("get_comms"))["comms"]
    return next(c["state"]["value"] for c in comms if c["model_name"] == "IntSliderModel")


def logged(daemon: DaemonProcess, event: str) -> list[dict]:
    return [line for line in daemon.logs() if line.get("event") == event]


async def test_a_client_that_stops_reading_costs_bounded_memory(
    daemon_process: Callable[..., DaemonProcess],
) -> None:
    daemon = daemon_process(peer_queue_limit=MiB, peer_stall_timeout=600)
    await daemon.start()
    async with daemon.client(NOTEBOOK) as actor, daemon.client(NOTEBOOK) as observer:
        await actor.request("launch_kernel")
        await run(actor, "from ipywidgets import IntSlider\ns = IntSlider(max=10**9)")
        stuck = stuck_client(daemon, NOTEBOOK)
        for _ in range(2):  # warm-up: the stuck peer's queue fills and overflows
            await run(actor, PACED_BURST)
        warm = daemon.rss()
        for _ in range(4):  # 80,000 comm broadcasts: +24 MiB if the stuck peer kept them
            await run(actor, PACED_BURST)
        grown = daemon.rss() - warm
        print(f"daemon RSS after warm-up {warm / MiB:.1f} MiB, grew {grown / MiB:.2f} MiB")
        expected = await kernel_value(actor)
        await observer.wait_for(lambda c: slider(c) == expected, what="observer caught up")
        assert slider(actor) == expected == 120_000
        # Each of the three peers may hold its queue limit queued plus one batch being
        # written: 6 MiB at most, and as much again for the allocator's slack.
        assert grown < 12 * MiB, f"daemon grew {grown / MiB:.1f} MiB with a stuck peer"
        assert logged(daemon, "peer_lagging")
        assert not logged(daemon, "peer_dropped")  # bounded without dropping it
        stuck.close()
        await actor.request("shutdown_kernel")


async def test_a_stuck_client_is_dropped_after_the_stall_timeout(
    daemon_process: Callable[..., DaemonProcess],
) -> None:
    daemon = daemon_process(peer_stall_timeout=2)
    await daemon.start()
    async with daemon.client(NOTEBOOK) as actor:
        await actor.request("launch_kernel")
        await run(actor, "from ipywidgets import IntSlider\ns = IntSlider(max=10**9)")
        stuck = stuck_client(daemon, NOTEBOOK)
        while not logged(daemon, "peer_dropped"):
            await run(actor, BURST)  # keeps the stuck peer's socket full
        [dropped] = logged(daemon, "peer_dropped")
        assert dropped["reason"] == "stalled"
        # Its connection is closed: draining it ends in EOF, not in more frames forever.
        stuck.setblocking(True)
        stuck.settimeout(30)
        while stuck.recv(MiB):
            pass
        stuck.close()
        await run(actor, "s.value = 1")
        assert await kernel_value(actor) == 1
        await actor.request("shutdown_kernel")


async def test_clients_vanishing_mid_frame_during_a_burst(
    daemon_process: Callable[..., DaemonProcess],
) -> None:
    daemon = daemon_process()
    await daemon.start()
    async with daemon.client(NOTEBOOK) as actor, daemon.client(NOTEBOOK) as observer:
        await actor.request("launch_kernel")
        await run(actor, "from ipywidgets import IntSlider\ns = IntSlider(max=10**9)")
        burst = asyncio.get_running_loop().create_task(run(actor, BURST))
        cuts = [
            PREAMBLE[:3],  # inside the preamble
            PREAMBLE + struct.pack(">I", 100)[:2],  # inside a length prefix
            PREAMBLE + struct.pack(">I", 1000) + b'{"channel"',  # inside the handshake
        ]
        for cut in cuts * 5:
            vanish(daemon, cut, reset=len(cuts) % 2 == 0)
        for n in range(10):  # joined, then gone inside a SYNC or REQUEST frame, some by RST
            sock = stuck_client(daemon, NOTEBOOK)
            sock.sendall(typed(0x01, {"id": 1, "action": "get_comms"})[:7])
            close(sock, reset=n % 2 == 0)
        await burst
        expected = await kernel_value(actor)
        await observer.wait_for(lambda c: slider(c) == expected, what="observer caught up")
        assert daemon.alive
        async with daemon.client(NOTEBOOK) as late:
            assert slider(late) == expected
        await actor.request("shutdown_kernel")


def vanish(daemon: DaemonProcess, data: bytes, *, reset: bool) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(daemon.settings.socket_path))
    sock.sendall(data)
    close(sock, reset=reset)


def close(sock: socket.socket, *, reset: bool) -> None:
    if reset:  # SO_LINGER 0: the peer sees a reset, not an orderly end of stream
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
