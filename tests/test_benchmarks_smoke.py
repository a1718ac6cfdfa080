"""The benchmark harness runs and writes a well-formed report. No timing is asserted here: timings
belong to ``python -m benchmarks.run`` itself, whose ratios are compared with targets there."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_harness(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CAM_BENCH_DIR=str(tmp_path / "work"))
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_quick_run_writes_json_with_the_requested_rows(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = run_harness(tmp_path, "--quick", "--only", "P1,P4", "--threads", "1", "--repeats", "3", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["machine"]["versions"]["torch"]
    assert report["settings"]["threads"] == [1]
    rows = {r["id"]: r for r in report["rows"]}
    assert set(rows) == {"P1.t1", "P4"}
    for row in rows.values():
        assert row["skipped"] is None
        assert row["a_median"] > 0 and row["b_median"] > 0
        assert math.isclose(row["ratio"], row["a_median"] / row["b_median"], rel_tol=1e-9)
        assert row["passed"] == (row["ratio"] <= row["target"])
        assert row["n"] == 3
    assert rows["P1.t1"]["threads"] == 1
    assert rows["P1.t1"]["target"] == 1.3 and rows["P4"]["target"] == 0.45
    # The table on stdout names every row.
    assert "P1.t1" in proc.stdout and "P4" in proc.stdout


def test_unknown_row_is_refused_with_the_valid_choices(tmp_path: Path) -> None:
    proc = run_harness(tmp_path, "--quick", "--only", "P9")
    assert proc.returncode == 2
    assert "Unknown rows ['P9']" in proc.stderr and "P1, P2, P3" in proc.stderr


def test_app_rows_are_skipped_with_a_reason_when_app_py_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import run

    monkeypatch.setattr(run, "APP", tmp_path / "no_app.py")
    settings = run.Settings(
        quick=True, repeats=1, warmup=0, requests=1, cold_runs=1, throughput_requests=8, threads=(1,), workdir=tmp_path
    )
    rows = run.rows_app(settings, {"P5", "P6", "P7", "P8"}, {}, None)
    assert [r.id for r in rows] == ["P5", "P6", "P7", "P8"]
    assert all(r.skipped == "app.py does not exist yet" and r.passed is None for r in rows)
    assert "SKIP" in run.table(rows)
