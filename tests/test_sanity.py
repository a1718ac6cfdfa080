"""Cascading randomisation: similarity measures, layer re-initialisation, the check on the bundled
model, and the shared model left untouched."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from cam import MethodError, explain, load_image, load_model
from cam.capture import hook_count
from cam.images import LoadedImage
from cam.model import CamModel
from cam.network import weights_path
from cam.sanity import (
    CASCADE,
    SanityResult,
    cascading_randomization,
    copy_network,
    randomize_layer,
    rank,
    spearman,
    ssim,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
STEPS = [[], ["fc"], ["fc", "conv3"], ["fc", "conv3", "conv2"], ["fc", "conv3", "conv2", "conv1"]]


@pytest.fixture(scope="module")
def bundled() -> CamModel:
    return load_model("bundled")


@pytest.fixture(scope="module")
def photo() -> LoadedImage:
    return load_image(EXAMPLES / "greg_2.jpg")


@pytest.fixture(scope="module")
def result(bundled: CamModel, photo: LoadedImage) -> SanityResult:
    return cascading_randomization(bundled, photo, "predicted", ("cam", "gradcam", "eigencam"), seed=0)


# ---------------------------------------------------------------------------------------- similarity


def test_rank_averages_ties() -> None:
    assert rank(np.array([3.0, 1.0, 2.0, 1.0])).tolist() == [3.0, 0.5, 2.0, 0.5]
    assert rank(np.zeros((2, 2))).tolist() == [[1.5, 1.5], [1.5, 1.5]]


def test_spearman_matches_scipy_with_ties() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = np.round(rng.normal(size=(40, 30)), 1)  # many ties
        b = np.round(a + rng.normal(scale=0.8, size=a.shape), 1)
        assert np.allclose(rank(a).ravel() + 1, stats.rankdata(a.ravel()))
        assert spearman(a, b) == pytest.approx(stats.spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-12)
    assert spearman(a, a) == pytest.approx(1.0) and spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.exp(a)) == pytest.approx(1.0)  # ranks only: any increasing transform


def test_spearman_of_a_constant_map_is_nan_and_bad_maps_are_refused() -> None:
    assert math.isnan(spearman(np.ones((8, 8)), np.arange(64.0).reshape(8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        spearman(np.full((4, 4), np.nan), np.ones((4, 4)))
    with pytest.raises(ValueError, match="shapes"):
        spearman(np.ones((4, 4)), np.ones((4, 5)))


def _ssim_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2004 written out window by window, Gaussian-weighted statistics, no tricks."""
    t = np.arange(11) - 5.0
    g1 = np.exp(-(t**2) / (2 * 1.5**2))
    w = np.outer(g1, g1)
    w /= w.sum()
    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * (pa - ma) ** 2).sum(), (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            vals.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_ssim_is_the_2004_formula() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((20, 24))
    b = np.clip(a + rng.normal(scale=0.2, size=a.shape), 0, 1)
    assert ssim(a, b) == pytest.approx(_ssim_by_hand(a, b), abs=1e-10)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ssim(a, b) == pytest.approx(ssim(b, a), abs=1e-12)  # symmetric
    noisier = [ssim(a, np.clip(a + rng.normal(scale=s, size=a.shape), 0, 1)) for s in (0.05, 0.2, 0.5)]
    assert 1 > noisier[0] > noisier[1] > noisier[2]
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.ones((5, 5)), np.ones((5, 5)))


def test_ssim_matches_scikit_image_when_installed() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(2)
    a = rng.random((64, 64))
    b = np.clip(a + rng.normal(scale=0.3, size=a.shape), 0, 1)
    ref = metrics.structural_similarity(
        a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(a, b) == pytest.approx(ref, abs=1e-6)


# ---------------------------------------------------------------------------------------- randomisation


@pytest.mark.parametrize("layer", CASCADE)
def test_randomize_layer_draws_like_reset_parameters(fixture_model: CamModel, layer: str) -> None:
    """The same numbers as the layer's own default initialisation under the same seed, without the
    global RNG: its state is the same before and after."""
    ours = copy_network(fixture_model.module)
    state = torch.random.get_rng_state()
    randomize_layer(ours, layer, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())
    from cam.sanity import _layer_seed

    theirs = copy_network(fixture_model.module)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_layer_seed(3, layer))
        target = theirs.get_submodule(weights_path(layer))
        assert isinstance(target, (torch.nn.Conv2d, torch.nn.Linear))
        target.reset_parameters()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        assert torch.equal(p, q), name
    original = dict(fixture_model.module.named_parameters())
    for name, p in ours.named_parameters():  # only that layer changed
        assert torch.equal(p, original[name]) != name.startswith(weights_path(layer) + ".")


def test_copy_is_independent_of_the_shared_model(fixture_model: CamModel) -> None:
    net = copy_network(fixture_model.module)
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        assert torch.equal(net(x), fixture_model.module(x))
        net.classifier.weight.add_(1.0)
    assert not torch.equal(net.classifier.weight, fixture_model.module.classifier.weight)
    assert not net.training


# ---------------------------------------------------------------------------------------- the check


def test_steps_are_the_cascade_and_step_zero_is_the_original(
    result: SanityResult, bundled: CamModel, photo: LoadedImage
) -> None:
    assert [list(s.randomized) for s in result.steps] == STEPS
    original = explain(bundled, photo, result.target_index, ("cam", "gradcam"))
    for m in ("cam", "gradcam"):
        assert np.allclose(
            result.steps[0].maps[m], original.maps[m], rtol=1e-5, atol=1e-6 * np.abs(original.maps[m]).max()
        )
        assert result.steps[0].spearman[m] == pytest.approx(1.0, abs=1e-12)
        assert result.steps[0].ssim[m] == pytest.approx(1.0, abs=1e-12)
    assert result.target == original.predicted


