"""The harness every row shares: settings, rows and their verdicts, interleaved timing, medians,
guarded row groups, the machine report and the printed table.

A row is a ratio measured inside one run: ``ratio = median(A) / median(B)``, where A is our code and
B a baseline timed in the same process (or launched the same way) and interleaved with it, so that
machine speed and most background load cancel out. Nothing here imports the app, gradio or a browser.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
NOT_AVAILABLE = "not available"  # prefix of `Row.skipped` for a feature the code does not have yet


@dataclass(frozen=True)
class Settings:
    """How much to measure. ``quick`` checks the harness in seconds; numbers are then rough."""

    quick: bool
    repeats: int  # timed rounds per side (in-process rows)
    warmup: int
    requests: int  # round trips per side and input in P5
    cold_runs: int  # P6 launches per side
    throughput_requests: int  # requests per side in P7
    threads: tuple[int, ...]  # torch.set_num_threads values for P1-P3
    workdir: Path
    browser_repeats: int = 9  # interactions per side in the browser rows (P10-P13)
    page_loads: int = 5  # page loads per side in P12
    sessions: int = 300  # simulated UI sessions in P9


@dataclass
class Row:
    """One target: ``ratio = a / b`` (medians) must satisfy ``ratio <op> target``."""

    id: str
    title: str
    a: str  # what "A" (ours) is
    b: str  # what "B" (the baseline) is
    unit: str  # of a_median and b_median
    op: str  # "<=" or ">="
    target: float
    aim: float | None = None
    a_median: float | None = None
    b_median: float | None = None
    ratio: float | None = None
    ratio_cpu: float | None = None  # the same ratio on process CPU time (in-process rows only)
    n: int = 0
    threads: int | None = None  # torch.get_num_threads() while measuring, where it applies
    passed: bool | None = None
    skipped: str | None = None  # why there is no number ("not available: ..." or "error: ...")
    informational: bool = False  # a measurement that informs a setting: no pass/fail
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def finish(self, a: float, b: float, n: int, ratio_cpu: float | None = None) -> Row:
        self.a_median, self.b_median, self.n = a, b, n
        self.ratio = a / b if b > 0 else float("inf")
        self.ratio_cpu = ratio_cpu
        if not self.informational:
            self.passed = self.ratio <= self.target if self.op == "<=" else self.ratio >= self.target
        return self

    def skip(self, reason: str) -> Row:
        self.skipped = reason
        return self

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "n/a" if self.skipped.startswith(NOT_AVAILABLE) else "SKIP"
        if self.informational:
            return "info"
        return "pass" if self.passed else "FAIL"


def unavailable(rid: str, title: str, target: float, why: str, op: str = "<=", unit: str = "ms") -> Row:
    """A row whose feature is not in the code yet: listed with its target, no number, no failure."""
    return Row(rid, title, "", "", unit, op, target).skip(f"{NOT_AVAILABLE}: {why}")


# ------------------------------------------------------------------------------------------------
# Timing


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)  # seconds
    cpu: list[float] = field(default_factory=list)  # process CPU seconds (all threads)

    @property
    def wall_ms(self) -> float:
        return statistics.median(self.wall) * 1e3

    @property
    def cpu_ms(self) -> float:
        return statistics.median(self.cpu) * 1e3


def interleaved(fns: Sequence[Callable[[], object]], repeats: int, warmup: int) -> list[Samples]:
    """Time each function ``repeats`` times, rotating the order every round (ABC, BCA, CAB, ...)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    out = [Samples() for _ in fns]
    k = len(fns)
    for r in range(repeats):
        for j in range(k):
            i = (r + j) % k
            c0, t0 = time.process_time(), time.perf_counter()
            fns[i]()
            t1, c1 = time.perf_counter(), time.process_time()
            out[i].wall.append(t1 - t0)
            out[i].cpu.append(c1 - c0)
    return out


def interleaved_measured(fns: Sequence[Callable[[], float]], repeats: int, warmup: int) -> list[list[float]]:
    """Like `interleaved`, for functions that measure themselves and return milliseconds (a browser
    reports the time between an input event and the new picture, which the caller cannot see)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    out: list[list[float]] = [[] for _ in fns]
    k = len(fns)
    for r in range(repeats):
        for j in range(k):
            i = (r + j) % k
            out[i].append(fns[i]())
    return out


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def guarded(ids: list[str], fn: Callable[[], list[Row]]) -> list[Row]:
    """Run a group of rows; an error becomes a skipped row with the reason (and a traceback on stderr),
    so one broken part does not hide the others' numbers."""
    print(f"[benchmarks] running {', '.join(ids)} ...", file=sys.stderr, flush=True)
    try:
        return fn()
    except Exception as exc:
        traceback.print_exc()
        text = str(exc).strip()
        reason = f"error: {type(exc).__name__}: {text.splitlines()[0] if text else ''}"
        return [Row(rid, "not measured", "", "", "", "<=", 0.0, skipped=reason[:300]) for rid in ids]


# ------------------------------------------------------------------------------------------------
# Report


def loadavg() -> tuple[float, float, float] | None:
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def machine() -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            from importlib.metadata import version as v

            return v(name)
        except Exception:
            return None

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "loadavg_1_5_15": loadavg(),  # at the start of the run
        "torch_default_threads": torch.get_num_threads(),
        "versions": {
            k: version(k)
            for k in (
                "torch",
                "numpy",
                "pillow",
                "opencv-python-headless",
                "gradio",
                "gradio_client",
                "torchcam",
                "captum",
                "playwright",
            )
        },
    }


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if unit == "MB" else f"{v:.2f}" if unit in ("req/s", "x") else f"{v:.1f}"


def table(rows: list[Row]) -> str:
    head = f"{'row':<18} {'A':>9} {'B':>9} {'unit':<6} {'ratio':>6} {'cpu':>6} {'target':>9} {'':<5} title"
    lines = [head, "-" * len(head)]
    for r in rows:
        target = f"{r.op} {r.target:g}"
        if r.skipped:
            lines.append(
                f"{r.id:<18} {'':>9} {'':>9} {'':<6} {'':>6} {'':>6} {target:>9} {r.verdict:<5} {r.title}: {r.skipped}"
            )
            lines.extend(f"{'':<18} {note}" for note in r.notes)
            continue
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        cpu = f"{r.ratio_cpu:.2f}" if r.ratio_cpu is not None else ""
        lines.append(
            f"{r.id:<18} {fmt(r.a_median, r.unit):>9} {fmt(r.b_median, r.unit):>9} {r.unit:<6} {ratio:>6} "
            f"{cpu:>6} {target:>9} {r.verdict:<5} {r.title}"
        )
        lines.extend(f"{'':<18} {note}" for note in r.notes)
    return "\n".join(lines)
