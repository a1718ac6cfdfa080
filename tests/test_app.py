"""The app's handlers called directly (no server): outputs, no needless network runs, clear errors."""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import gradio as gr
import numpy as np
import pytest
import torch
from gradio.data_classes import ImageData
from PIL import Image

from cam import explain, load_image
from cam.capture import hook_count
from cam.model import CamModel, Provenance
from tests.conftest import make_state_dict


def load_app(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """Import app.py once per test session, on the seeded test weights (never the Hub)."""
    if "app" in sys.modules:
        return sys.modules["app"]
    ckpt = tmp_path_factory.mktemp("app-model") / "model.pth"
    torch.save(make_state_dict(0), ckpt)
    os.environ.setdefault("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio-cache")))
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(tmp_path_factory.mktemp("examples-cache"))
    os.environ["CAM_MODEL"] = str(ckpt)
    try:
        import app
    finally:
        os.environ.pop("CAM_MODEL", None)
    return app


def save_images(folder: Path, arrays: list[np.ndarray]) -> list[Path]:
    out = []
    for i, a in enumerate(arrays):
        p = folder / f"img{i}.png"
        Image.fromarray(a).save(p)
        out.append(p)
    return out


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return load_app(tmp_path_factory)


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory, images: list[np.ndarray]) -> list[Path]:
    return save_images(tmp_path_factory.mktemp("imgs"), images)


