"""Case 15: the 20,000-update burst with the kernel on Jupyter Enterprise Gateway.

The daemon (`--gateway-url`) launches the kernel through the gateway's REST API and
bridges it over the gateway's kernel WebSocket; the baseline is a plain WebSocket
reader of the same gateway on a kernel of its own, doing nothing but count. Both
kernels are the same kernelspec, local processes behind the gateway on loopback.
"""

from __future__ import annotations

import math
import sys

from ..context import BenchContext
from ..gateway_reader import GatewayReader
from ..procs import REPO
from ..result import CaseResult, Check, Row
from ..rig import rig
from .burst import daemon_burst, with_cpu
from .jupyter_ws import server_burst

sys.path.insert(0, str(REPO))  # the gateway runner is the remote-kernel tests'
from tests.remote_gateway.enterprise_gateway import EnterpriseGateway

KEY = "remote_gateway"
TITLE = "15. Kernels elsewhere: the burst through Enterprise Gateway"
BASELINE = "plain WebSocket reader of the gateway"
KERNEL = "unbounded"  # IOPub never drops on the kernel's side


async def run(ctx: BenchContext) -> list[CaseResult]:
    updates = ctx.pick(20_000, 10_000)
    repeats = ctx.pick(3, 1)
    result = CaseResult(
        KEY, TITLE, params={"updates": updates, "repeats": repeats, "protocol": "legacy JSON"}
    )
    gateway = EnterpriseGateway(ctx.dir(f"{KEY}-eg")).start()
    ours: list[dict] = []
    theirs: list[dict] = []
    reader = GatewayReader(gateway.url, gateway.token, KERNEL)
    env = {"RUNTIMED_GATEWAY_URL": gateway.url, "RUNTIMED_GATEWAY_TOKEN": gateway.token}
    try:
        await reader.start()
        async with rig(ctx, KEY, launch=KERNEL, env=env) as r:
            for repeat in range(repeats):
                theirs.append(await server_burst(reader, f"_gw{repeat}", updates))
                run, cpu = await with_cpu(r.daemon, daemon_burst(r, f"_ours{repeat}", updates))
                ours.append({**run, "cpu_us": cpu / updates * 1e6})
                ctx.progress(
                    KEY,
                    f"repeat {repeat + 1}/{repeats}: daemon {ours[-1]['doc_seconds']:.2f} s "
                    f"({ours[-1]['messages']} msgs); reader {theirs[-1]['seconds']:.2f} s "
                    f"({theirs[-1]['messages']} msgs)",
                )
    finally:
        await reader.stop()
        gateway.stop()
    figures = [  # (name, unit, the daemon's per repeat, the reader's per repeat)
        (
            "time to final value, 2nd client's doc / reader",
            "s",
            [o["doc_seconds"] for o in ours],
            [t["seconds"] for t in theirs],
        ),
        (
            "updates delivered",
            "msgs",
            [o["messages"] for o in ours],
            [t["messages"] for t in theirs],
        ),
        (
            "final value seen",
            "",
            [updates for _ in ours],
            [t["final"] if t["final"] is not None else math.nan for t in theirs],
        ),
    ]
    result.rows = [Row(name, unit, mine, BASELINE, base) for name, unit, mine, base in figures]
    result.rows.append(Row("daemon CPU per update", "µs", [o["cpu_us"] for o in ours]))
    ratio = result.rows[0].ratio_spread
    result.checks = [
        Check(
            "daemon delivered every update through the gateway",
            all(o["messages"] == updates for o in ours),
            f"updates per repeat: {[o['messages'] for o in ours]}",
        ),
        Check(
            "the reader saw the final value (the gateway dropped nothing)",
            all(t["final"] == updates for t in theirs),
            f"last values {[t['final'] for t in theirs]}",
        ),
        Check.ratio_at_most("daemon/reader time ratio <= 1.5 (median)", ratio, 1.5, "ratio"),
    ]
    result.notes.append(
        "Enterprise Gateway 3.3.0 from its own venv (.venv-eg), kernels local behind it; the "
        "daemon's time includes its doc and a second client's sync, the reader only counts."
    )
    return [result]
