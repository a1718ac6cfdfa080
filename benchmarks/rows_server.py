"""P5-P8 and P7T: the Gradio app launched as ``python app.py``, driven through gradio_client.

P5 divides app.py's ``/explain`` round trip by the same call to `benchmarks/echo_app.py` (same
inputs and output kinds, no work), P6 the cold start by ``import gradio, torch``, P7 concurrent by
sequential throughput; P8 is the peak resident memory during P7 against an 800 MB budget.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.fixtures import client_files
from benchmarks.harness import ROOT, Row, Settings, guarded, interleaved, unavailable
from benchmarks.server import APP, ECHO_APP, Server, app_env, app_skip_reason, client, explain_call, server_env

GROUPS = ("P5", "P6", "P7", "P8", "P7T")
TITLES = {
    "P5": ("/explain round trip vs echo", "<=", 2.5),
    "P6": ("cold start vs import gradio, torch", "<=", 1.6),
    "P7": ("throughput, 8 clients vs 1", ">=", 1.0),
    "P8": ("peak RSS during P7", "<=", 1.0),
    "P7T": ("app torch threads 1 vs 2 under load", ">=", 1.0),
}


def rows_server(s: Settings, wanted: set[str], files: dict[str, Path], app_threads: int | None) -> list[Row]:
    skip = app_skip_reason()
    if skip is not None:
        return [
            unavailable(rid, TITLES[rid][0], TITLES[rid][2], skip, op=TITLES[rid][1]) for rid in GROUPS if rid in wanted
        ]
    env, model_note = app_env(app_threads)
    thread_note = (
        f"app torch threads: OMP_NUM_THREADS={app_threads}"
        if app_threads
        else "app torch threads: default (torch picks the core count)"
    )
    rows: list[Row] = []
    if "P5" in wanted:
        rows += guarded(["P5"], lambda: row_p5(s, files, env, model_note, thread_note))
    if "P6" in wanted:
        rows += guarded(["P6"], lambda: [row_p6(s, files, env, model_note)])
    if wanted & {"P7", "P8"}:
        ids = sorted(wanted & {"P7", "P8"})
        rows += guarded(ids, lambda: rows_p7_p8(s, files, env, wanted, model_note, thread_note))
    if "P7T" in wanted:
        rows += guarded(["P7T"], lambda: [row_p7_threads(s, files, env, model_note)])
    return rows


def row_p5(s: Settings, files: dict[str, Path], env: dict[str, str], model_note: str, thread_note: str) -> list[Row]:
    rows = []
    with Server(APP, s.workdir, env) as app, Server(ECHO_APP, s.workdir) as echo:
        app.wait_ready()
        echo.wait_ready()
        ca, ce = client(app.url), client(echo.url)
        for key, label in (("png256", "256x256 PNG"), ("jpeg12mp", "12 MP JPEG")):
            path = files[key]
            res = interleaved(
                [functools.partial(explain_call, ca, path), functools.partial(explain_call, ce, path)],
                s.requests,
                max(1, s.warmup // 2),
            )
            row = Row(
                f"P5-{key}",
                f"/explain round trip, {label} (p50)",
                "app.py /explain via gradio_client (cam, predicted, conv3)",
                "echo_app.py /explain (same inputs/outputs, no work)",
                "ms",
                "<=",
                2.5,
            ).finish(res[0].wall_ms, res[1].wall_ms, s.requests)
            row.notes += [model_note, thread_note]
            row.extra = {
                "a_p90_ms": float(np.percentile(res[0].wall, 90) * 1e3),
                "b_p90_ms": float(np.percentile(res[1].wall, 90) * 1e3),
            }
            rows.append(row)
    return rows


def row_p6(s: Settings, files: dict[str, Path], env: dict[str, str], model_note: str) -> Row:
    def cold_app() -> object:
        with Server(APP, s.workdir, env) as app:
            app.wait_ready()
            explain_call(client(app.url), files["png256"])
        return None

    def imports() -> object:
        subprocess.run(
            [sys.executable, "-c", "import gradio, torch"], cwd=ROOT, check=True, env=server_env(0, s.workdir)
        )
        return None

    # No warm-up beyond one import (fills the OS file cache for both sides): a cold start is the point.
    a, b = interleaved([cold_app, imports], s.cold_runs, 0 if s.quick else 1)
    row = Row(
        "P6",
        "cold start until the first /explain answer",
        "python app.py (offline) -> first /explain answer via gradio_client",
        "python -c 'import gradio, torch'",
        "ms",
        "<=",
        1.6,
    ).finish(a.wall_ms, b.wall_ms, s.cold_runs)
    row.notes.append(model_note)
    return row


def concurrent_load(clients: Sequence[Any], order: Sequence[Path]) -> None:
    """Client k sends requests order[k], order[k + m], ... (m = len(clients)), all clients at once."""
    errors: list[BaseException] = []
    m = len(clients)

    def work(k: int) -> None:
        try:
            for p in order[k::m]:
                explain_call(clients[k], p)
        except BaseException as exc:
            errors.append(exc)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(m)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


def throughput_order(s: Settings, files: dict[str, Path]) -> list[Path]:
    per_client = client_files(s.workdir, files, 8)
    # Request i: client i % 8's own photo, PNG and JPEG alternating per round of eight.
    return [per_client[i % 8]["png256" if (i // 8) % 2 == 0 else "jpeg12mp"] for i in range(s.throughput_requests)]


def row_p7_threads(s: Settings, files: dict[str, Path], env: dict[str, str], model_note: str) -> Row:
    """The app's torch intra-op threads under P7's load: two apps side by side (OMP_NUM_THREADS=1 and
    =2), idle while the other serves, loaded in alternation so machine noise hits both alike."""
    order = throughput_order(s, files)
    n = len(order)
    env1 = {k: v for k, v in env.items() if k != "OMP_NUM_THREADS"}
    with (
        Server(APP, s.workdir, {**env1, "OMP_NUM_THREADS": "1"}) as one,
        Server(APP, s.workdir, {**env1, "OMP_NUM_THREADS": "2"}) as two,
    ):
        one.wait_ready()
        two.wait_ready()
        c1, c2 = [client(one.url) for _ in range(8)], [client(two.url) for _ in range(8)]
        for c in (c1[0], c2[0]):
            explain_call(c, files["png256"])
            explain_call(c, files["jpeg12mp"])
        rounds = 1 if s.quick else 3
        a, b = interleaved(
            [functools.partial(concurrent_load, c1, order), functools.partial(concurrent_load, c2, order)], rounds, 0
        )
    row = Row(
        "P7T",
        "app torch threads under 8 concurrent clients: 1 vs 2",
        "throughput with OMP_NUM_THREADS=1",
        "throughput with OMP_NUM_THREADS=2",
        "req/s",
        ">=",
        1.0,
        informational=True,
    ).finish(n / a.wall_ms * 1e3, n / b.wall_ms * 1e3, rounds)
    row.notes.append(f"{model_note}; ratio > 1 means 1 thread per request serves more requests per second")
    return row


class PeakSampler:
    """Samples a server's RSS every 20 ms in a thread (VmHWM alone misses nothing, but cannot be
    reset on every kernel; the samples are the fallback)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                self.peak = max(self.peak, self.server.rss_mb())
            self._stop.wait(0.02)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def rows_p7_p8(
    s: Settings, files: dict[str, Path], env: dict[str, str], wanted: set[str], model_note: str, thread_note: str
) -> list[Row]:
    order = throughput_order(s, files)
    n = len(order)
    rows: list[Row] = []
    with Server(APP, s.workdir, env) as app:
        app.wait_ready()
        clients = [client(app.url) for _ in range(8)]
        for c in clients[:2]:  # warm-up: first calls on both image kinds
            explain_call(c, files["png256"])
            explain_call(c, files["jpeg12mp"])
        idle_mb = app.rss_mb()
        reset = app.reset_peak()

        def sequential() -> object:
            for p in order:
                explain_call(clients[0], p)
            return None

        def concurrent() -> object:
            concurrent_load(clients, order)
            return None

        rounds = 1 if s.quick else 2
        with PeakSampler(app) as sampler:
            seq, conc = interleaved([sequential, concurrent], rounds, 0)
        peak = max(app.peak_rss_mb() if reset else 0.0, sampler.peak)
    if "P7" in wanted:
        # Throughput ratio = (n / t_concurrent) / (n / t_sequential) = t_sequential / t_concurrent.
        row = Row(
            "P7",
            "throughput, 8 concurrent clients vs 1 client in sequence",
            f"8 clients at once, {n} requests ({n // 8} each; PNG 256 and 12 MP JPEG)",
            f"1 client, the same {n} requests in sequence",
            "req/s",
            ">=",
            1.0,
            aim=1.3,
        ).finish(n / conc.wall_ms * 1e3, n / seq.wall_ms * 1e3, rounds)
        row.notes += [model_note, thread_note]
        rows.append(row)
    if "P8" in wanted:
        row = Row(
            "P8",
            "peak resident memory of the app during P7",
            "app.py peak RSS (VmHWM and 20 ms samples)",
            "the 800 MB budget",
            "MB",
            "<=",
            1.0,
        ).finish(peak, 800.0, rounds)
        row.notes.append(
            f"peak {peak:.0f} MB; RSS before P7 {idle_mb:.0f} MB"
            + ("" if reset else "; VmHWM could not be reset, sampled RSS only")
        )
        row.extra = {"peak_mb": peak, "rss_before_mb": idle_mb, "vmhwm_reset": reset}
        rows.append(row)
    return rows
