"""Many clients of one room in one process, for case 4 (fan-out).

Each client is the real `runtimed.client.Client` with an `Observer`: it records when
every value of one comm reached it, by broadcast and by doc. Prints `{"ready": true}`
once every client has joined, then one JSON line with each client's arrivals once
every client has the final value (or the deadline passed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from pathlib import Path

from runtimed.client import Client

from .observe import Observer


async def serve(args: argparse.Namespace) -> dict:
    async with contextlib.AsyncExitStack() as stack:
        observers = []
        for index in range(args.clients):
            client = Client(
                args.notebook,
                socket_path=Path(args.socket),
                timeout=60,
                name=f"bench-fanout-{index}",
            )
            await stack.enter_async_context(client)
            observer = Observer(client).start()
            stack.push_async_callback(observer.stop)
            observer.watch(args.comm_id)
            observers.append(observer)
        print(json.dumps({"ready": True}), flush=True)

        async def converge(observer: Observer) -> bool:
            watch = observer.watches[args.comm_id]
            try:
                await observer.until(
                    lambda: watch.doc_value == args.until and args.until in watch.broadcast_at,
                    args.timeout,
                    "convergence",
                )
            except TimeoutError:
                return False
            return True

        converged = await asyncio.gather(*(converge(o) for o in observers))
        return {
            "clients": [
                {
                    "converged": ok,
                    "broadcasts": sorted(o.watches[args.comm_id].broadcast_at.items()),
                    "doc": sorted(o.watches[args.comm_id].doc_at.items()),
                }
                for ok, o in zip(converged, observers, strict=True)
            ]
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--notebook", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--comm-id", required=True)
    parser.add_argument("--until", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(serve(args))), flush=True)


if __name__ == "__main__":
    main()
