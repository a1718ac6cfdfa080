"""What the reader sees, read back from the rendered view-models and checked against an independent
computation: the fixture network forwarded by hand in float64 (`tests.conftest.reference`), numpy's
own statistics, and nothing from `cam` but the image loader.

Covers the heading and class probabilities, the Compare tab's table, the All-classes captions, the
downloads, "Inside the CAM", the demo-model caveat, that switching a display setting never reruns
the network, and the messages for bad control values.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from cam.model import CamModel, Provenance
from explorer.explorer import Explorer, Settings, SettingsError, Who
from tests.conftest import EXAMPLES, Reference, read_png, reference, scaled

WHO = Who("test-session", "127.0.0.1")
CLASSES = ("rudo", "baya", "greg", "yuki")


# ------------------------------------------------------------------------------------------------ parsing


def number(text: str, pattern: str) -> float:
    """The float captured by ``pattern`` (exactly one match) in ``text``."""
    found = re.findall(pattern, text)
    assert len(found) == 1, f"{pattern!r} found {len(found)} times in:\n{text}"
    return float(found[0].replace(",", ""))


def compare_cells(md: str) -> dict[str, Any]:
    """The Compare tab's table, cell by cell, as the reader sees it."""
    cells: dict[str, Any] = {
        "class": re.search(r"\| Check for class \*\*(\w+)\*\* \| Value \|", md).group(1),  # type: ignore[union-attr]
        "max_diff": number(md, r"\| Largest \\\|CAM − Grad-CAM\\\| after ReLU and min-max scaling \| `([^`]+)` \|"),
        "mean_plus_b": number(md, r"\| mean\(CAM\) \+ b<sub>c</sub> \| `([^`]+)` \|"),
        "logit": number(md, r"\| logit y<sub>c</sub> from the network \| `([^`]+)` \(difference `[^`]+`\) \|"),
        "difference": number(md, r"\(difference `([^`]+)`\) \|"),
    }
    corr = re.findall(r"\| Correlation of the raw maps \| `([^`]+)` \|", md)
    assert len(corr) == 1, md
    cells["correlation"] = float(corr[0]) if corr[0][0].isdigit() or corr[0][0] == "-" else corr[0]
    residual = re.findall(r"\| max \\\|Grad-CAM × ([\d,]+) − CAM\\\| \(raw\) \| `([^`]+)` \|", md)
    cells["residual"] = None if not residual else (int(residual[0][0].replace(",", "")), float(residual[0][1]))
    return cells


HEADING = re.compile(r"^### Explaining \*\*(\w+)\*\* \((.*?)\), probability (<|>)?([\d.]+)%")
CAPTION = re.compile(r"^(\w+): (<|>)?([\d.]+)%( \(predicted\))?(, no positive evidence)?$")


def rounds_to(shown: float, true: float, significant: int = 3) -> bool:
    """Whether ``shown`` is ``true`` rounded to ``significant`` digits (allowing float32 noise)."""
    if true == 0:
        return shown == 0
    unit = 10 ** (np.floor(np.log10(abs(true))) - (significant - 1))
    return abs(shown - true) <= 0.5 * unit * 1.001 + 1e-6 * abs(true)


def check_percent(p: float, sign: str | None, value: float) -> None:
    """A displayed 'x.y%' is p rounded to 0.1 %; '<0.1%' / '>99.9%' only at the extremes."""
    if sign == "<":
        assert value == 0.001 and 0 < p < 0.001
    elif sign == ">":
        assert value == 0.999 and 0.999 < p < 1
    else:
        assert abs(value - p) <= 0.0005 + 1e-12, (value, p)


# ------------------------------------------------------------------------------------------------ heading


