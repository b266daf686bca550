"""One module per case of issue 7; each exposes `KEY`, `TITLE` and `async run(ctx)`."""

from types import ModuleType

from . import big_state, burst, fanout, jupyter_ws, late_join, latency, reconcile

CASES: dict[str, ModuleType] = {
    case.KEY: case for case in (burst, latency, late_join, fanout, jupyter_ws, big_state, reconcile)
}
