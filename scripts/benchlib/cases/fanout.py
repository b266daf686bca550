"""Case 4: 50 clients on one room while the kernel sends 1,000 updates/s for 10 s."""

from __future__ import annotations

import asyncio
import os

from ..context import BenchContext
from ..kernel_code import PACED
from ..procs import Helper
from ..result import CaseResult, Check, Row
from ..rig import listener_result, rig, start_listener
from ..stats import percentile
from .latency import BASELINE

KEY = "fanout"
TITLE = "4. Fan-out: 50 clients, 1,000 updates/s for 10 s"
WORKERS = 2  # client processes: on 2 cores more would only fight the daemon for CPU


async def start_workers(
    socket: str, notebook: str, clients: int, comm_id: str, until: int
) -> list[Helper]:
    workers = []
    for index in range(WORKERS):
        share = clients // WORKERS + (1 if index < clients % WORKERS else 0)
        workers.append(
            await Helper.start(
                "-m",
                "benchlib.fanout_worker",
                "--socket",
                socket,
                "--notebook",
                notebook,
                "--clients",
                str(share),
                "--comm-id",
                comm_id,
                "--until",
                str(until),
            )
        )
    for worker in workers:
        await worker.line(120)
    return workers


async def run(ctx: BenchContext) -> list[CaseResult]:
    clients = ctx.pick(50, 20)
    rate = 1000
    seconds = ctx.pick(10, 3)
    updates = rate * seconds
    result = CaseResult(
        KEY,
        TITLE,
        params={
            "clients": clients,
            "updates_per_s": rate,
            "seconds": seconds,
            "client_processes": WORKERS,
        },
    )
    async with rig(ctx, KEY) as r:
        watch = await r.new_slider("_fan")
        actor_watch = r.actor.watch(watch.comm_id)
        notebook = r.actor.client.notebook_id
        assert notebook is not None
        # The actor and the watcher are two of the clients.
        workers = await start_workers(
            str(r.daemon.socket_path), notebook, clients - 2, watch.comm_id, updates
        )
        listener = await start_listener(r.kernel, watch.comm_id, updates)
        ctx.progress(KEY, f"{clients} clients joined; sending {updates} updates")
        cpu_before = r.daemon.cpu_seconds()
        await r.actor.run_cell(PACED.format(n=updates, gap=1 / rate, name="_fan"))
        outcomes = await asyncio.gather(*(w.line(300) for w in workers))
        cpu = r.daemon.cpu_seconds() - cpu_before
        for observer, w in ((r.watcher, watch), (r.actor, actor_watch)):
            await observer.until(lambda w=w: w.doc_value == updates, 60, "converged")
        heard = await listener_result(listener)
        for worker in workers:
            await worker.stop()
    samples = heard["samples"]  # (value, kernel send time, reader receive time)
    sent = {value: sent_at for value, sent_at, _ in samples}
    baseline = [(received - sent_at) * 1000 for _, sent_at, received in samples]
    everyone = [c for o in outcomes for c in o["clients"]]
    converged = sum(c["converged"] for c in everyone) + 2  # + the actor and the watcher
    broadcast = [(at - sent[v]) * 1000 for c in everyone for v, at in c["broadcasts"] if v in sent]
    broadcast += watch.broadcast_latencies_ms(sent)
    delivered = [len(c["broadcasts"]) for c in everyone]
    result.rows = [
        Row(
            f"{name} delivery latency, comm broadcast, all clients",
            "ms",
            [percentile(broadcast, q)],
            BASELINE,
            [percentile(baseline, q)],
        )
        for name, q in (("p50", 50), ("p99", 99), ("max", 100))
    ]
    per_update = cpu / updates * 1e6
    per_frame = per_update / clients
    result.rows += [
        Row(
            "daemon CPU per update (all fan-out included)",
            "µs",
            [per_update],
            BASELINE,
            [heard["cpu_seconds"] / updates * 1e6],
        ),
        Row("daemon CPU per delivered frame", "µs", [per_frame]),
    ]
    result.samples = {"baseline (plain reader)": baseline, "broadcast, all clients": broadcast}
    p99 = percentile(broadcast, 99)
    result.checks = [
        Check(
            "daemon CPU per delivered frame <= 3 µs",
            per_frame <= 3,
            f"{per_frame:.2f} µs ({per_update:.0f} µs per update, {clients} clients)",
        ),
        Check("all clients converge", converged == clients, f"{converged}/{clients} converged"),
        Check("p99 delivery <= 50 ms", p99 <= 50, f"p99 {p99:.1f} ms"),
        Check(
            "every client got every update",
            min(delivered) == updates,
            f"fewest updates received by a worker client: {min(delivered)} of {updates}",
        ),
    ]
    result.notes.append(
        f"Clients run in {WORKERS} processes beside the daemon and the kernel, on the same "
        f"{os.cpu_count()} cores: every delivered frame is also decoded by a Python client, so the "
        "clients' CPU is part of what is measured."
    )
    return [result]
