"""The pieces of `scripts/bench.py`: processes to measure, observers, cases and the report.

Every case runs the daemon, the kernel and the baseline reader as separate processes,
so a figure is never the bench's own event loop competing with the thing it measures.
"""
