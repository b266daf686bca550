"""Case 6: the same burst through jupyter_server's kernel WebSocket, against the daemon.

Three ways through jupyter_server: its own kernels (default settings, and with the
IOPub rate limit off), and `--gateway-url` at the daemon, whose Kernel Gateway API
runs the kernel in a room (the path `jupyter lab --gateway-url` takes).
"""

from __future__ import annotations

import math

from runtimed.config import token_path

from ..context import BenchContext
from ..jupyter_ws import JupyterServer, free_port
from ..kernel_code import BURST, NEW_SLIDER
from ..result import CaseResult, Check, Row
from ..rig import rig
from .burst import daemon_burst

KEY = "jupyter_ws"
TITLE = "6. What users run today: jupyter_server kernel WebSocket vs the daemon"
GATEWAY = "jupyter_server --gateway-url to the daemon"
QUIET = 3.0  # seconds without a message: the rest of the burst is not coming


async def server_burst(server: JupyterServer, name: str, updates: int) -> dict:
    comm_id = (await server.run_to_idle(NEW_SLIDER.format(name=name))).strip()
    return await server.burst(BURST.format(n=updates, name=name), comm_id, updates, QUIET)


async def run(ctx: BenchContext) -> list[CaseResult]:
    updates = ctx.pick(20_000, 10_000)
    repeats = ctx.pick(3, 1)
    result = CaseResult(
        KEY,
        TITLE,
        params={"updates": updates, "repeats": repeats, "websocket_protocol": "v1 (JupyterLab's)"},
        extra_column=GATEWAY,
    )
    configs = {"default settings": True, "rate limit off": False}
    servers = {
        label: JupyterServer(ctx.dir(f"{KEY}-{i}"), rate_limited=limited)
        for i, (label, limited) in enumerate(configs.items())
    }
    ours: list[dict] = []
    theirs: dict[str, list[dict]] = {label: [] for label in [*configs, GATEWAY]}
    ws_port = free_port()
    try:
        for server in servers.values():
            await server.start()
        async with rig(ctx, KEY, ws_port=ws_port) as r:
            token = token_path(r.daemon.socket_path).read_text().strip()
            gateway = (f"http://127.0.0.1:{ws_port}", token)
            servers[GATEWAY] = JupyterServer(
                ctx.dir(f"{KEY}-gw"), rate_limited=True, gateway=gateway
            )
            await servers[GATEWAY].start()
            for repeat in range(repeats):
                for label, server in servers.items():
                    theirs[label].append(await server_burst(server, f"_ws{repeat}", updates))
                # One socket client both runs the burst and watches it, like the WebSocket.
                ours.append(await daemon_burst(r, f"_ours{repeat}", updates, watcher=r.actor))
                ctx.progress(
                    KEY,
                    f"repeat {repeat + 1}/{repeats}: daemon "
                    f"{ours[-1]['doc_seconds']:.2f} s ({ours[-1]['messages']} msgs); "
                    + "; ".join(
                        f"{label} {runs[-1]['seconds']:.2f} s ({runs[-1]['messages']} msgs)"
                        for label, runs in theirs.items()
                    ),
                )
    finally:
        for server in servers.values():
            await server.stop()
    gateway_runs = theirs.pop(GATEWAY)
    for label, runs in theirs.items():
        result.rows += [
            Row(
                "time to final value (doc) / to the end of delivery",
                "s",
                [o["doc_seconds"] for o in ours],
                f"jupyter_server, {label}",
                [t["seconds"] for t in runs],
                extra=[t["seconds"] for t in gateway_runs],
            ),
            Row(
                "updates delivered",
                "msgs",
                [o["messages"] for o in ours],
                f"jupyter_server, {label}",
                [t["messages"] for t in runs],
                extra=[t["messages"] for t in gateway_runs],
            ),
            Row(
                "final value seen",
                "",
                [updates for _ in ours],
                f"jupyter_server, {label}",
                [_final(t) for t in runs],
                extra=[_final(t) for t in gateway_runs],
            ),
        ]
        correct = sum(t["final"] == updates for t in runs)
        idle = sum(t["idle_seen"] for t in runs)
        result.notes.append(
            f"jupyter_server ({label}): final value right in {correct}/{len(runs)} runs, "
            f"the burst's idle status arrived in {idle}/{len(runs)}; last values seen "
            f"{[t['final'] for t in runs]}"
        )
        speed = result.rows[-3].ratio_spread
        result.checks.append(
            Check(
                f"daemon at least as fast as jupyter_server ({label}), median",
                speed is not None and speed.median <= 1.0,
                f"daemon/jupyter_server time ratio {speed.median:.2f}" if speed else "n/a",
            )
        )
    result.checks.append(
        Check(
            "daemon delivered every update and persisted the room",
            all(o["messages"] == updates for o in ours),
            f"updates delivered per repeat: {[o['messages'] for o in ours]}",
        )
    )
    result.checks.append(
        Check(
            "through --gateway-url to the daemon, the front end ends at the kernel's value",
            all(t["final"] == updates and t["idle_seen"] for t in gateway_runs),
            f"last values seen {[t['final'] for t in gateway_runs]}",
        )
    )
    result.notes.append(
        "A jupyter_server run that loses updates never shows the final value; its time is then "
        f"the last message's arrival (the run ends {QUIET:g} s after the last message). "
        "Through --gateway-url the daemon merges the widget updates a lagging WebSocket has "
        "not taken yet (docs/gateway.md), so fewer messages can carry every update."
    )
    return [result]


def _final(run: dict) -> float:
    return run["final"] if run["final"] is not None else math.nan
