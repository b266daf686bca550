"""One module per case of issue 7; each exposes `KEY`, `TITLE` and `async run(ctx)`."""

from types import ModuleType

from . import (
    big_state,
    burst,
    compaction_stall,
    fanout,
    jupyter_ws,
    late_join,
    latency,
    page_open,
    reconcile,
    remote_gateway,
    stream,
)

CASES: dict[str, ModuleType] = {
    case.KEY: case
    for case in (
        burst,
        latency,
        late_join,
        fanout,
        jupyter_ws,
        big_state,
        reconcile,
        stream,
        compaction_stall,
        page_open,
        remote_gateway,
    )
}
