"""cam.compare and Explanation.merge against independent computations: the float64 reference network
of tests/conftest.py (no cam code), numpy's corrcoef and least squares written out here."""

from __future__ import annotations

import numpy as np
import pytest

from cam import METHODS, Explanation, explain
from cam.compare import (
    compare_cam_gradcam,
    equal_up_to_positive_scale,
    method_correlations,
    method_equivalences,
    positive_scale,
)
from cam.errors import CamError, MapError, MergeError
from cam.model import CamModel
from cam.network import CLASS_NAMES, INPUT_SIZE
from tests.conftest import reference, scaled

HW = INPUT_SIZE * INPUT_SIZE
CHEAP = [m for m, spec in METHODS.items() if not spec.needs_model]


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64).ravel(), b.astype(np.float64).ravel())[0, 1])


def lstsq_scale(a: np.ndarray, b: np.ndarray) -> float:
    """s minimising ||a - s b||, by numpy's least squares."""
    (s,), *_ = np.linalg.lstsq(b.astype(np.float64).reshape(-1, 1), a.astype(np.float64).ravel(), rcond=None)
    return float(s)


def hand_made(
    maps: dict[str, np.ndarray], logits: np.ndarray | None = None, bias: np.ndarray | None = None, layer: str = "conv3"
) -> Explanation:
    """An Explanation of class 0 built by hand (no network), for edge cases."""
    return Explanation(
        class_names=tuple(CLASS_NAMES),
        target_index=0,
        logits=np.array([1.0, 0.0, 0.0, 0.0], np.float32) if logits is None else logits,
        bias=np.zeros(4, np.float32) if bias is None else bias,
        layers={m: ("conv3" if m == "cam" else layer) for m in maps},
        classes=(0,),
        class_maps={m: v[None].astype(np.float32) for m, v in maps.items()},
    )


# ------------------------------------------------------------------------------------ compare_cam_gradcam


@pytest.mark.parametrize("c", range(len(CLASS_NAMES)))
def test_compare_numbers_at_conv3_match_the_reference(
    fixture_model: CamModel, images: list[np.ndarray], c: int
) -> None:
    r = explain(fixture_model, images[0], target=c)
    ref = reference(fixture_model.module, r.image.model_input)  # type: ignore[union-attr]
    n = compare_cam_gradcam(r)
    cam, gc = r.maps["cam"], r.maps["gradcam"]
    # What the page shows is computed on the maps it shows...
    assert n.max_abs_diff_scaled == pytest.approx(float(np.abs(scaled(cam) - scaled(gc)).max()), abs=1e-7)
    assert n.correlation == pytest.approx(corr(cam, gc), abs=1e-9)
    assert n.gradcam_times_hw_residual == pytest.approx(
        float(np.abs(gc.astype(np.float64) * HW - cam.astype(np.float64)).max()), rel=1e-9, abs=1e-12
    )
    # ...and says what the float64 reference network says.
    assert n.logit == pytest.approx(float(ref.logits[c]), rel=1e-5, abs=1e-5)
    assert n.mean_cam_plus_bias == pytest.approx(float(ref.cam(c).mean() + ref.bias[c]), rel=1e-5, abs=1e-5)
    assert n.mean_cam_plus_bias == pytest.approx(n.logit, rel=1e-5, abs=1e-5)
    assert n.max_abs_diff_scaled < 1e-5 and n.correlation > 1 - 1e-9
    assert n.gradcam_times_hw_residual < 1e-5 * float(np.abs(ref.cam(c)).max())


