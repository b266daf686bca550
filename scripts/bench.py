"""`make bench`: runtimed against real ipykernel + ipywidgets, every figure beside a baseline.

    python scripts/bench.py            # the full run, a few minutes
    python scripts/bench.py --quick    # about a minute, smaller sizes and fewer repeats
    python scripts/bench.py --only burst,latency
    python scripts/bench.py --only stream --update   # re-run one case, keep the others

Prints a progress line per case and a table, and writes bench/results.json,
bench/results.md, bench/latency.png and, for the cases that sample figures along their
run (the stream), bench/<case>.png.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import report
from benchlib.cases import CASES
from benchlib.context import BenchContext
from benchlib.procs import install_kernelspec
from benchlib.result import CaseResult, Check

OUT_DIR = Path(__file__).resolve().parent.parent / "bench"


async def run_cases(ctx: BenchContext, keys: list[str]) -> list[CaseResult]:
    results = []
    for key in keys:
        case = CASES[key]
        ctx.progress(key, f"start: {case.TITLE}")
        started = time.monotonic()
        try:
            case_results = await case.run(ctx)
        except Exception as exc:  # one broken case is reported, the others still run
            traceback.print_exc()
            failed = CaseResult(key, case.TITLE)
            failed.checks.append(Check("case ran", False, f"{type(exc).__name__}: {exc}"))
            case_results = [failed]
        seconds = time.monotonic() - started
        measured = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        for result in case_results:
            result.seconds = seconds
            result.measured = measured
        ctx.progress(key, f"done in {seconds:.1f} s")
        results.extend(case_results)
    return results


def kept_with(results: list[CaseResult], path: Path, *, quick: bool) -> list[CaseResult]:
    """The cases of `path` in their order, those just run replacing theirs."""
    if not path.exists():
        return results
    previous = json.loads(path.read_text())
    if previous["quick"] != quick:
        sys.exit(f"--update: {path} is a {'quick' if previous['quick'] else 'full'} run")
    fresh = {result.key: result for result in results}
    merged = [fresh.pop(c["key"], None) or CaseResult.from_dict(c) for c in previous["cases"]]
    return merged + list(fresh.values())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a one-minute pass")
    parser.add_argument("--only", default="", help=f"comma-separated cases: {','.join(CASES)}")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where results go")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (daemon logs)")
    parser.add_argument("--profile", type=Path, help="run each daemon under cProfile; stats here")
    parser.add_argument(
        "--update",
        action="store_true",
        help="keep the other cases of --out's results.json (each case says when it ran)",
    )
    args = parser.parse_args()
    keys = [k.strip() for k in args.only.split(",") if k.strip()] or list(CASES)
    unknown = [k for k in keys if k not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
    workdir = Path(tempfile.mkdtemp(prefix="runtimed-bench-"))
    install_kernelspec(workdir / "jupyter")
    ctx = BenchContext(quick=args.quick, workdir=workdir, profile_dir=args.profile)
    try:
        results = asyncio.run(run_cases(ctx, keys))
    finally:
        if args.keep:
            print(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(report.table(results))
    if args.update:
        results = kept_with(results, args.out / "results.json", quick=args.quick)
    report.write_all(results, args.out, quick=args.quick)
    print(f"wrote {args.out}/results.json, results.md and the plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
