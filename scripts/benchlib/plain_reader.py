"""The baseline: a plain jupyter_client IOPub reader (RCVHWM 0), in its own process.

`burst`: create a slider, run a burst of updates, and time until the final value
arrives (what a single well-configured jupyter_client program achieves).
`listen`: record, for each value of one comm, the kernel's send time (header date)
and this reader's receive time, until a given value arrives.
Results are one JSON line on stdout; a first `{"ready": true}` line says the IOPub
subscription is live.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import zmq
from jupyter_client import BlockingKernelClient

from .kernel_code import BURST, NEW_SLIDER

SUBSCRIBE_TRIES = 20


def _emit(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


def connect(connection_file: str) -> BlockingKernelClient:
    """A client whose IOPub never drops, subscribed before it returns."""
    client = BlockingKernelClient(connection_file=connection_file)
    client.load_connection_file()
    client.context.setsockopt(zmq.RCVHWM, 0)
    client.start_channels()
    client.wait_for_ready(timeout=60)
    # A SUB socket misses what is published before its subscription lands: wait until
    # IOPub carries the status of one of our own requests.
    for _ in range(SUBSCRIBE_TRIES):
        msg_id = client.kernel_info()
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            try:
                msg = client.get_iopub_msg(timeout=0.2)
            except Exception:
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return client
    raise RuntimeError("IOPub subscription never became live")


def run_to_idle(client: BlockingKernelClient, code: str) -> str:
    """Execute `code`, return its stdout; raise on an error."""
    msg_id = client.execute(code)
    text: list[str] = []
    while True:
        msg = client.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            text.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            raise RuntimeError("\n".join(msg["content"]["traceback"]))
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(text)


def _update_value(msg: dict[str, Any], comm_id: str, key: str) -> Any:
    if msg["msg_type"] != "comm_msg" or msg["content"].get("comm_id") != comm_id:
        return None
    data = msg["content"].get("data", {})
    if data.get("method") not in ("update", "echo_update"):
        return None
    return data.get("state", {}).get(key)


def burst(connection_file: str, updates: int) -> dict[str, Any]:
    client = connect(connection_file)
    comm_id = run_to_idle(client, NEW_SLIDER.format(name="_plain_slider")).strip()
    _emit({"ready": True, "comm_id": comm_id})
    start = time.perf_counter()
    msg_id = client.execute(BURST.format(n=updates, name="_plain_slider"))
    messages, last, final_at = 0, None, None
    while True:
        msg = client.get_iopub_msg(timeout=120)
        value = _update_value(msg, comm_id, "value")
        if value is not None:
            messages += 1
            last = value
            if value == updates:
                final_at = time.perf_counter() - start
        if (
            msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
            and msg["parent_header"].get("msg_id") == msg_id
        ):
            break
    return {
        "seconds": final_at,
        "idle_seconds": time.perf_counter() - start,
        "messages": messages,
        "final": last,
    }


def listen(connection_file: str, comm_id: str, key: str, until: Any) -> dict[str, Any]:
    client = connect(connection_file)
    _emit({"ready": True})
    cpu = time.process_time()  # this reader's CPU for the stream: a baseline too
    samples: list[tuple[Any, float, float]] = []
    while True:
        msg = client.get_iopub_msg(timeout=300)
        received = time.time()
        value = _update_value(msg, comm_id, key)
        if value is None:
            continue
        samples.append((value, msg["header"]["date"].timestamp(), received))
        if value == until:
            return {
                "samples": samples,
                "messages": len(samples),
                "cpu_seconds": time.process_time() - cpu,
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    b = sub.add_parser("burst")
    b.add_argument("--connection-file", required=True)
    b.add_argument("--updates", type=int, required=True)
    listen_p = sub.add_parser("listen")
    listen_p.add_argument("--connection-file", required=True)
    listen_p.add_argument("--comm-id", required=True)
    listen_p.add_argument("--key", default="value")
    listen_p.add_argument("--until", type=int, required=True)
    args = parser.parse_args()
    if args.mode == "burst":
        _emit(burst(args.connection_file, args.updates))
    else:
        _emit(listen(args.connection_file, args.comm_id, args.key, args.until))


if __name__ == "__main__":
    main()
