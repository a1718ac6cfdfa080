"""P9: the app's memory under many readers and under the worst single request (issue 10).

P9-sessions: ``python app.py`` on its own, then ``Settings.sessions`` simulated UI sessions
(`benchmarks.uisession`, four at a time), each a different reader on a different address (the app
is started with ``SYSTEM=spaces`` and every session sends its own X-Forwarded-For, as behind the
Spaces proxy, so the per-client share does not hide the global budget) who opens the page (the
default example is explained on arrival), uploads a photo of their own (1600x1200 JPEG, distinct
bytes), and then, at every layer, opens every tab -- the events the page sends for each. A = the
app's RSS once the last session is done and the app's memory trimmer has run (3 s later; the RSS at
once and the peak are in the notes), B = the 1.2 GB budget.

P9-request: a second, fresh app; for each heavy or hostile request (a 16-bit grey 7000x7000 PNG, a
palette+tRNS 7000x7000 PNG, a 7000x7000 progressive JPEG with hundreds of scans, an ordinary 12 MP
JPEG, Score-CAM at conv3, faithfulness with all maps), VmHWM is reset and the growth of the peak
over the RSS just before is recorded. A = the worst growth, B = the 300 MB budget.
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.fixtures import hostile_files, photo_like, variant
from benchmarks.harness import Row, Settings, unavailable
from benchmarks.rows_server import PeakSampler
from benchmarks.server import APP, Server, app_env, app_skip_reason
from benchmarks.uisession import PageEvents, UISession
from explorer.memory import TRIM_EVERY_S

SESSIONS_BUDGET_MB, REQUEST_BUDGET_MB = 1200.0, 300.0
WORKERS = 4  # sessions at once: readers overlap, as on a Space; the app's queue does the rest
TITLES = {
    "P9-sessions": "RSS after simulated UI sessions (every tab at every layer)",
    "P9-request": "worst single request's RSS growth (hostile images, Score-CAM, faithfulness)",
}


def session_photo(workdir: Path, k: int) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    base = workdir / "photo_1600x1200.jpg"
    if not base.exists():
        Image.fromarray(photo_like(1600, 1200, seed=5)).save(base, quality=90)
    folder = workdir / "sessions"
    folder.mkdir(exist_ok=True)
    return variant(base, folder / f"session{k}.jpg", k)


def reader(page: PageEvents, photo: Path, client: str, layers: list[Any]) -> UISession:
    """One reader: arrive, upload a photo, then every tab at every layer."""
    s = UISession(page, client=client)
    s.load()
    s.upload_photo("input-image", photo)
    for layer in layers:
        s.set("layer", layer)
        s.fire_elem("layer", "input")
        for tab in page.tabs:
            s.open_tab(tab)
    return s


def rows_memory(s: Settings, wanted_rows: set[str], files: dict[str, Path]) -> list[Row]:
    skip = app_skip_reason()
    if skip is not None:
        return [
            unavailable(rid, TITLES[rid], 1.0, skip, unit="MB")
            for rid in ("P9-sessions", "P9-request")
            if rid in wanted_rows
        ]
    env, model_note = app_env(None)
    env["SYSTEM"] = "spaces"  # trust X-Forwarded-For: each simulated reader is its own client
    rows = []
    if "P9-request" in wanted_rows:
        rows.append(row_request(s, env, files))
    if "P9-sessions" in wanted_rows:
        rows.append(row_sessions(s, env))
    for row in rows:
        row.notes.append(model_note + "; SYSTEM=spaces so X-Forwarded-For names the reader")
    return rows


def row_sessions(s: Settings, env: dict[str, str]) -> Row:
    n = s.sessions
    photos = [session_photo(s.workdir, k) for k in range(n)]
    with Server(APP, s.workdir, env) as app:
        app.wait_ready()
        page = PageEvents(app.url)
        layers = page.choices(page.elem("layer"))
        reader(page, session_photo(s.workdir, 10_000), "10.255.255.1", layers)  # warm-up: first calls
        start_mb = app.rss_mb()
        trajectory: list[tuple[int, float]] = []
        done = [0]
        lock = threading.Lock()
        errors: list[str] = []
        calls = [0]

        def one(k: int) -> None:
            sess = reader(page, photos[k], f"10.{k // 250}.{k % 250}.7", layers)
            with lock:
                done[0] += 1
                calls[0] += sess.calls
                errors.extend(sess.errors)
                if done[0] % max(1, n // 10) == 0 or done[0] == n:
                    trajectory.append((done[0], app.rss_mb()))
                    print(
                        f"[benchmarks] P9: {done[0]}/{n} sessions, RSS {trajectory[-1][1]:.0f} MB, "
                        f"{time.perf_counter() - t0:.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )

        t0 = time.perf_counter()
        with PeakSampler(app) as sampler, ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(one, range(n)))
        elapsed = time.perf_counter() - t0
        at_once_mb = app.rss_mb()
        time.sleep(TRIM_EVERY_S + 1)  # the app hands freed memory back every 2 s: read what it holds
        end_mb = app.rss_mb()
        peak = max(sampler.peak, at_once_mb)
    row = Row(
        "P9-sessions",
        f"RSS after {n} simulated UI sessions (every tab at every layer)",
        f"app RSS after {n} readers ({WORKERS} at once): arrive, upload, {len(layers)} layers x {len(page.tabs)} tabs",
        "the 1.2 GB budget",
        "MB",
        "<=",
        1.0,
    ).finish(end_mb, SESSIONS_BUDGET_MB, n)
    row.notes.append(
        f"RSS {start_mb:.0f} MB after warm-up -> {end_mb:.0f} MB {TRIM_EVERY_S + 1:.0f} s after {n} sessions "
        f"({at_once_mb:.0f} MB at once, peak {peak:.0f} MB); "
        f"{calls[0]} event calls in {elapsed:.0f} s; {len(errors)} refused"
    )
    if len(errors) > 0.01 * max(1, calls[0]):
        # A memory number from an app that refused the work would flatter it: no verdict.
        row.skip(
            f"error: {len(errors)} of {calls[0]} events were refused, so the sessions did not do their work "
            f"(RSS {start_mb:.0f} -> {end_mb:.0f} MB all the same); first: {errors[0][:160]}"
        )
    row.extra = {
        "rss_start_mb": start_mb,
        "rss_end_mb": end_mb,
        "rss_at_once_mb": at_once_mb,
        "peak_mb": peak,
        "trajectory_sessions_mb": trajectory,
        "event_calls": calls[0],
        "elapsed_s": elapsed,
        "errors": errors[:10],
    }
    return row


def row_request(s: Settings, env: dict[str, str], files: dict[str, Path]) -> Row:
    hostile = hostile_files(s.workdir / "hostile")
    with Server(APP, s.workdir, env) as app:
        app.wait_ready()
        page = PageEvents(app.url)
        layers = page.choices(page.elem("layer"))
        reader(page, session_photo(s.workdir, 20_000), "10.254.0.1", layers[-1:])  # warm-up
        faith = page.elem("faith-methods")

        def upload(path: Path) -> Any:
            return lambda sess: sess.upload_photo("input-image", path)

        def scorecam(sess: UISession) -> bool:
            sess.set("layer", "conv3")
            return sess.fire_elem("compute-scorecam", "click")

        def faithfulness(sess: UISession) -> bool:
            sess.values[faith] = page.choices(faith)
            return sess.fire_elem("compute-faith", "click")

        cases: list[tuple[str, Any]] = [(name, upload(path)) for name, path in hostile.items()]
        cases += [
            ("12 MP JPEG upload", upload(files["jpeg12mp"])),
            ("Score-CAM at conv3", scorecam),
            ("faithfulness, all maps", faithfulness),
        ]
        results = []
        failed: list[str] = []
        for k, (name, act) in enumerate(cases):
            sess = UISession(page, client=f"10.253.{k}.1")
            sess.load()
            before = app.rss_mb()
            reset = app.reset_peak()
            t0 = time.perf_counter()
            with PeakSampler(app) as sampler:
                ok = act(sess)
            seconds = time.perf_counter() - t0
            peak = max(app.peak_rss_mb() if reset else 0.0, sampler.peak)
            refused = "" if ok else f" (refused: {sess.errors[-1][:100] if sess.errors else '?'})"
            results.append({"case": name, "growth_mb": peak - before, "seconds": seconds, "ok": ok, "note": refused})
            if not ok and name not in hostile:  # an ordinary request must be served, not refused
                failed.append(f"{name}{refused}")
    worst = max(results, key=lambda r: float(r["growth_mb"]))
    row = Row(
        "P9-request",
        TITLES["P9-request"],
        f"largest peak-RSS growth over {len(results)} requests (VmHWM reset before each)",
        "the 300 MB budget",
        "MB",
        "<=",
        1.0,
    ).finish(float(worst["growth_mb"]), REQUEST_BUDGET_MB, len(results))
    row.notes += [f"{r['case']}: +{r['growth_mb']:.0f} MB in {r['seconds']:.1f} s{r['note']}" for r in results]
    if failed:
        row.skip(f"error: ordinary requests were refused, so their memory was not measured: {'; '.join(failed)}"[:400])
    row.extra = {
        "cases": results,
        "worst": worst["case"],
        "median_growth_mb": float(np.median([r["growth_mb"] for r in results])),
    }
    return row
