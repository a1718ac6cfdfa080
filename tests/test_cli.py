"""`python -m cam`: info, explain on files/folders/globs, and clean failures."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cam import explain, load_model
from cam.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def image_dir(tmp_path: Path, images: list[np.ndarray]) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    for i, img in enumerate(images[:3]):
        Image.fromarray(img).save(d / f"img{i}.png")
    (d / "broken.png").write_bytes(b"<html>not an image</html>")
    (d / "notes.txt").write_text("ignored: not an image suffix")
    return d


def run_cli(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "cam", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )


def test_explain_folder_with_a_bad_file(
    image_dir: Path, tmp_path: Path, checkpoint_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "explain",
            str(image_dir),
            "--method",
            "cam,gradcam",
            "--out",
            str(out),
            "--model",
            str(checkpoint_path),
            "--batch-size",
            "2",
        ]
    )
    assert code == 1  # some inputs failed, the rest were done
    err = capsys.readouterr().err
    assert "broken.png" in err and "1 image(s) could not be read" in err
    model = load_model(str(checkpoint_path))
    for i in range(3):
        r = explain(model, image_dir / f"img{i}.png")
        for m in ("cam", "gradcam"):
            saved = np.load(out / f"img{i}.{m}.npy")
            np.testing.assert_allclose(saved, r.maps[m], rtol=1e-4, atol=1e-6 * np.abs(r.maps[m]).max())
            png = Image.open(out / f"img{i}.{m}.png")
            assert png.size == Image.open(image_dir / f"img{i}.png").size and png.mode == "RGB"
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 4
    by_name = {Path(r["image"]).name: r for r in rows}
    assert by_name["broken.png"]["status"].startswith("error: ")
    r0 = explain(model, image_dir / "img0.png")
    assert by_name["img0.png"]["predicted"] == r0.predicted
    assert float(by_name["img0.png"]["p_baya"]) == pytest.approx(r0.probabilities["baya"], abs=1e-5)
    assert float(by_name["img0.png"]["cam_max"]) == pytest.approx(float(r0.maps["cam"].max()), rel=1e-4)


def test_explain_glob_target_and_layer(image_dir: Path, tmp_path: Path, checkpoint_path: Path) -> None:
    out = tmp_path / "g"
    code = main(
        [
            "explain",
            str(image_dir / "img[01].png"),
            "--method",
            "gradcam",
            "--layer",
            "conv1",
            "--target",
            "greg",
            "--out",
            str(out),
            "--model",
            str(checkpoint_path),
            "--quiet",
        ]
    )
    assert code == 0
    assert sorted(p.name for p in out.glob("*.npy")) == ["img0.gradcam.npy", "img1.gradcam.npy"]
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert {r["target"] for r in rows} == {"greg"} and {r["gradcam_layer"] for r in rows} == {"conv1"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "missing.png"], "No file at 'missing.png'"),
        (["explain", "x.png", "--method", "nope"], "Unknown method 'nope'"),
        (["explain", "{img}", "--method", "cam", "--layer", "conv1"], "exists only at 'conv3'"),
        (["explain", "{img}", "--layer", "conv_layers[-1]"], "Valid layers are: conv1, conv2, conv3"),
        (["explain", "{img}", "--target", "rose"], "Unknown target class 'rose'"),
        (["explain", "{img}", "--opacity", "2"], "--opacity must be between 0 and 1"),
        (["explain", "nothing*.png"], "No file matches"),
        (["info", "--model", "/nonexistent/model.pth"], "cannot be read"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    args: list[str], message: str, image_dir: Path, tmp_path: Path, checkpoint_path: Path
) -> None:
    args = [a.replace("{img}", str(image_dir / "img0.png")) for a in args]
    if "--model" not in args:
        args += ["--model", str(checkpoint_path)]
    proc = run_cli(*args, "--out", str(tmp_path / "o")) if args[0] == "explain" else run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr
    assert message in lines[-1], proc.stderr


def test_info_json_lists_everything(checkpoint_path: Path) -> None:
    proc = run_cli("info", "--json", "--model", str(checkpoint_path))
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["classes"] == ["rudo", "baya", "greg", "yuki"]
    assert info["layers"] == {"conv1": "conv_layers.1", "conv2": "conv_layers.3", "conv3": "conv_layers.5"}
    from cam.methods import METHODS

    assert set(info["methods"]) == set(METHODS) and info["methods"]["cam"]["gap_only"] is True
    prov = info["provenance"]
    assert prov["source"] == "file" and prov["path"] == str(checkpoint_path) and len(prov["sha256"]) == 64
