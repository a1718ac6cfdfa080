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
    assert len(report["machine"]["loadavg_start"]) == 3
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
    # The load average comes first, and the table on stdout names every row with its target.
    assert proc.stdout.startswith("load average at start")
    assert "P1.t1" in proc.stdout and "<= 1.3" in proc.stdout and "P4" in proc.stdout


def test_unknown_row_is_refused_with_the_valid_choices(tmp_path: Path) -> None:
    proc = run_harness(tmp_path, "--quick", "--only", "P99")
    assert proc.returncode == 2
    assert "Unknown rows ['P99']" in proc.stderr and "P1, P2, P3" in proc.stderr and "P13" in proc.stderr


def test_a_missing_feature_is_listed_as_not_available_with_its_target(tmp_path: Path) -> None:
    from benchmarks.harness import Row, table, unavailable
    from benchmarks.rows_library import find_function

    reason = find_function("cam.no_such_module", "anything")
    assert isinstance(reason, str) and "cannot be imported" in reason
    row = unavailable("P14", "sanity check", 10.0, reason)
    assert row.passed is None and row.verdict == "n/a" and row.skipped.startswith("not available")
    done = Row("P1.t1", "x", "a", "b", "ms", "<=", 1.3).finish(2.0, 1.0, 3)
    text = table([row, done])
    assert "P14" in text and "<= 10" in text and "n/a" in text and "FAIL" in text


def test_the_page_driver_reads_the_event_graph() -> None:
    """`benchmarks.uisession` finds events by element id and follows .then/.success chains."""
    from benchmarks.uisession import PageEvents

    page = PageEvents.__new__(PageEvents)
    config = {
        "components": [
            {"id": 1, "type": "button", "props": {"elem_id": "go"}},
            {"id": 2, "type": "state", "props": {}},
            {"id": 3, "type": "tabitem", "props": {"id": "cam", "label": "CAM"}},
            {"id": 4, "type": "radio", "props": {"elem_id": "layer", "choices": [["conv1", "conv1"], ["c3", "conv3"]]}},
        ],
        "dependencies": [
            {"id": 0, "targets": [[1, "click"]], "inputs": [2], "outputs": [2], "trigger_after": None},
            {"id": 1, "targets": [[None, "then"]], "inputs": [], "outputs": [], "trigger_after": 0},
        ],
    }
    page._read(config, "http://x/")
    assert page.elem("go") == 1 and page.tabs == {"cam": 3}
    assert [d["id"] for d in page.on[(1, "click")]] == [0] and [d["id"] for d in page.after[0]] == [1]
    assert page.choices(4) == ["conv1", "conv3"]
    with pytest.raises(LookupError, match="no component"):
        page.elem("nope")