@pytest.fixture
def counted(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """Record every network run the app makes (app.explain is the only way it runs the model)."""
    calls: list[tuple[str, Any]] = []
    real = app.explain

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(("explain", kwargs.get("layer")))
        return real(*args, **kwargs)

    monkeypatch.setattr(app, "explain", wrapper)
    yield calls


def out(app: ModuleType, outputs: tuple[Any, ...], name: str) -> Any:
    value = outputs[app.OUTPUT_NAMES.index(name)]
    return value.get("value") if isinstance(value, dict) and "__type__" in value else value


DEFAULTS = ("Predicted class", "conv3", 0.5, "jet", False)


def decoded(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def run(app: ModuleType, path: Path | str | None, state: Any = None, **kw: Any) -> tuple[Any, ...]:
    target, layer, opacity, cmap, shared = (
        kw.get(k, d) for k, d in zip(("target", "layer", "opacity", "cmap", "shared"), DEFAULTS, strict=True)
    )
    return app.on_settings(None if path is None else str(path), target, layer, opacity, cmap, shared, state)


# ------------------------------------------------------------------------------------------------ outputs


def test_outputs_match_the_library(app: ModuleType, paths: list[Path]) -> None:
    outputs = app.on_explain(str(paths[1]), *DEFAULTS, None)
    assert len(outputs) == len(app.OUTPUT_NAMES) + 1
    ref = explain(app.MODEL, paths[1], methods=("cam", "gradcam"), all_classes=True)
    assert out(app, outputs, "prediction") == ref.probabilities
    assert f"Explaining **{ref.predicted}**" in out(app, outputs, "target_md")
    # Downloads hold the raw maps exactly, and the comparison PNG is a real PNG.
    assert np.array_equal(np.load(out(app, outputs, "cam_npy")), ref.maps["cam"])
    assert np.array_equal(np.load(out(app, outputs, "gradcam_npy")), ref.maps["gradcam"])
    assert Path(out(app, outputs, "cam_npy")).name == f"cam_{ref.predicted}_conv3.npy"
    png = Path(out(app, outputs, "compare_png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png == Path(out(app, outputs, "compare_image"))
    # The slider shows the photo at display size, and the overlay the library's renderer makes
    # (exactly in the View; as a JPEG of it in the served file).
    state = outputs[-1]
    view = app.render_view(state, "Predicted class", "conv3", 0.5, "jet", False)
    photo, overlay = view.cam_slider
    display = load_image(paths[1]).display
    assert display is not None and photo.size == display.size
    expected = app.render.overlay(display, app.render.scale_map(ref.maps["cam"]), alpha=0.5, colormap="jet")
    assert np.array_equal(overlay, expected)
    photo_file, overlay_file = out(app, outputs, "cam_slider")
    assert decoded(photo_file).shape == decoded(overlay_file).shape == expected.shape
    assert Path(overlay_file).read_bytes() == app.jpeg_bytes(expected)  # the served file is that overlay
    assert np.array_equal(decoded(out(app, outputs, "cam_heatmap")), view.cam_heatmap)  # PNG: lossless
    assert isinstance(state, app.Session) and set(state.by_layer) == {"conv3"}
    assert hook_count(app.MODEL.module) == 0


def test_every_picture_is_a_fresh_file_per_response(app: ModuleType, paths: list[Path]) -> None:
    """Gradio 6.31 writes array outputs to one content-addressed file in place, so two identical
    responses rewrite a file while it is served. Every picture must be our own file, new per call."""
    first = app.on_explain(str(paths[0]), *DEFAULTS, None)
    second = app.on_explain(str(paths[0]), *DEFAULTS, first[-1])

    def files(outputs: tuple[Any, ...]) -> list[str]:
        found: list[str] = []
        for v in outputs[:-1]:
            assert not isinstance(v, (np.ndarray, Image.Image)), "pictures must be files, not arrays"
            found += [x for x in (v if isinstance(v, tuple) else (v,)) if isinstance(x, str) and Path(x).is_file()]
        return found

    a, b = files(first), files(second)
    pictures = [f for f in a if f.endswith((".jpg", ".png"))]
    assert len(pictures) >= 5 + len(app.MODEL.class_names) and len(a) == len(b)
    cache = Path(gr.utils.get_upload_folder()).resolve()
    for fa, fb in zip(a, b, strict=True):
        assert fa != fb and Path(fa).parent != Path(fb).parent, "a new folder per response"
        assert Path(fa).resolve().is_relative_to(cache)  # served as is, never copied or rewritten by Gradio
        assert Path(fa).read_bytes() == Path(fb).read_bytes()  # same inputs, same pictures


def test_large_photo_is_rendered_at_display_size(app: ModuleType, tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (90, 140, 60)).save(big, quality=80)
    photo, overlay = out(app, app.on_explain(str(big), *DEFAULTS, None), "cam_slider")
    assert decoded(photo).shape == decoded(overlay).shape == (768, 1024, 3)


def test_class_switch_and_display_changes_do_not_rerun_the_network(
    app: ModuleType, paths: list[Path], counted: list[tuple[str, Any]]
) -> None:
    outputs = run(app, paths[0])
    assert len(counted) == 1
    state = outputs[-1]
    for target in (*app.MODEL.class_names, "Predicted class"):
        outputs = run(app, paths[0], state, target=target)
        state = outputs[-1]
    for cmap in ("viridis", "magma"):
        state = run(app, paths[0], state, cmap=cmap, opacity=0.8)[-1]
    state = run(app, paths[0], state, shared=True)[-1]
    assert len(counted) == 1, "class, colour map, opacity and scale changes must only re-render"
    state = run(app, paths[0], state, layer="conv1")[-1]
    assert len(counted) == 2 and set(state.by_layer) == {"conv1", "conv3"}
    state = run(app, paths[0], state, layer="conv3", target="baya")[-1]
    state = run(app, paths[0], state, layer="conv1", target="greg")[-1]
    assert len(counted) == 2, "a layer seen before is reused"
    state = run(app, paths[2], state)[-1]
    assert len(counted) == 3
    assert set(state.by_layer) == {"conv3"}, "only the current image's results are kept"


def test_class_switch_shows_that_class(app: ModuleType, paths: list[Path]) -> None:
    state = run(app, paths[2])[-1]
    # Bit-exact against the library's all-classes pass (a single-target pass may round differently).
    every = explain(
        app.MODEL, paths[2], methods=("cam", "gradcam"), layer={"cam": "conv3", "gradcam": "conv2"}, all_classes=True
    )
    for name in app.MODEL.class_names:
        outputs = run(app, paths[2], state, target=name, layer="conv2")
        state = outputs[-1]
        ref = every.for_target(name)
        assert np.array_equal(np.load(out(app, outputs, "cam_npy")), ref.maps["cam"])
        assert np.array_equal(np.load(out(app, outputs, "gradcam_npy")), ref.maps["gradcam"])
        assert out(app, outputs, "target_md").startswith(f"### Explaining **{name}** (your choice")


def test_compare_proves_the_identity_at_conv3_and_explains_other_layers(app: ModuleType, paths: list[Path]) -> None:
    r = explain(app.MODEL, paths[3], methods=("cam", "gradcam"))
    text, numbers = app.compare_numbers(r, "conv3")
    assert numbers["max_abs_diff_scaled"] < 1e-5
    assert numbers["correlation"] > 0.99999
    assert abs(numbers["mean_cam_plus_bias"] - numbers["logit"]) < 1e-4 * max(1.0, abs(numbers["logit"]))
    assert numbers["max_abs_gradcam_times_hw_minus_cam"] < 1e-3 * float(np.abs(r.maps["cam"]).max())
    assert "same map" in text and f"{numbers['max_abs_diff_scaled']:.2e}" in text
    r1 = explain(app.MODEL, paths[3], methods=("cam", "gradcam"), layer={"cam": "conv3", "gradcam": "conv1"})
    text1, numbers1 = app.compare_numbers(r1, "conv1")
    assert "maps differ" in text1 and "no longer w" in text1
    assert numbers1["max_abs_diff_scaled"] > 1e-3  # the point of the conv1 view
    assert "max_abs_gradcam_times_hw_minus_cam" not in numbers1


def test_all_classes_come_from_one_pass(app: ModuleType, paths: list[Path], counted: list[tuple[str, Any]]) -> None:
    outputs = run(app, paths[1])
    ref = explain(app.MODEL, paths[1], all_classes=True)
    view = app.render_view(outputs[-1], "Predicted class", "conv3", 0.5, "jet", False)
    for i, name in enumerate(app.MODEL.class_names):
        picture = decoded(outputs[app.OUTPUT_NAMES.index(f"class_{i}")])
        assert max(picture.shape[:2]) <= 600
        img, caption = view.all_classes[i]
        assert caption.startswith(f"{name}: ") and ("(predicted)" in caption) == (name == ref.predicted)
        m01 = app.render.scale_map(ref.for_target(name).maps["cam"])
        photo = load_image(paths[1]).display
        assert np.array_equal(img, app.render.overlay(photo, m01, alpha=0.5, colormap="jet"))  # 300x200 < 512
    assert len(counted) == 1


@pytest.fixture
def no_evidence_model(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> str:
    """The app on a copy of the test model whose last class has only negative fc weights: with
    post-ReLU activations A >= 0, its CAM sum_k w_k A^k is <= 0 everywhere on every image."""
    module = copy.deepcopy(app.MODEL.module)
    with torch.no_grad():
        module.classifier.weight[-1] = -module.classifier.weight[-1].abs() - 0.01
    monkeypatch.setattr(app, "MODEL", CamModel(module=module, provenance=app.MODEL.provenance))
    return app.MODEL.class_names[-1]


def test_no_positive_evidence_gets_a_note_not_a_black_square(
    app: ModuleType, paths: list[Path], no_evidence_model: str
) -> None:
    name = no_evidence_model
    outputs = run(app, paths[0], target=name)
    assert f"No positive evidence for {name}" in out(app, outputs, "cam_note")
    assert f"No positive evidence for {name}" in out(app, outputs, "gradcam_note")  # conv3: same map
    photo, shown = (decoded(f) for f in out(app, outputs, "cam_slider"))
    assert shown.shape == photo.shape
    assert shown.mean() > 60 and shown.std() > 5, "a greyed photo with a note, not a blank square"
    i = app.MODEL.class_names.index(name)
    caption = app.render_view(outputs[-1], name, "conv3", 0.5, "jet", False).all_classes[i][1]
    assert caption.endswith("no positive evidence")
    assert float(outputs[-1].by_layer["conv3"].for_target(name).maps["cam"].max()) <= 0  # the note is true
    # Classes with evidence still get their overlay and no note.
    other = run(app, paths[0], outputs[-1], target=app.MODEL.class_names[0])
    assert out(app, other, "cam_note") == ""
    picture, summary, _ = app.explain_api(str(paths[0]), name, "cam", "conv3")
    assert summary["has_positive_evidence"] is False and decoded(picture).std() > 5


# ------------------------------------------------------------------------------------------------ errors


def test_errors_are_clear_gr_errors(app: ModuleType, paths: list[Path], tmp_path: Path) -> None:
    with pytest.raises(gr.Error, match="Upload a photo"):
        app.on_explain(None, *DEFAULTS, None)
    bad = tmp_path / "notes.png"
    bad.write_text("these are my notes, not a photo")
    with pytest.raises(gr.Error, match="not an image") as info:
        app.on_explain(str(bad), *DEFAULTS, None)
    assert "Traceback" not in info.value.message
    with pytest.raises(gr.Error, match="Unknown target class 'tulip'"):
        run(app, paths[0], target="tulip")
    with pytest.raises(gr.Error, match="Unknown layer 'conv9'"):
        run(app, paths[0], layer="conv9")
    with pytest.raises(gr.Error, match="Unknown colour map 'rainbow'"):
        run(app, paths[0], cmap="rainbow")
    gone = tmp_path / "gone.png"
    with pytest.raises(gr.Error, match="no longer on the server"):
        app.on_explain(str(gone), *DEFAULTS, None)


def test_html_in_a_message_is_escaped(app: ModuleType, tmp_path: Path) -> None:
    bad = tmp_path / "<img src=x onerror=alert(1)>.png"
    bad.write_bytes(b"")
    with pytest.raises(gr.Error) as info:
        app.on_explain(str(bad), *DEFAULTS, None)
    assert "<img" not in info.value.message and "&lt;img" in info.value.message


def test_unexpected_errors_are_logged_not_shown(
    app: ModuleType, paths: list[Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(app, "explain", broken)
    with caplog.at_level(logging.ERROR, logger="cam.app"), pytest.raises(gr.Error) as info:
        run(app, paths[0])
    assert info.value.message == app.GENERIC_ERROR and "secret" not in info.value.message
    assert "secret internal detail" in caplog.text


def test_settings_without_an_image_change_nothing(app: ModuleType) -> None:
    outputs = run(app, None, target="baya")
    assert len(outputs) == len(app.OUTPUT_NAMES) + 1
    assert all(isinstance(v, dict) and v.get("__type__") == "update" and len(v) == 1 for v in outputs)


def test_clear_empties_every_output(app: ModuleType) -> None:
    outputs = app.on_clear()
    assert outputs[-1] is None and len(outputs) == len(app.OUTPUT_NAMES) + 1
    assert out(app, outputs, "cam_slider") is None and out(app, outputs, "target_md") == ""


# ------------------------------------------------------------------------------------------------ API


def test_explain_api(app: ModuleType, paths: list[Path]) -> None:
    picture, summary, npy = app.explain_api(str(paths[2]), "greg", "gradcam", "conv2")
    ref = explain(app.MODEL, paths[2], target="greg", methods=("gradcam",), layer="conv2")
    assert np.array_equal(np.load(npy), ref.maps["gradcam"])
    assert summary["target"] == "greg" and summary["layer"] == "conv2" and summary["method"] == "gradcam"
    assert summary["probabilities"] == ref.probabilities
    assert summary["map_max"] == float(ref.maps["gradcam"].max())
    assert summary["model"]["sha256"] == app.MODEL.provenance.sha256
    assert decoded(picture).shape == (120, 480, 3)  # the photo's own size (480x120), under the display cap
    assert Path(picture).name == "overlay_gradcam_greg_conv2.jpg" and Path(npy).name == "gradcam_greg_conv2.npy"
    json.dumps(summary)  # the JSON output must serialise
    with pytest.raises(gr.Error, match="exists only at 'conv3'"):
        app.explain_api(str(paths[2]), "predicted", "cam", "conv1")
    with pytest.raises(gr.Error, match=re.escape("Unknown method 'gradcam+++'")):
        app.explain_api(str(paths[2]), "predicted", "gradcam+++", "conv3")


def test_only_explain_is_a_public_endpoint(app: ModuleType) -> None:
    info = app.demo.get_api_info()
    assert set(info["named_endpoints"]) == {"/explain"}
    params = [p["parameter_name"] for p in info["named_endpoints"]["/explain"]["parameters"]]
    assert params == ["image", "target", "method", "layer"]


def test_model_events_share_one_concurrency_group(app: ModuleType) -> None:
    fns = [f for f in app.demo.fns.values() if f.fn is not None and f.name != "on_clear"]
    model_handlers = {
        "on_explain",
        "on_settings",
        "after_example",
        "explain_api",
        "load_example_output",
        "on_methods_view",
        "on_scorecam",
        "on_faithfulness",
    }
    model_fns = [f for f in fns if getattr(f.fn, "__name__", "") in model_handlers]
    assert {getattr(f.fn, "__name__", "") for f in model_fns} >= model_handlers - {"load_example_output"}
    assert {f.concurrency_id for f in model_fns} == {app.CONCURRENCY_ID}
    assert app.demo._queue.max_size == app.QUEUE_MAX_SIZE


# ------------------------------------------------------------------------------------------------ inputs


def test_image_input_never_decodes(app: ModuleType, tmp_path: Path) -> None:
    comp = app.image_input()
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    assert comp.preprocess(ImageData(path=str(junk))) == str(junk)  # passed on untouched
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    saved = comp.preprocess(ImageData(url=url))
    assert Path(saved).read_bytes() == data and saved in comp.temp_files
    assert comp.preprocess(None) is None
    big = "data:image/png;base64," + "A" * (app.MAX_DATA_URL_BYTES * 4 // 3 + 8)
    with pytest.raises(gr.Error, match=f"over the {app.MAX_UPLOAD_MB} MB limit"):
        comp.preprocess(ImageData(url=big))
    with pytest.raises(gr.Error, match="not base64"):
        comp.preprocess(ImageData(url="data:image/png,rawbytes"))
    assert comp.get_block_name() == "image"  # the front end draws Gradio's own Image


def test_examples_and_captions(app: ModuleType, tmp_path: Path) -> None:
    assert app.load_examples(tmp_path / "missing") == []
    Image.new("RGB", (40, 30), (10, 200, 30)).save(tmp_path / "baya_1.jpg")
    Image.new("RGB", (40, 30), (200, 10, 30)).save(tmp_path / "rudo_1.jpg")
    (tmp_path / "captions.json").write_text(
        json.dumps({"baya_1.jpg": {"class": "baya", "class_index": 1, "look_for": "the cream blotches"}})
    )
    found = app.load_examples(tmp_path)
    assert [e.path.name for e in found] == ["baya_1.jpg", "rudo_1.jpg"]
    assert (found[0].true_class, found[0].look_for) == ("baya", "the cream blotches")
    assert found[1].true_class is None
    assert found[0].sha256 == hashlib.sha256((tmp_path / "baya_1.jpg").read_bytes()).hexdigest()
    (tmp_path / "captions.json").write_text("{broken")
    assert len(app.load_examples(tmp_path)) == 2  # a broken captions file does not break the app


def test_example_note_matches_by_content(app: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(photo)
    ex = app.ExamplePhoto(photo, "baya", "the cream blotches", app.file_sha256(str(photo)))
    monkeypatch.setattr(app, "_EXAMPLES_BY_SHA", {ex.sha256: ex})
    copy = tmp_path / "upload.jpg"
    copy.write_bytes(photo.read_bytes())
    outputs = app.on_explain(str(copy), *DEFAULTS, None)
    assert "`a.jpg`, true class **baya**" in out(app, outputs, "target_md")
    assert "the cream blotches" in out(app, outputs, "target_md")


def test_after_example_rerenders_only_for_custom_settings(app: ModuleType, paths: list[Path]) -> None:
    skipped = app.after_example(str(paths[0]), *DEFAULTS, None)
    assert all(v == gr.skip() for v in skipped)
    outputs = app.after_example(str(paths[0]), "Predicted class", "conv3", 0.5, "viridis", False, None)
    assert isinstance(outputs[-1], app.Session)


# ------------------------------------------------------------------------------------------------ banner


def test_provenance_banner(app: ModuleType) -> None:
    demo_model = Provenance(
        source="bundled",
        requested="auto",
        path="/x/pot_plant_gap_synthetic.pth",
        sha256="ab" * 32,
        size=1,
        fallback_reason="The Hub could not be reached (offline).",
    )
    text = app.provenance_markdown(demo_model)
    assert "offline demo model trained on synthetic pot plants" in text
    assert "course model loads from the Hugging Face Hub when the network allows" in text
    assert "The Hub could not be reached (offline)." in text and "ab" * 32 in text
    hub = Provenance(
        source="hub",
        requested="auto",
        path="/c/model.pth",
        sha256="cd" * 32,
        size=1,
        repo_id="a-data-odyssey/XAI-for-CV-models",
        filename="models/pot_plant_classifier_gap/model.pth",
        revision="main",
        commit="0123456789abcdef" * 2 + "01234567",
    )
    text = app.provenance_markdown(hub)
    assert "a-data-odyssey/XAI-for-CV-models" in text and "models/pot_plant_classifier_gap/model.pth" in text
    assert "0123456789ab" in text and "cd" * 32 in text and "demo" not in text


@contextlib.contextmanager
def launched(app: ModuleType, **overrides: Any) -> Iterator[str]:
    """The app served on 127.0.0.1 with its production launch settings; closed afterwards."""
    kwargs = {**app.LAUNCH_KWARGS, "prevent_thread_lock": True, "quiet": True, "server_name": "127.0.0.1", **overrides}
    _, url, _ = app.demo.launch(**kwargs)
    try:
        yield url
    finally:
        app.demo.close()
