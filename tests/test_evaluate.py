"""cam.evaluate: metric definitions, identities between methods, and the CLI contract."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch

from cam.__main__ import main
from cam.evaluate import applicable_methods, evaluate, map_stats
from cam.methods import METHODS
from cam.model import CamModel
from cam.network import CLASS_NAMES
from cam.report import format_table
from cam.synthetic import make_dataset

CARD = Path(__file__).resolve().parent.parent / "cam" / "assets" / "model_card.json"
# Every top-level field `evaluate` promises (its docstring lists them; the model card shows them).
TOP_FIELDS = (
    "n",
    "seed",
    "size",
    "target",
    "splits",
    "methods",
    "skipped_methods",
    "accuracy",
    "pot_mismatch",
    "localisation",
    "area",
    "model",
    "seconds",
)


def evaluate_cli(argv: list[str]) -> int:
    return main(["evaluate", *argv])


def _paths(d: object, prefix: str = "") -> set[str]:
    """Every key path of nested dicts, e.g. 'accuracy.unbiased.per_class.rudo'."""
    if not isinstance(d, dict):
        return set()
    out = set()
    for k, v in d.items():
        p = f"{prefix}.{k}" if prefix else str(k)
        out.add(p)
        out |= _paths(v, p)
    return out


# ------------------------------------------------------------------------------------------- map_stats


def test_map_stats_on_handmade_maps() -> None:
    plant = np.zeros((4, 4), bool)
    pot = np.zeros((4, 4), bool)
    plant[0, :2] = True
    pot[3, 3] = True
    raw = np.full((4, 4), -1.0, np.float32)
    raw[0, 0], raw[0, 1], raw[3, 3], raw[2, 2] = 3.0, 1.0, 2.0, 2.0
    (on_plant, on_pot), shares = map_stats(raw, plant, pot)
    assert (on_plant, on_pot) == (True, False)
    assert shares == pytest.approx((4 / 8, 2 / 8, 2 / 8))

    raw[3, 3] = 5.0  # the peak moves to the pot
    (on_plant, on_pot), shares = map_stats(raw, plant, pot)
    assert (on_plant, on_pot) == (False, True)
    assert shares == pytest.approx((4 / 11, 5 / 11, 2 / 11))

    (on_plant, on_pot), shares = map_stats(np.full((4, 4), -2.0), plant, pot)  # no positive evidence
    assert (on_plant, on_pot) == (False, False)
    assert all(np.isnan(shares))


# ------------------------------------------------------------------------------------------- evaluate


@pytest.fixture(scope="module")
def result(fixture_model: CamModel) -> dict:
    return evaluate(fixture_model, n=4, seed=3)


def test_evaluate_has_every_field(result: dict) -> None:
    assert set(TOP_FIELDS) <= set(result)
    methods, skipped = applicable_methods()
    assert result["methods"] == methods and result["skipped_methods"] == skipped
    assert all(not METHODS[m].needs_model for m in methods)
    assert {"cam", "gradcam"} <= set(methods)
    for split in ("in_distribution", "unbiased"):
        assert set(result["accuracy"][split]["per_class"]) == set(CLASS_NAMES)
        assert set(result["localisation"][split]) == set(methods)
    json.dumps(result)  # JSON-ready: no numpy scalars, no NaN-free requirement broken silently


def test_accuracy_matches_a_direct_forward_pass(result: dict, fixture_model: CamModel) -> None:
    for split, p in (("in_distribution", 0.8), ("unbiased", 0.25)):
        data = make_dataset(4, 3, pot_match_prob=p)
        x = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 255.0
        with torch.no_grad():
            preds = fixture_model.module(x).argmax(1).numpy()
        correct = preds == data.labels
        acc = result["accuracy"][split]
        assert acc["overall"] == pytest.approx(correct.mean())
        for k, name in enumerate(CLASS_NAMES):
            assert acc["per_class"][name] == pytest.approx(correct[data.labels == k].mean())
        mismatch = data.pot_labels != data.labels
        assert result["pot_mismatch"][split]["n"] == int(mismatch.sum())


def test_localisation_identities(result: dict) -> None:
    for split in ("in_distribution", "unbiased"):
        loc = result["localisation"][split]
        for m, v in loc.items():
            # plant and pot masks are disjoint, so a peak hits at most one of them
            assert v["pointing_game"] == pytest.approx(v["pointing_plant"] + v["pointing_pot"]), m
            if v["n_energy"]:
                assert sum(v["energy"].values()) == pytest.approx(1.0), m
        # Grad-CAM at the GAP layer is CAM / (h w): the same peaks, the same energy shares
        assert loc["gradcam"]["pointing_game"] == loc["cam"]["pointing_game"]
        for region in ("plant", "pot", "background"):
            assert loc["gradcam"]["energy"][region] == pytest.approx(loc["cam"]["energy"][region], abs=1e-6)
        assert sum(result["area"][split].values()) == pytest.approx(1.0)


def test_evaluate_refuses_bad_n(fixture_model: CamModel) -> None:
    with pytest.raises(ValueError, match="n must be a positive number of scenes"):
        evaluate(fixture_model, n=0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        evaluate(fixture_model, n=1, seed=-3)


def test_table_names_every_method(result: dict) -> None:
    text = format_table(result)
    assert "Accuracy" in text and "in-distribution" in text and "unbiased" in text
    for m in result["methods"]:
        assert f"\n{m} " in text


# ------------------------------------------------------------------------------------------- CLI


def test_cli_json_has_every_field_the_model_card_promises(capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate_cli(["--json", "--n", "4", "--seed", "9", "--faithfulness", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 4 and out["seed"] == 9 and out["model"]["source"] == "bundled"
    promised = _paths(json.loads(CARD.read_text())["evaluation"])
    assert promised, "the committed model card has no evaluation"
    missing = sorted(promised - _paths(out))
    assert not missing, missing


def test_cli_plain_table_and_report(tmp_path: Path, checkpoint_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "rep"
    argv = ["--n", "2", "--model", str(checkpoint_path), "--report", str(report), "--faithfulness", "1"]
    assert evaluate_cli(argv) == 0
    text = capsys.readouterr().out
    assert text.startswith("Model: file") and "Localisation, in-distribution split" in text
    saved = json.loads((report / "evaluation.json").read_text())
    assert saved["accuracy"]["in_distribution"]["per_class"]["yuki"] is None  # no yuki among 2 scenes
    assert saved["n"] == 2 and saved["model"]["source"] == "file"
    faith = saved["faithfulness"]
    names = [*saved["methods"], "random"]
    assert faith["n_images"] == 1 and list(faith["methods"]) == names
    for v in faith["methods"].values():
        assert 0.0 <= v["deletion_auc"] <= 1.0 and 0.0 <= v["insertion_auc"] <= 1.0
    n_points = faith["settings"]["n_steps"] + 1
    assert len(faith["curves"]["fractions"]) == n_points
    assert all(len(c["deletion"]) == len(c["insertion"]) == n_points for c in faith["curves"]["mean"].values())
    md = (report / "EVALUATION.md").read_text()
    assert "## Faithfulness" in md and "](deletion.svg)" in md and "](accuracy.svg)" in md
    for m in names:  # one row per method in the localisation and faithfulness tables
        assert md.count(f"| `{m}` |") == (1 if m == "random" else 3)
    for chart, marks in [("deletion.svg", len(names)), ("insertion.svg", len(names)), ("accuracy.svg", 0)]:
        root = ET.parse(report / chart).getroot()  # well-formed SVG
        assert root.tag.endswith("svg")
        assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == marks
    bars = ET.parse(report / "energy.svg").getroot().findall("{http://www.w3.org/2000/svg}rect")
    assert len([b for b in bars if b.find("{http://www.w3.org/2000/svg}title") is not None]) == 3 * len(
        saved["methods"]
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--n", "0"], "--n must be at least 1 scene per split, got 0"),
        (["--n", "abc"], "invalid int value: 'abc'"),
        (["--seed", "-1"], "--seed must be a non-negative integer, got -1"),
        (["--faithfulness", "-1"], "--faithfulness must be 0 (off) or a number of scenes, got -1"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--model", "/nonexistent/model.pth"], "cannot be read"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate_cli(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in captured.err