def test_class_probabilities_are_the_softmax_of_the_network(
    explorer: Explorer, photos: dict[str, Path], refs: dict[str, Reference]
) -> None:
    predicted = set()
    for name, path in photos.items():
        ref = refs[name]
        view = explorer.main_view(WHO, str(path), Settings())
        assert list(view.prediction) == list(CLASSES)
        np.testing.assert_allclose(list(view.prediction.values()), ref.probabilities, rtol=1e-5, atol=1e-7)
        # The heading names the predicted class and its probability, rounded as shown.
        want = CLASSES[int(np.argmax(ref.logits))]
        predicted.add(want)
        m = HEADING.match(view.heading)
        assert m, view.heading
        assert m.group(1) == want and m.group(2) == "the predicted class"
        check_percent(float(ref.probabilities.max()), m.group(3), float(m.group(4)) / 100)
    assert len(predicted) == 3, "the photos are chosen so that three different classes win"


def test_heading_for_a_chosen_class(explorer: Explorer, photos: dict[str, Path], refs: dict[str, Reference]) -> None:
    ref = refs["teal"]
    top = CLASSES[int(np.argmax(ref.logits))]
    for c, name in enumerate(CLASSES):
        view = explorer.main_view(WHO, str(photos["teal"]), Settings(target=name))
        m = HEADING.match(view.heading)
        assert m, view.heading
        assert m.group(1) == name
        why = (
            "your choice; it is also the predicted class"
            if name == top
            else f"your choice; the model predicts **{top}**"
        )
        assert m.group(2) == why
        check_percent(float(ref.probabilities[c]), m.group(3), float(m.group(4)) / 100)
        assert compare_cells(view.compare_md)["class"] == name


def test_all_classes_captions_are_the_probabilities(
    explorer: Explorer, photos: dict[str, Path], refs: dict[str, Reference]
) -> None:
    for name, path in photos.items():
        ref = refs[name]
        view = explorer.main_view(WHO, str(path), Settings(target="baya"))  # the tiles do not follow the class
        assert len(view.class_tiles) == len(CLASSES)
        tagged = []
        for c, (file, caption) in enumerate(view.class_tiles):
            m = CAPTION.match(caption)
            assert m, caption
            assert m.group(1) == CLASSES[c]
            check_percent(float(ref.probabilities[c]), m.group(2), float(m.group(3)) / 100)
            if m.group(4):
                tagged.append(c)
            assert bool(m.group(5)) == (ref.cam(c).max() <= 0)
            assert read_png(file).ndim == 3  # a picture is there
        assert tagged == [int(np.argmax(ref.logits))], "exactly the argmax carries '(predicted)'"


# ------------------------------------------------------------------------------------------------ Compare


@pytest.mark.parametrize("photo", ["teal", "blue"])
def test_compare_at_conv3_shows_the_identity_with_true_numbers(
    explorer: Explorer, photos: dict[str, Path], refs: dict[str, Reference], photo: str
) -> None:
    ref = refs[photo]
    for c in (int(np.argmax(ref.logits)), 1):  # the predicted class and baya (never predicted here)
        view = explorer.main_view(WHO, str(photos[photo]), Settings(target=CLASSES[c]))
        shown = compare_cells(view.compare_md)
        assert "**At conv3 the two maps are the same map.**" in view.compare_md
        cam, logit = ref.cam(c), float(ref.logits[c])
        # Against the independent float64 computation: the identities hold, so the exact values are
        # 0 (difference, residual), 1 (correlation) and the logit (mean(CAM) + b).
        assert shown["logit"] == pytest.approx(logit, abs=2e-6)
        assert shown["mean_plus_b"] == pytest.approx(cam.mean() + ref.bias[c], abs=2e-6)
        assert shown["mean_plus_b"] == pytest.approx(logit, abs=2e-6)
        assert shown["correlation"] == pytest.approx(
            np.corrcoef(cam.ravel(), ref.gradcam(c, "conv3").ravel())[0, 1], abs=1e-6
        )
        assert 0 <= shown["max_diff"] < 1e-5 and 0 <= shown["difference"] < 1e-5
        hw, residual = shown["residual"]
        assert hw == 256 * 256 and 0 <= residual < 1e-5 * np.abs(cam).max()
        # Against the maps the reader can download (float32): the rounding-level numbers are exactly
        # the ones these maps give, so a number copied from elsewhere (the logit in the mean(CAM) + b
        # cell, a hard-coded value) would show.
        cam32, gc32 = np.load(view.cam_npy), np.load(view.gradcam_npy)
        np.testing.assert_allclose(cam32, cam, rtol=1e-5, atol=1e-5 * np.abs(cam).max())
        np.testing.assert_allclose(gc32 * hw, cam, rtol=1e-5, atol=1e-5 * np.abs(cam).max())
        mean_plus_b = float(cam32.astype(np.float64).mean() + float(np.float32(ref.bias[c])))
        logit32 = shown["logit"]
        assert f"| mean(CAM) + b<sub>c</sub> | `{mean_plus_b:.6f}` |" in view.compare_md
        assert float(f"{abs(mean_plus_b - logit32):.1e}") == pytest.approx(shown["difference"], abs=5.1e-7)
        diff = float(np.abs(scaled(cam32.astype(np.float64)) - scaled(gc32.astype(np.float64))).max())
        assert shown["max_diff"] == pytest.approx(diff, rel=0.02, abs=2e-7)
        resid = float(np.abs(gc32.astype(np.float64) * hw - cam32.astype(np.float64)).max())
        assert residual == pytest.approx(resid, rel=0.006)


