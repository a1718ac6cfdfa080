"""Performance targets of the Pot Plant CAM Explorer as ratios measured inside one run.

    python -m benchmarks.run [--quick] [--json PATH] [--only P1,P10] [--threads 1,2] [--strict]

Every row times our code (A) against a baseline (B) in the same process or the same app process
and run, interleaved (A B, then B A, ...) after a warm-up, and compares median(A) / median(B) with
a target, so that the speed of the machine and most of its background load cancel out. See
benchmarks/README.md for what each row means. Wall-clock time decides pass/fail (it is what a
reader waits for); process CPU time is reported beside it for the in-process rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from benchmarks.fixtures import image_files
from benchmarks.harness import Row, Settings, guarded, loadavg, machine, table

# Row groups in the order they run; `--only` takes these names (a group may print several rows).
GROUPS: dict[str, str] = {
    "P1": "CAM+Grad-CAM vs a bare forward pass",
    "P2": "CAM+Grad-CAM vs torchcam (two forwards; one shared forward)",
    "P3": "Grad-CAM vs torchcam and captum",
    "P4": "12 MP JPEG to model input",
    "P14": "sanity check in forward passes",
    "P15": "hide-and-see in forward passes",
    "P5": "/explain round trip vs echo app",
    "P6": "cold start",
    "P7": "throughput, 8 clients vs 1",
    "P8": "peak RSS during P7",
    "P7T": "app torch threads 1 vs 2 (informational)",
    "P9": "memory: 300 UI sessions; worst single request",
    "P10": "browser: class, opacity, colour-map change vs echo",
    "P11": "browser: Explain on an example and a 12 MP upload vs echo",
    "P12": "browser: first load vs the echo app's page",
    "P13": "browser: Inside the CAM (channels view, top-k step, pixel click) vs echo",
}
ROW_IDS = tuple(GROUPS)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="few repeats: checks the harness, numbers are rough")
    p.add_argument("--json", type=Path, help="write the results here as JSON")
    p.add_argument("--only", default="", help=f"comma-separated row groups (default: all): {', '.join(ROW_IDS)}")
    p.add_argument("--threads", default="1,2", help="torch thread counts for P1-P3 (default 1,2)")
    p.add_argument(
        "--app-threads",
        type=int,
        default=None,
        help="OMP_NUM_THREADS for the app in P5-P8 (default: leave torch's own choice)",
    )
    p.add_argument("--strict", action="store_true", help="exit with status 1 when a target is missed")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds for P1-P4, P14, P15")
    p.add_argument("--browser-repeats", type=int, default=None, help="timed interactions per row in P10-P13")
    p.add_argument("--sessions", type=int, default=None, help="simulated UI sessions in P9 (default 300)")
    return p.parse_args(argv)


def settings(args: argparse.Namespace) -> Settings:
    quick = bool(args.quick)
    return Settings(
        quick=quick,
        repeats=args.repeats or (7 if quick else 31),
        warmup=2 if quick else 5,
        requests=5 if quick else 21,
        cold_runs=1 if quick else 3,
        throughput_requests=8 if quick else 24,
        threads=tuple(int(t) for t in args.threads.split(",") if t.strip()),
        workdir=Path(os.environ.get("CAM_BENCH_DIR", Path(tempfile.gettempdir()) / "cam-bench")),
        browser_repeats=args.browser_repeats or (3 if quick else 9),
        page_loads=2 if quick else 5,
        sessions=args.sessions or (4 if quick else 300),
    )


def run_groups(s: Settings, wanted: set[str], app_threads: int | None) -> list[Row]:
    """Each concern's module runs its own groups; imports are lazy so a subset starts fast."""
    files = image_files(s.workdir)
    plan: list[tuple[set[str], Callable[[], list[Row]]]] = []

    def explain_rows() -> list[Row]:
        from benchmarks.rows_explain import rows_explain

        return rows_explain(s, wanted)

    def load_rows() -> list[Row]:
        from benchmarks.rows_library import rows_load

        return rows_load(s, files)

    def feature_rows() -> list[Row]:
        from benchmarks.rows_library import rows_features

        return rows_features(s, wanted)

    def server_rows() -> list[Row]:
        from benchmarks.rows_server import rows_server

        return rows_server(s, wanted, files, app_threads)

    def memory_rows() -> list[Row]:
        from benchmarks.rows_memory import rows_memory

        return rows_memory(s, {"P9-sessions", "P9-request"}, files)

    def browser_rows() -> list[Row]:
        from benchmarks.rows_browser import rows_browser

        return rows_browser(s, wanted, files)

    plan = [
        ({"P1", "P2", "P3"}, explain_rows),
        ({"P4"}, load_rows),
        ({"P14", "P15"}, feature_rows),
        ({"P5", "P6", "P7", "P8", "P7T"}, server_rows),
        ({"P9"}, memory_rows),
        ({"P10", "P11", "P12", "P13"}, browser_rows),
    ]
    rows: list[Row] = []
    for ids, fn in plan:
        if wanted & ids:
            # The server rows guard each of their groups themselves (one app launch failing there
            # should not hide the others).
            rows += fn() if fn is server_rows else guarded(sorted(wanted & ids), fn)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wanted = {w.strip().upper() for w in args.only.split(",") if w.strip()} or set(ROW_IDS)
    unknown = wanted - set(ROW_IDS)
    if unknown:
        print(f"Unknown rows {sorted(unknown)}; choose from {', '.join(ROW_IDS)}.", file=sys.stderr)
        return 2
    s = settings(args)
    t0 = time.perf_counter()
    info = machine()
    info["loadavg_start"] = info["loadavg_1_5_15"]
    print(
        f"load average at start (1, 5, 15 min): {info['loadavg_start']}; {info['cpu_count']} CPUs; "
        f"{'quick' if s.quick else 'full'} run of {', '.join(g for g in ROW_IDS if g in wanted)}",
        flush=True,
    )
    rows = run_groups(s, wanted, args.app_threads)
    info["loadavg_after"] = loadavg()
    info["elapsed_s"] = round(time.perf_counter() - t0, 1)
    print(
        f"torch threads tried: {s.threads}; load average at start / end: {info['loadavg_start']} / "
        f"{info['loadavg_after']}; {info['elapsed_s']} s"
    )
    print(table(rows))
    if args.json:
        payload = {
            "machine": info,
            "settings": {**asdict(s), "workdir": str(s.workdir)},
            "rows": [asdict(r) for r in rows],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    failed = [r.id for r in rows if r.passed is False]
    if failed:
        print(f"Targets missed: {', '.join(failed)}")
    return 1 if (failed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
