"""The committed demo checkpoint and its model card, and the training script that makes them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cam import load_model
from cam.checkpoint import expected_shapes, read_checkpoint
from cam.loading import BUNDLED_CHECKPOINT
from cam.report import format_table
from cam.synthetic import make_dataset
from cam.train import main as train_main
from tests.test_evaluate import TOP_FIELDS

ASSETS = BUNDLED_CHECKPOINT.parent
CARD = json.loads((ASSETS / "model_card.json").read_text())


def test_bundled_checkpoint_is_a_plain_course_state_dict() -> None:
    ckpt = read_checkpoint(BUNDLED_CHECKPOINT)  # weights-only load, keys and shapes validated
    assert {k: tuple(v.shape) for k, v in ckpt.state_dict.items()} == expected_shapes()
    assert 50_000 < ckpt.size < 200_000
    model = load_model("bundled")
    assert model.provenance.source == "bundled" and model.provenance.sha256 == ckpt.sha256
    assert not model.module.training


def test_model_card_describes_this_checkpoint() -> None:
    data = BUNDLED_CHECKPOINT.read_bytes()
    assert CARD["checkpoint_sha256"] == hashlib.sha256(data).hexdigest()
    assert CARD["checkpoint_bytes"] == len(data)
    ev = CARD["evaluation"]
    assert set(TOP_FIELDS) <= set(ev)
    assert ev["accuracy"]["in_distribution"]["overall"] >= 0.9
    cfg = CARD["training"]["config"]
    assert CARD["training"]["history"][-1]["epoch"] == cfg["epochs"]
    md = (ASSETS / "MODEL_CARD.md").read_text()
    assert CARD["checkpoint_sha256"] in md
    assert format_table(ev) in md  # the markdown shows exactly the JSON's numbers


def test_bundled_model_reaches_90_percent_on_fresh_scenes() -> None:
    """200 scenes never seen in training (seed 4242; training used seed 0) at the full 256x256."""
    module = load_model("bundled").module
    data = make_dataset(200, seed=4242, pot_match_prob=0.8)
    preds = []
    with torch.no_grad():
        for start in range(0, 200, 20):
            x = torch.from_numpy(data.images[start : start + 20]).permute(0, 3, 1, 2).float() / 255.0
            preds.append(module(x).argmax(1).numpy())
    pred = np.concatenate(preds)
    accuracy = float((pred == data.labels).mean())
    assert accuracy >= 0.9, accuracy
    for k in range(4):  # no class is sacrificed for the others
        assert (pred[data.labels == k] == k).mean() >= 0.7, k


# ------------------------------------------------------------------------------------------- training


def test_smoke_training_writes_a_loadable_checkpoint_and_card(tmp_path: Path) -> None:
    out = tmp_path / "m.pth"
    assert train_main(["--smoke", "--out", str(out)]) == 0
    state = torch.load(out, map_location="cpu", weights_only=True)
    assert isinstance(state, dict) and {k: tuple(v.shape) for k, v in state.items()} == expected_shapes()
    model = load_model(out)
    assert model.provenance.source == "file"
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert card["checkpoint_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert card["training"]["config"]["epochs"] == 1 and card["training"]["config"]["n"] == 16
    assert set(TOP_FIELDS) <= set(card["evaluation"])
    assert (tmp_path / "MODEL_CARD.md").read_text().startswith("# Bundled demo model")


def test_training_is_seeded(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.pth", tmp_path / "b.pth", tmp_path / "c.pth"
    assert train_main(["--smoke", "--no-card", "--out", str(a)]) == 0
    assert train_main(["--smoke", "--no-card", "--out", str(b)]) == 0
    assert train_main(["--smoke", "--no-card", "--seed", "1", "--out", str(c)]) == 0
    sa, sb, sc = (torch.load(p, weights_only=True) for p in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.parametrize("argv", [["--n", "0"], ["--epochs", "0"], ["--crop", "4"]])
def test_training_refuses_bad_settings(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.pth"
    assert train_main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --")
    assert not out.exists()