def test_compare_cells_show_their_own_numbers_when_the_identity_fails(
    explorer: Explorer, photos: dict[str, Path], refs: dict[str, Reference]
) -> None:
    """On this network mean(CAM) + b equals the logit to ~1e-7, so the table cannot tell the two
    apart. Here the logits are shifted by 0.5 (as for a network that is not a pure GAP net): each
    cell must still show its own number, and the difference the gap between them."""
    from dataclasses import replace

    from cam.compare import compare_cam_gradcam
    from explorer.compare import compare_markdown

    ref = refs["teal"]
    r = explorer.explanation(WHO, str(photos["teal"]), "conv3").for_target("greg")
    shifted = replace(r, logits=r.logits + np.float32(0.5))
    shown = compare_cells(compare_markdown(shifted, compare_cam_gradcam(shifted), "conv3"))
    assert shown["mean_plus_b"] == pytest.approx(ref.cam(2).mean() + ref.bias[2], abs=2e-6)
    assert shown["logit"] == pytest.approx(float(ref.logits[2]) + 0.5, abs=2e-6)
    assert shown["difference"] == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_compare_below_conv3_says_the_maps_differ_with_true_numbers(
    explorer: Explorer, photos: dict[str, Path], refs: dict[str, Reference], layer: str
) -> None:
    ref = refs["olive"]
    c = 2  # greg
    view = explorer.main_view(WHO, str(photos["olive"]), Settings(target="greg", layer=layer))
    md = view.compare_md
    assert f"**At {layer} the maps differ, as they should.**" in md and "same map" not in md
    shown = compare_cells(md)
    cam, gc = ref.cam(c), ref.gradcam(c, layer)
    r = float(np.corrcoef(cam.ravel(), gc.ravel())[0, 1])
    assert r < 0.99 and shown["correlation"] == pytest.approx(r, abs=2e-6)
    diff = float(np.abs(scaled(cam) - scaled(gc)).max())
    assert diff > 0.05 and shown["max_diff"] == pytest.approx(diff, rel=0.01)
    assert shown["mean_plus_b"] == pytest.approx(cam.mean() + ref.bias[c], abs=2e-6)
    assert shown["logit"] == pytest.approx(float(ref.logits[c]), abs=2e-6)
    assert shown["residual"] is None, "the Grad-CAM x H·W row belongs to conv3 only"
    rf = {"conv1": 3, "conv2": 5}[layer]  # 3x3 convolutions, stride 1: 1 + 2 per layer
    assert f"receptive field {rf}×{rf} pixels" in md
    np.testing.assert_allclose(np.load(view.gradcam_npy), gc, rtol=1e-4, atol=1e-5 * np.abs(gc).max())