def test_randomising_fc_changes_the_cam_of_the_trained_model(result: SanityResult) -> None:
    for m in ("cam", "gradcam"):
        rho = result.steps[1].spearman[m]
        assert abs(rho) < 0.6, rho  # the trained model's map is 1.0
        assert result.verdict(m).passed is True
        for step in result.steps[1:]:
            assert abs(step.spearman[m]) < 0.6
    # At conv3 Grad-CAM = CAM / (H W): the same ranking at every step.
    for step in result.steps:
        assert step.spearman["cam"] == pytest.approx(step.spearman["gradcam"], abs=1e-6)


def test_fc_randomisation_changes_cam_on_every_example(bundled: CamModel) -> None:
    """Over all eight examples (one seed), not one lucky image: the fc step's |Spearman| is well below 1."""
    rhos = [
        cascading_randomization(bundled, path, methods=("cam",), seed=0).steps[1].spearman["cam"]
        for path in sorted(EXAMPLES.glob("*.jpg"))
    ]
    assert np.mean(np.abs(rhos)) < 0.6, rhos
    assert max(np.abs(rhos)) < 0.9, rhos


def test_a_method_blind_to_the_weights_fails(result: SanityResult) -> None:
    """Eigen-CAM is the first principal component of A: randomising fc cannot move it."""
    v = result.verdict("eigencam")
    assert v.passed is False and v.similarity == pytest.approx(1.0) and v.step == ("fc",)
    assert "fails" in v.sentence and "passes" in result.verdict("cam").sentence
    assert result.other_spearman["eigencam"] == pytest.approx(1.0)  # not class-specific either


def test_steps_are_deterministic_for_a_seed(bundled: CamModel, photo: LoadedImage, result: SanityResult) -> None:
    again = cascading_randomization(bundled, photo, "predicted", ("cam", "gradcam", "eigencam"), seed=0)
    other = cascading_randomization(bundled, photo, "predicted", ("cam",), seed=1)
    for a, b, c in zip(result.steps, again.steps, other.steps, strict=True):
        assert np.array_equal(a.maps["cam"], b.maps["cam"]) and a.spearman == b.spearman and a.ssim == b.ssim
        if a.randomized:
            assert not np.array_equal(a.maps["cam"], c.maps["cam"])
    assert result.to_json("cam") == again.to_json("cam")


def test_the_shared_model_is_byte_identical_after(bundled: CamModel, photo: LoadedImage) -> None:
    before = {k: v.numpy().tobytes() for k, v in bundled.module.state_dict().items()}
    rng_state = torch.random.get_rng_state()
    cascading_randomization(bundled, photo, "greg", ("cam", "gradcam"), layer="conv2", seed=5)
    after = {k: v.numpy().tobytes() for k, v in bundled.module.state_dict().items()}
    assert before == after
    assert hook_count(bundled.module) == 0 and not bundled.module.training
    assert all(p.grad is None for p in bundled.module.parameters())
    assert torch.equal(rng_state, torch.random.get_rng_state())


def test_other_class_view(result: SanityResult, bundled: CamModel, photo: LoadedImage) -> None:
    assert result.other_index != result.target_index
    full = explain(bundled, photo, result.other_index, ("cam",))
    assert np.allclose(result.other_maps["cam"], full.maps["cam"], atol=1e-5)
    assert result.other_spearman["cam"] == pytest.approx(spearman(result.steps[0].maps["cam"], full.maps["cam"]))
    from cam.sanity import _other_class

    chosen = {_other_class(seed, 2, 4) for seed in range(20)}
    assert chosen == {0, 1, 3}  # the seed picks among the other classes, all of them reachable


def test_earlier_layer_keeps_cam_at_conv3(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    r = cascading_randomization(fixture_model, images[0], 1, ("cam", "gradcam"), layer="conv1", seed=0)
    assert r.layers == {"cam": "conv3", "gradcam": "conv1"}
    assert r.judged_step("cam") == 1 and r.judged_step("gradcam") == 3  # fc, conv3 and conv2 random
    assert r.verdict("gradcam").step == ("fc", "conv3", "conv2")


def test_to_json_has_the_issue_15_schema(result: SanityResult) -> None:
    out = result.to_json("gradcam")
    json.dumps(out, allow_nan=False)
    assert {"steps", "other_class"} <= set(out)
    assert [s["randomized"] for s in out["steps"]] == STEPS
    assert all(set(s) == {"randomized", "spearman", "ssim"} for s in out["steps"])
    assert out["steps"][0]["spearman"] == pytest.approx(1.0) and out["steps"][0]["ssim"] == pytest.approx(1.0)
    assert out["other_class"]["class"] == result.other_class and out["other_class"]["class"] != out["class"]
    assert out["method"] == "gradcam" and out["layer"] == "conv3" and out["verdict"]["passed"] is True
    assert result.to_json()["method"] == "cam"  # the first method by default
    with pytest.raises(ValueError, match="not part of this check"):
        result.to_json("scorecam")


def test_refusals(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    with pytest.raises(MethodError):
        cascading_randomization(fixture_model, images[0], methods=("nope",))
    for seed in (-1, 1.5, True):
        with pytest.raises(ValueError, match="seed"):
            cascading_randomization(fixture_model, images[0], seed=seed)  # type: ignore[arg-type]