def test_compare_numbers_before_the_gap_layer(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    r = explain(fixture_model, images[1], methods=("cam", "gradcam"), layer={"gradcam": "conv1"})
    ref = reference(fixture_model.module, r.image.model_input)  # type: ignore[union-attr]
    n = compare_cam_gradcam(r)
    c = r.target_index
    assert n.gradcam_times_hw_residual is None  # Grad-CAM at conv1 is not CAM / (H W)
    assert n.correlation == pytest.approx(corr(ref.cam(c), ref.gradcam(c, "conv1")), abs=1e-4)
    assert n.correlation < 0.999
    assert n.max_abs_diff_scaled == pytest.approx(
        float(np.abs(scaled(ref.cam(c)) - scaled(ref.gradcam(c, "conv1"))).max()), abs=1e-4
    )


def test_each_number_comes_from_its_own_source() -> None:
    """On a real network mean(CAM) + b and the logit agree to rounding, so a cell showing the wrong
    one would pass unnoticed; on a hand-made explanation they differ, and each must be its own."""
    cam = np.arange(64, dtype=np.float64).reshape(8, 8) / 63  # mean 0.5
    logits, bias = np.array([3.0, 0, 0, 0], np.float32), np.array([0.25, 0, 0, 0], np.float32)
    n = compare_cam_gradcam(hand_made({"cam": cam, "gradcam": cam / 64}, logits, bias))
    assert n.mean_cam_plus_bias == pytest.approx(0.75, abs=1e-7) and n.logit == 3.0
    assert n.correlation == pytest.approx(1.0) and n.max_abs_diff_scaled < 1e-6


def test_residual_uses_the_maps_own_pixel_count() -> None:
    rng = np.random.default_rng(0)
    cam = rng.normal(size=(8, 8))
    n = compare_cam_gradcam(hand_made({"cam": cam, "gradcam": cam / 64}))
    assert n.gradcam_times_hw_residual is not None and n.gradcam_times_hw_residual < 1e-6  # H W = 64 here


def test_constant_map_has_no_correlation_and_missing_maps_are_refused() -> None:
    cam = np.random.default_rng(1).normal(size=(8, 8))
    n = compare_cam_gradcam(hand_made({"cam": cam, "gradcam": np.full((8, 8), 0.25)}))
    assert np.isnan(n.correlation)
    with pytest.raises(MapError, match="lacks gradcam"):
        compare_cam_gradcam(hand_made({"cam": cam}))


# ------------------------------------------------------------------------------------ method_equivalences


def test_equivalences_at_conv3(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    r = explain(fixture_model, images[0], methods=CHEAP)
    eq = method_equivalences(r, CHEAP)
    maps = r.maps
    assert eq.names == tuple(CHEAP)
    for i, a in enumerate(CHEAP):
        for j, b in enumerate(CHEAP):
            assert eq.correlations[i, j] == pytest.approx(corr(maps[a], maps[b]), abs=1e-9)
    # Grad-CAM, HiResCAM and XGrad-CAM are CAM / (H W) at conv3; the others differ for these weights.
    assert set(eq.equal_to_cam) == {"gradcam", "hirescam", "xgradcam"}
    for m, s in eq.equal_to_cam.items():
        assert s == pytest.approx(lstsq_scale(maps["cam"], maps[m]), rel=1e-9)
        assert s == pytest.approx(HW, rel=1e-5)
    assert set(eq.equal_pairs) == {("gradcam", "hirescam"), ("gradcam", "xgradcam"), ("hirescam", "xgradcam")}


def test_no_equivalence_before_the_gap_layer(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    r = explain(fixture_model, images[2], methods=CHEAP, layer={m: "conv2" for m in CHEAP if m != "cam"})
    eq = method_equivalences(r)
    assert eq.names == tuple(CHEAP) and eq.equal_to_cam == {}
    for a, b in eq.equal_pairs:  # whatever is claimed equal really is
        assert corr(r.maps[a], r.maps[b]) > 1 - 1e-6


def test_all_zero_maps_are_equal_with_scale_one() -> None:
    zero = np.zeros((8, 8))
    eq = method_equivalences(hand_made({"cam": zero, "gradcam": zero}))
    assert eq.equal_to_cam == {"gradcam": 1.0} and np.all(np.isnan(eq.correlations))


# ------------------------------------------------------------------------------------ the primitives


def test_equal_up_to_positive_scale() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(8, 9)).astype(np.float32)
    assert equal_up_to_positive_scale(a, 3.5 * a)
    assert equal_up_to_positive_scale(a / 65536, a)
    assert not equal_up_to_positive_scale(a, -a)  # a negative scale flips the map
    assert not equal_up_to_positive_scale(a, a + 1e-2 * rng.normal(size=a.shape))
    assert not equal_up_to_positive_scale(a, a + 1.0)  # an offset is not a scale
    zero = np.zeros_like(a)
    assert equal_up_to_positive_scale(zero, zero)
    assert not equal_up_to_positive_scale(zero, a) and not equal_up_to_positive_scale(a, zero)
    with pytest.raises(MapError, match=r"Cannot compare maps of shapes \(8, 9\) and \(9, 8\); resize one"):
        equal_up_to_positive_scale(a, a.T)


def test_positive_scale_is_least_squares() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    assert positive_scale(a, b) == pytest.approx(lstsq_scale(a, b), rel=1e-12)
    assert positive_scale(4 * b, b) == pytest.approx(4.0)
    assert positive_scale(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    assert np.isnan(positive_scale(np.ones((2, 2)), np.zeros((2, 2))))


def test_method_correlations_matrix() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(6, 6))
    maps = {"a": base, "b": 2 * base + 1, "c": -base, "flat": np.ones((6, 6)), "d": rng.normal(size=(6, 6))}
    names, r = method_correlations(maps, ["a", "b", "c", "flat", "d"])
    assert names == ("a", "b", "c", "flat", "d") and r.shape == (5, 5)
    assert r[0, 1] == pytest.approx(1.0) and r[0, 2] == pytest.approx(-1.0)
    assert np.allclose(r, r.T, equal_nan=True)
    assert np.all(np.isnan(r[3])) and np.all(np.isnan(r[:, 3]))
    assert r[0, 4] == pytest.approx(corr(base, maps["d"]))
    with pytest.raises(MapError, match="No map for e; computed methods are: a, b, c, flat, d"):
        method_correlations(maps, ["a", "e"])
    with pytest.raises(MapError, match="different shapes"):
        method_correlations({"a": base, "t": np.ones((3, 12))})


# ------------------------------------------------------------------------------------ Explanation.merge


def test_merge_adds_maps_of_the_same_image(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    base = explain(fixture_model, images[0], methods=("cam", "gradcam"), all_classes=True)
    extra = explain(fixture_model, base.image, methods=("gradcam++", "gradcam"), layer="conv2", all_classes=True)
    merged = base.merge(extra)
    assert tuple(merged.class_maps) == ("cam", "gradcam", "gradcam++")
    assert merged.layers == {"cam": "conv3", "gradcam": "conv2", "gradcam++": "conv2"}  # the later map wins
    np.testing.assert_array_equal(merged.class_maps["gradcam"], extra.class_maps["gradcam"])
    np.testing.assert_array_equal(merged.class_maps["cam"], base.class_maps["cam"])
    assert merged.target_index == base.target_index and merged.image is base.image
    assert merged.for_target(2).maps["gradcam++"].shape == (INPUT_SIZE, INPUT_SIZE)


def test_merge_refuses_other_images_and_classes(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    a = explain(fixture_model, images[0], all_classes=True)
    other_image = explain(fixture_model, images[1], methods=("gradcam++",), all_classes=True)
    with pytest.raises(MergeError, match="logits differ"):
        a.merge(other_image)
    one_class = explain(fixture_model, a.image, methods=("gradcam++",), target=1)
    with pytest.raises(MergeError, match="different classes"):
        a.merge(one_class)
    assert issubclass(MergeError, CamError)