def test_downloads_hold_the_raw_maps(explorer: Explorer, photos: dict[str, Path], refs: dict[str, Reference]) -> None:
    ref = refs["blue"]
    for c, name in enumerate(CLASSES):
        view = explorer.main_view(WHO, str(photos["blue"]), Settings(target=name, layer="conv2"))
        cam = np.load(view.cam_npy)
        assert cam.dtype == np.float32 and cam.shape == (256, 256)
        np.testing.assert_allclose(cam, ref.cam(c), rtol=1e-5, atol=1e-5 * np.abs(ref.cam(c)).max())
        gc = ref.gradcam(c, "conv2")
        np.testing.assert_allclose(np.load(view.gradcam_npy), gc, rtol=1e-4, atol=1e-5 * np.abs(gc).max())
        assert Path(view.cam_npy).name == f"cam_{name}_conv3.npy"
        assert Path(view.gradcam_npy).name == f"gradcam_{name}_conv2.npy"
        assert Path(view.compare_png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def no_evidence_model(fixture_model: CamModel) -> CamModel:
    """The fixture network with yuki's fc row made negative: A >= 0 after ReLU, so its CAM
    sum_k w_k A^k is <= 0 everywhere, on every photo."""
    module = copy.deepcopy(fixture_model.module)
    with torch.no_grad():
        module.classifier.weight[3] = -module.classifier.weight[3].abs() - 0.01
    return CamModel(module=module, provenance=fixture_model.provenance)


def test_no_positive_evidence_is_said_not_drawn_black(
    make_explorer: Callable[..., Explorer], no_evidence_model: CamModel, photos: dict[str, Path]
) -> None:
    ex = make_explorer(no_evidence_model)
    ref = reference(no_evidence_model.module, read_png(photos["olive"]))
    assert ref.cam(3).max() <= 0 < ref.cam(0).max()  # what the page must then say
    view = ex.main_view(WHO, str(photos["olive"]), Settings(target="yuki"))
    assert "No positive evidence for yuki" in view.cam_note and "No positive evidence for yuki" in view.gradcam_note
    assert view.class_tiles[3][1].endswith(", no positive evidence")
    assert not any(caption.endswith("evidence") for _, caption in view.class_tiles[:3])
    photo, shown = (read_png(f) for f in view.cam_slider)
    assert shown.shape == photo.shape and shown.std() > 5, "a greyed photo with a note, not a blank square"
    assert ex.main_view(WHO, str(photos["olive"]), Settings(target="rudo")).cam_note == ""


# ------------------------------------------------------------------------------------------------ Inside the CAM


def partial_numbers(md: str) -> tuple[int, float, float, float]:
    m = re.search(
        r"\*\*Top (\d+) of 64 channels\*\* for \*(\w+)\*: partial logit .*? = \*\*(-?[\d.]+)\*\*, "
        r"true logit y = \*\*(-?[\d.]+)\*\* \(difference ([\d.e+-]+)",
        md,
    )
    assert m, md
    return int(m.group(1)), float(m.group(3)), float(m.group(4)), float(m.group(5))


@pytest.mark.parametrize("target", ["predicted", "baya"])
def test_inside_the_cam_sum_proof_and_pixel(
    explorer: Explorer, photos: dict[str, Path], refs: dict[str, Reference], target: str
) -> None:
    ref = refs["teal"]
    c = int(np.argmax(ref.logits)) if target == "predicted" else CLASSES.index(target)
    contributions = ref.fc[c] * ref.acts["conv3"].mean(axis=(1, 2))  # w_k F^k
    order = np.argsort(-contributions, kind="stable")
    x, y = 100, 37
    for k in (1, 8, 64):
        tab = explorer.channels_tab(WHO, str(photos["teal"]), Settings(target=target), "top", 12, k, (x, y))
        shown_k, partial, logit, difference = partial_numbers(tab.channels_sum_numbers)
        assert shown_k == k and CLASSES[c] in tab.channels_sum_numbers
        want = float(contributions[order[:k]].sum() + ref.bias[c])
        assert partial == pytest.approx(want, abs=6e-5) and logit == pytest.approx(float(ref.logits[c]), abs=6e-5)
        assert difference == pytest.approx(abs(want - float(ref.logits[c])), rel=0.06, abs=2e-6)
        if k == 64:
            assert "the full sum" in tab.channels_sum_numbers and difference < 1e-5
    # The grid: the top 12 channels by w_k F^k, each labelled with its true numbers.
    captions = [caption for _, caption in tab.channels_grid]
    assert [int(re.match(r"k=(\d+) ", s).group(1)) for s in captions] == [int(k) for k in order[:12]]  # type: ignore[union-attr]
    for s in captions:
        kk = int(s.split()[0][2:])
        w = float(re.search(r"w=([-+\d.e]+)", s).group(1))  # type: ignore[union-attr]
        wf = float(re.search(r"wF=([-+\d.e]+)", s).group(1))  # type: ignore[union-attr]
        assert rounds_to(w, ref.fc[c, kk]) and rounds_to(wf, contributions[kk]), (s, ref.fc[c, kk], contributions[kk])
    # The proof: alpha_k x H W equals w_k; the text's largest gap is rounding-sized, the plot is the data.
    gap = number(tab.channels_proof_md, r"largest gap ([\d.e+-]+)\)")
    assert gap < 1e-5 and np.abs(ref.alpha["conv3"][c] * 256 * 256 - ref.fc[c]).max() < 1e-9
    proof = tab.channels_proof_plot
    np.testing.assert_allclose(proof["x"], ref.fc[c], rtol=1e-6)
    np.testing.assert_allclose(proof["y"], ref.alpha["conv3"][c] * 256 * 256, rtol=1e-4, atol=1e-6)
    assert gap == pytest.approx(float(np.abs(proof["y"] - proof["x"]).max()), rel=0.06, abs=1e-12)
    # The pixel: its CAM value is the CAM map there (row y, column x), the bars are its 64 terms.
    value = number(tab.channels_pixel_md, r"= \*\*(-?[\d.]+)\*\*, the sum of the 64 terms")
    assert f"**Pixel ({x}, {y})**" in tab.channels_pixel_md
    assert value == pytest.approx(float(ref.cam(c)[y, x]), abs=6e-5)
    bars = tab.channels_pixel_plot
    terms = ref.fc[c] * ref.acts["conv3"][:, y, x]
    assert float(bars["term"].sum()) == pytest.approx(float(ref.cam(c)[y, x]), abs=1e-4)
    assert list(bars["term"]) == sorted(bars["term"], reverse=True), "largest first"
    for label, term in zip(bars["channel"], bars["term"], strict=True):
        assert term == pytest.approx(terms[int(label[2:])], abs=1e-5)


def test_inside_the_cam_at_conv1_has_no_w(
    explorer: Explorer, photos: dict[str, Path], refs: dict[str, Reference]
) -> None:
    ref = refs["blue"]
    c = int(np.argmax(ref.logits))
    tab = explorer.channels_tab(WHO, str(photos["blue"]), Settings(layer="conv1"), "bottom", 5, 16, (10, 250))
    assert "There is no partial logit here" in tab.channels_sum_numbers
    assert f"true logit {float(ref.logits[c]):.4f}" in tab.channels_sum_numbers
    assert tab.channels_proof_md.startswith("At conv1 there is no w")
    proof = tab.channels_proof_plot
    assert proof.attrs["x_title"] == "channel k of conv1" and len(proof) == 16
    np.testing.assert_allclose(proof["y"], ref.alpha["conv1"][c] * 256 * 256, rtol=1e-4, atol=1e-9)
    # Bottom N: the channels that speak most against the class by Grad-CAM's own terms alpha_k F^k.
    terms = ref.alpha["conv1"][c] * ref.acts["conv1"].mean(axis=(1, 2))
    shown = [int(caption.split()[0][2:]) for _, caption in tab.channels_grid]
    assert shown == [int(k) for k in np.argsort(-terms, kind="stable")[::-1][:5]]
    value = number(
        tab.channels_pixel_md, r"before ReLU = Σ<sub>k</sub> α<sub>k</sub>A<sup>k</sup> = \*\*(-?[\d.]+)\*\*"
    )
    assert value == pytest.approx(float(ref.gradcam(c, "conv1")[250, 10]), abs=2e-6)
    assert float(tab.channels_pixel_plot["term"].sum()) == pytest.approx(
        float(ref.gradcam(c, "conv1")[250, 10]), abs=1e-6
    )


# ------------------------------------------------------------------------------------------------ caveat


def bundled(model: CamModel) -> CamModel:
    """The fixture network presented as the offline demo model (provenance "bundled")."""
    prov = Provenance(
        source="bundled",
        requested="auto",
        path="/x/pot_plant_gap_synthetic.pth",
        sha256="ab" * 32,
        size=1,
        fallback_reason="The Hub could not be reached (offline).",
    )
    return CamModel(module=model.module, provenance=prov)


def test_demo_model_caveat_beside_every_prediction(
    make_explorer: Callable[..., Explorer], fixture_model: CamModel, photos: dict[str, Path], tmp_path: Path
) -> None:
    from explorer.api import Api

    demo = make_explorer(bundled(fixture_model))
    upload = demo.main_view(WHO, str(photos["teal"]), Settings()).caveat
    example = demo.main_view(WHO, str(EXAMPLES / "greg_1.jpg"), Settings()).caveat
    assert upload and example and upload != example
    assert "Demo model" in upload and "photo" in upload and "means nothing" in upload
    # A copy of an example, uploaded under another name, is recognised by its content.
    copy_of_example = tmp_path / "IMG_0001.jpg"
    copy_of_example.write_bytes((EXAMPLES / "greg_1.jpg").read_bytes())
    assert demo.main_view(WHO, str(copy_of_example), Settings()).caveat == example
    # The course model (any provenance but "bundled"): no caveat, on photos and examples alike.
    course = make_explorer(fixture_model)
    assert fixture_model.provenance.source == "file"
    assert course.main_view(WHO, str(photos["teal"]), Settings()).caveat == ""
    assert course.main_view(WHO, str(EXAMPLES / "greg_1.jpg"), Settings()).caveat == ""
    # The /explain endpoint carries the same note: a string, or null.
    assert Api(demo).explain(str(photos["teal"]), "predicted", "cam", "conv3")[1]["caveat"] == upload
    assert Api(demo).explain(str(copy_of_example), "baya", "gradcam", "conv1")[1]["caveat"] == example
    assert Api(course).explain(str(photos["teal"]), "predicted", "cam", "conv3")[1]["caveat"] is None


# ------------------------------------------------------------------------------------------------ network runs


@pytest.fixture
def forwards(fixture_model: CamModel) -> Iterator[list[int]]:
    """Every forward pass of the fixture network (its batch size), counted by a hook removed after."""
    seen: list[int] = []
    handle = fixture_model.module.register_forward_hook(lambda _m, inputs, _out: seen.append(int(inputs[0].shape[0])))
    try:
        yield seen
    finally:
        handle.remove()


def test_display_changes_do_not_rerun_the_network(
    make_explorer: Callable[..., Explorer], photos: dict[str, Path], forwards: list[int]
) -> None:
    ex = make_explorer()
    path = str(photos["olive"])
    ex.main_view(WHO, path, Settings())
    assert len(forwards) == 1, "CAM and Grad-CAM of every class come from one forward pass"
    for s in (
        *(Settings(target=name) for name in CLASSES),
        Settings(opacity=0.9),
        Settings(colormap="jet"),
        Settings(colormap="viridis", opacity=0.1, shared_scale=True),
    ):
        ex.main_view(WHO, path, s)
    assert len(forwards) == 1, "class, opacity, colour map and scale only re-render"
    ex.main_view(WHO, path, Settings(layer="conv1"))
    assert len(forwards) == 2
    ex.main_view(WHO, path, Settings(layer="conv3", target="greg"))
    ex.main_view(WHO, path, Settings(layer="conv1", target="baya"))
    assert len(forwards) == 2, "a layer seen before is reused"
    # Inside the CAM: one decomposition per layer; class, N, k and the pixel only re-render.
    ex.channels_tab(WHO, path, Settings(), "top", 12, 8, None)
    assert len(forwards) == 3
    for target, show, n, k, pixel in (
        ("baya", "bottom", 3, 64, (0, 0)),
        ("greg", "all", 64, 1, (255, 255)),
        ("predicted", "top", 1, 30, (128, 7)),
    ):
        ex.channels_tab(WHO, path, Settings(target=target, colormap="jet", opacity=0.3), show, n, k, pixel)
    assert len(forwards) == 3
    # Methods: one more pass for the six other cheap methods, then nothing for other classes.
    ex.methods_tab(WHO, path, Settings())
    assert len(forwards) == 4
    for name in CLASSES:
        ex.methods_tab(WHO, path, Settings(target=name, colormap="jet"))
    assert len(forwards) == 4
    # The Trust tab shown without "Compute" never computes.
    assert ex.faith_tab(WHO, path, Settings(), ["cam"], compute=False).faith_table == ""
    assert len(forwards) == 4


def test_examples_at_default_settings_are_served_from_the_view_cache(
    make_explorer: Callable[..., Explorer], forwards: list[int]
) -> None:
    ex = make_explorer()
    path = str(EXAMPLES / "rudo_2.jpg")
    first = ex.main_view(Who("a", "1.1.1.1"), path, Settings())
    n = len(forwards)
    again = ex.main_view(Who("b", "2.2.2.2"), path, Settings())  # another reader
    assert again == first and len(forwards) == n


def test_an_example_is_known_by_its_content_and_a_rewritten_file_is_hashed_again(
    explorer: Explorer, tmp_path: Path
) -> None:
    """`example_of` hashes a file once per version (path, size, mtime): a re-upload of an example is
    that example, and the same path rewritten with other bytes is not."""
    copy_of = tmp_path / "upload.jpg"
    copy_of.write_bytes((EXAMPLES / "rudo_2.jpg").read_bytes())
    assert explorer.example_of(str(copy_of)) == "rudo_2"
    assert explorer.example_of(str(copy_of)) == "rudo_2"  # from the cache
    copy_of.write_bytes((EXAMPLES / "rudo_2.jpg").read_bytes() + b"\0")
    assert explorer.example_of(str(copy_of)) is None


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (Settings(target="tulip"), r"Unknown class 'tulip'; choose predicted or one of rudo, baya, greg, yuki\."),
        (Settings(layer="conv9"), r"Unknown layer 'conv9'; choose one of conv1, conv2, conv3\."),
        (Settings(layer="conv_layers.5"), r"Unknown layer 'conv_layers\.5'"),
        (Settings(colormap="rainbow"), r"Unknown colour map 'rainbow'; choose one of .*jet"),
        (Settings(opacity=1.5), r"Overlay opacity must be between 0 and 1, got 1\.5\."),
        (Settings(target="x" * 5000), r"Unknown class 'x{40}'"),
    ],
)
def test_bad_control_values_get_clear_messages(
    explorer: Explorer, photos: dict[str, Path], settings: Settings, message: str
) -> None:
    for view in (explorer.main_view, explorer.methods_tab):
        with pytest.raises(SettingsError, match=message) as info:
            view(WHO, str(photos["teal"]), settings)
        assert len(str(info.value)) < 300
    with pytest.raises(SettingsError, match=message):
        explorer.channels_tab(WHO, str(photos["teal"]), settings, "top", 3, 3, None)


def test_other_bad_requests_get_clear_messages(explorer: Explorer, photos: dict[str, Path], tmp_path: Path) -> None:
    path = str(photos["teal"])
    with pytest.raises(SettingsError, match=r"Show 'top', 'bottom' or 'all' channels, not 'middle'"):
        explorer.channels_tab(WHO, path, Settings(), "middle", 3, 3, None)
    with pytest.raises(SettingsError, match=r"Unknown method 'gradcam\+\+\+'; choose from cam, gradcam"):
        explorer.faith_tab(WHO, path, Settings(), ["gradcam+++"], compute=True)
    with pytest.raises(SettingsError, match="Tick at least one method"):
        explorer.faith_tab(WHO, path, Settings(), [], compute=True)
    with pytest.raises(Exception, match="no longer on the server") as info:
        explorer.main_view(WHO, str(tmp_path / "gone.png"), Settings())
    assert "Upload it again" in str(info.value)
    notes = tmp_path / "notes.png"
    notes.write_text("these are my notes, not a photo")
    with pytest.raises(Exception, match="not an image"):
        explorer.main_view(WHO, str(notes), Settings())
