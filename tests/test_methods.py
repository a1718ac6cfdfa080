"""The CAM family (Grad-CAM++, HiResCAM, XGrad-CAM, LayerCAM, Score-CAM, Eigen-CAM) against independent
computations: torchcam 0.5.0 on its own copy of the same weights, or the papers' formulas in float64
numpy on activations and gradients from a plain forward pass (no cam.capture). Then the identities
at the GAP layer, and the registry's names. (The equivalence checks live in tests/test_compare.py.)"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torchcam.methods import GradCAMpp, LayerCAM, ScoreCAM, XGradCAM

from cam import explain, explain_batch, load_image
from cam.capture import hook_count
from cam.checkpoint import build_module
from cam.compare import equal_up_to_positive_scale, method_correlations
from cam.errors import MethodError, SettingError
from cam.images import LoadedImage
from cam.methods import (
    METHODS,
    MethodInputs,
    display_name,
    eigencam,
    gradcam_pp,
    method_title,
    scorecam,
    xgradcam,
)
from cam.model import CamModel
from cam.network import CLASS_NAMES, INPUT_SIZE, LAYER_ALIASES, PotPlantGAP

HW = INPUT_SIZE * INPUT_SIZE
GRAD_METHODS = ("gradcam", "gradcam++", "hirescam", "xgradcam", "layercam")
LAYER_INDEX = {"conv1": 2, "conv2": 4, "conv3": 6}  # conv_layers[:i] ends with that layer's ReLU
TARGET = 1


def tc_normalize(m: np.ndarray) -> np.ndarray:
    """torchcam's post-processing of a (..., H, W) map: ReLU, minus min, divided by (max + 1e-8)."""
    m = np.maximum(np.asarray(m, dtype=np.float64), 0.0)
    m = m - m.min(axis=(-2, -1), keepdims=True)
    return m / (m.max(axis=(-2, -1), keepdims=True) + 1e-8)


def direct_grads(module: PotPlantGAP, x: torch.Tensor, layer: str, target: int) -> tuple[np.ndarray, np.ndarray]:
    """A and dy_target/dA by a plain forward pass split at the layer: (B, K, h, w) float64 each."""
    i = LAYER_INDEX[layer]
    a = module.conv_layers[:i](x).detach().requires_grad_(True)
    logits = module.fc(module.gap(module.conv_layers[i:](a)).flatten(1))
    (g,) = torch.autograd.grad(logits[:, target].sum(), a)
    return a.detach().double().numpy(), g.double().numpy()


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - b).max() / max(float(np.abs(b).max()), 1e-300))


@pytest.fixture(scope="module")
def tc_module(state_dict: dict[str, torch.Tensor]) -> PotPlantGAP:
    """torchcam registers hooks on the module it is given: it gets its own copy of the weights."""
    return build_module(state_dict)


@pytest.fixture(scope="module")
def inputs(images: list[np.ndarray]) -> tuple[list[LoadedImage], torch.Tensor]:
    loaded = [load_image(im) for im in images[:2]]
    return loaded, torch.cat([im.tensor() for im in loaded])  # (2, 3, 256, 256)


@pytest.fixture(scope="module")
def maps_by_layer(fixture_model: CamModel, inputs: tuple[list[LoadedImage], torch.Tensor]) -> dict[str, np.ndarray]:
    """layer -> (method, B, H, W) raw maps for class TARGET, all gradient methods from one call."""
    loaded, _ = inputs
    out = {}
    for layer in LAYER_INDEX:
        rs = explain_batch(fixture_model, loaded, TARGET, (*GRAD_METHODS, "eigencam"), layer)
        out[layer] = np.stack([np.stack([r.maps[m] for r in rs]) for m in (*GRAD_METHODS, "eigencam")])
    return out


def method_map(maps: np.ndarray, name: str) -> np.ndarray:
    return maps[(*GRAD_METHODS, "eigencam").index(name)]


def test_registry_names_and_requirements() -> None:
    assert list(METHODS) == ["cam", "gradcam", "gradcam++", "hirescam", "xgradcam", "layercam", "scorecam", "eigencam"]
    for name, spec in METHODS.items():
        assert spec.key == name
        assert spec.fn.__doc__ and spec.reference.split()[0] in spec.fn.__doc__  # first author cited
        assert re.search(rf"\b{spec.year}\b", spec.reference)  # the title's year is the paper's
        assert f"({spec.year}" in spec.fn.__doc__ or f" {spec.year}" in spec.fn.__doc__
        assert spec.gap_only == (name == "cam")
        assert spec.needs_model == (name == "scorecam")
        assert spec.needs_gradients == (name in GRAD_METHODS)
        assert spec.class_specific == (name != "eigencam")


@pytest.mark.parametrize("layer", list(LAYER_INDEX))
@pytest.mark.parametrize(("name", "cls"), [("xgradcam", XGradCAM), ("layercam", LayerCAM)])
def test_matches_torchcam(
    tc_module: PotPlantGAP,
    inputs: tuple[list[LoadedImage], torch.Tensor],
    maps_by_layer: dict[str, np.ndarray],
    layer: str,
    name: str,
    cls: type,
) -> None:
    _, x = inputs
    with cls(tc_module, LAYER_ALIASES[layer], input_shape=(3, INPUT_SIZE, INPUT_SIZE)) as extractor:
        scores = tc_module(x)
        (theirs,) = extractor(class_idx=TARGET, scores=scores)  # (B, H, W), ReLU + normalised
    ours = method_map(maps_by_layer[layer], name)
    assert np.abs(tc_normalize(ours) - theirs.numpy()).max() < 1e-4
    assert hook_count(tc_module) == 0


@pytest.mark.parametrize("layer", list(LAYER_INDEX))
def test_hirescam_gradcampp_xgradcam_eigencam_match_direct_formulas(
    fixture_model: CamModel,
    inputs: tuple[list[LoadedImage], torch.Tensor],
    maps_by_layer: dict[str, np.ndarray],
    layer: str,
) -> None:
    _, x = inputs
    a, g = direct_grads(fixture_model.module, x[:1], layer, TARGET)  # (1, K, h, w) float64
    maps = maps_by_layer[layer][:, :1]  # the first image: float64 copies of 64 x 256^2 are not cheap

    hires = (g * a).sum(axis=1)
    assert rel_err(method_map(maps, "hirescam"), hires) < 1e-5

    s = a.sum(axis=(2, 3), keepdims=True)  # (B, K, 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Eq. 19 of Chattopadhay et al. in full, as pytorch-grad-cam writes it
        aij = np.where(g != 0, g**2 / (2 * g**2 + s * g**3), 0.0)
        alpha_x = np.where(s > 0, (g * a).sum(axis=(2, 3), keepdims=True) / s, 0.0)
    alpha_pp = (aij * np.maximum(g, 0)).sum(axis=(2, 3), keepdims=True)
    assert rel_err(method_map(maps, "gradcam++"), (alpha_pp * a).sum(axis=1)) < 1e-4
    assert rel_err(method_map(maps, "xgradcam"), (alpha_x * a).sum(axis=1)) < 1e-4  # float32 sums of 64K pixels

    for b in range(a.shape[0]):
        o = a[b].reshape(a.shape[1], -1).T  # (hw, K)
        _, _, vt = np.linalg.svd(o, full_matrices=False)
        proj = o @ vt[0]
        proj *= 1.0 if proj @ o.mean(axis=1) >= 0 else -1.0
        assert rel_err(method_map(maps, "eigencam")[b].ravel(), proj) < 1e-4


def test_torchcam_gradcampp_is_not_the_paper_formula(
    tc_module: PotPlantGAP, inputs: tuple[list[LoadedImage], torch.Tensor], maps_by_layer: dict[str, np.ndarray]
) -> None:
    """Why Grad-CAM++ is checked against the paper rather than torchcam: torchcam 0.5.0 divides a copy
    (boolean indexing), so its coefficient is g^2 instead of g^2 / (2 g^2 + S g^3). If this starts to
    fail, torchcam was fixed and can become the reference."""
    _, x = inputs
    with GradCAMpp(tc_module, LAYER_ALIASES["conv2"], input_shape=(3, INPUT_SIZE, INPUT_SIZE)) as extractor:
        (theirs,) = extractor(class_idx=TARGET, scores=tc_module(x))
    a, g = direct_grads(tc_module, x, "conv2", TARGET)
    g_squared = ((g**2 * np.maximum(g, 0)).sum(axis=(2, 3), keepdims=True) * a).sum(axis=1)
    assert np.abs(tc_normalize(g_squared) - theirs.numpy()).max() < 1e-4
    assert np.abs(tc_normalize(method_map(maps_by_layer["conv2"], "gradcam++")) - theirs.numpy()).max() > 0.05


@pytest.mark.parametrize("layer", ["conv1", "conv3"])
def test_scorecam_matches_torchcam_in_batches(fixture_model: CamModel, tc_module: PotPlantGAP, layer: str) -> None:
    """At 32x32 (the network is fully convolutional) to keep the 2 x K masked passes cheap."""
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    classes = [1, 3]
    with ScoreCAM(tc_module, LAYER_ALIASES[layer], batch_size=7, input_shape=(3, 32, 32)) as extractor:
        with torch.no_grad():
            tc_module(x)
        (theirs,) = extractor(class_idx=classes)
    a, _ = direct_grads(fixture_model.module, x, layer, 0)
    n = 2 * a.shape[1]  # one masked pass per image and channel
    made = []
    for bs in (5, 32):
        calls: list[tuple[int, int]] = []

        def record(done: int, total: int, calls: list[tuple[int, int]] = calls) -> None:
            calls.append((done, total))

        mi = MethodInputs(
            activations=torch.from_numpy(a).float(),
            targets=torch.tensor(classes).unsqueeze(1),
            fc_weight=fixture_model.module.classifier.weight.detach(),
            score_fn=fixture_model.module,
            inputs=x,
            progress=record,
            batch_size=bs,
        )
        with torch.no_grad():
            made.append(scorecam(mi)[:, 0].numpy())
        assert calls == [(min(i + bs, n), n) for i in range(0, n, bs)]
    np.testing.assert_allclose(made[0], made[1], rtol=1e-6, atol=1e-7)  # batching changes nothing
    assert np.abs(tc_normalize(made[0]) - theirs.numpy()).max() < 1e-4


def test_scorecam_through_explain_reads_every_class_from_one_set_of_passes(
    fixture_model: CamModel, images: list[np.ndarray]
) -> None:
    calls: list[tuple[int, int]] = []
    r = explain(
        fixture_model,
        images[0],
        methods=("scorecam",),
        layer="conv1",
        all_classes=True,
        progress=lambda done, total: calls.append((done, total)),
    )
    k = 16  # conv1 channels
    assert calls[-1] == (k, k) and all(t == k for _, t in calls)  # K passes, not K x classes
    rows = r.class_maps["scorecam"]  # (C, H, W)
    assert rows.shape == (len(CLASS_NAMES), INPUT_SIZE, INPUT_SIZE) and np.all(rows >= 0)
    # Softmax weights sum to 1 per class, so every map is a convex mix of the same channels
    a, _ = direct_grads(fixture_model.module, r.image.tensor(), "conv1", 0)  # type: ignore[union-attr]
    assert rows.max() <= a.max() * (1 + 1e-5)
    assert not equal_up_to_positive_scale(rows[0], rows[1])


def test_identities_at_the_gap_layer(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    """At conv3 dy_c/dA^k = w_k^c / (h w): HiResCAM = XGrad-CAM = Grad-CAM = CAM / (h w) for every
    class; Grad-CAM++ and LayerCAM drop the negative weights and differ."""
    for img in images[1:2]:
        r = explain(fixture_model, img, methods=("cam", *GRAD_METHODS), all_classes=True)
        for c in range(len(CLASS_NAMES)):
            m = r.for_target(c).maps
            for name in ("hirescam", "xgradcam", "gradcam"):
                assert rel_err(m[name] * HW, m["cam"]) < 1e-5, name
                assert equal_up_to_positive_scale(m[name], m["cam"])
            assert not equal_up_to_positive_scale(m["gradcam++"], m["cam"])
            assert not equal_up_to_positive_scale(m["layercam"], m["cam"])
            names, corr = method_correlations(r.for_target(c))
            i, j = names.index("cam"), names.index("hirescam")
            assert corr[i, j] == pytest.approx(1.0, abs=1e-6)
            assert corr[i, names.index("layercam")] < 1.0 - 1e-4


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_methods_part_ways_before_the_gap_layer(maps_by_layer: dict[str, np.ndarray], layer: str) -> None:
    maps = maps_by_layer[layer]
    for b in range(maps.shape[1]):
        for i, first in enumerate(GRAD_METHODS):
            for second in GRAD_METHODS[i + 1 :]:
                assert not equal_up_to_positive_scale(method_map(maps, first)[b], method_map(maps, second)[b]), (
                    first,
                    second,
                )


def test_xgradcam_zero_channel_and_gradcampp_tiny_gradients_stay_finite() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, 4, 5, generator=g)
    a[0, 1] = 0.0  # a dead channel: S_k = 0
    grads = torch.randn(1, 2, 3, 4, 5, generator=g)
    mi = MethodInputs(activations=a, targets=torch.tensor([[0, 1]]), fc_weight=torch.zeros(2, 3), gradients=grads)
    got = xgradcam(mi)
    alive = [0, 2]
    alpha = (grads[:, :, alive] * a[:, alive].unsqueeze(1)).sum((-2, -1)) / a[:, alive].sum((-2, -1)).unsqueeze(1)
    expected = torch.einsum("btk,bkhw->bthw", alpha, a[:, alive])
    assert torch.isfinite(got).all() and torch.allclose(got, expected, rtol=1e-5, atol=1e-7)

    tiny = MethodInputs(
        activations=a, targets=torch.tensor([[0, 1]]), fc_weight=torch.zeros(2, 3), gradients=grads * 1e-25
    )
    pp = gradcam_pp(tiny)  # g^2 underflows to 0 in float32; a = 1 / (2 + S g) ~ 1/2 needs no g^2
    half = torch.einsum("btk,bkhw->bthw", (grads * 1e-25).clamp(min=0).sum((-2, -1)) / 2, a)
    assert torch.isfinite(pp).all() and torch.allclose(pp, half, rtol=1e-5)


def test_eigencam_is_class_agnostic_and_sign_fixed() -> None:
    g = torch.Generator().manual_seed(1)
    a = torch.rand(2, 6, 5, 7, generator=g)
    mi = MethodInputs(activations=a, targets=torch.tensor([[0, 2], [1, 3]]), fc_weight=torch.zeros(4, 6))
    m = eigencam(mi)  # (2, 2, 5, 7)
    assert torch.equal(m[:, 0], m[:, 1])
    assert ((m[:, 0] * a.mean(dim=1)).sum(dim=(-2, -1)) >= 0).all()
    # Negating the activations negates the eigenvector's data, not the rule: still agrees with the mean
    m_neg = eigencam(MethodInputs(activations=-a, targets=mi.targets, fc_weight=mi.fc_weight))
    assert ((m_neg[:, 0] * (-a).mean(dim=1)).sum(dim=(-2, -1)) >= 0).all()
    assert torch.allclose(m_neg, -m, rtol=1e-5, atol=1e-6)


def test_missing_inputs_are_refused_with_a_reason() -> None:
    a = torch.rand(1, 2, 3, 3)
    bare = MethodInputs(activations=a, targets=torch.tensor([[0]]), fc_weight=torch.zeros(1, 2))
    for name in GRAD_METHODS:
        with pytest.raises(ValueError, match=re.escape(f"{name} needs gradients; the caller must capture them")):
            METHODS[name].fn(bare)
    with pytest.raises(ValueError, match="scorecam runs the network on masked inputs; the caller must pass"):
        scorecam(bare)


def test_one_display_name_and_title_per_method() -> None:
    shown = {m: display_name(m) for m in METHODS}
    assert shown == {
        "cam": "CAM",
        "gradcam": "Grad-CAM",
        "gradcam++": "Grad-CAM++",
        "hirescam": "HiResCAM",
        "xgradcam": "XGrad-CAM",
        "layercam": "LayerCAM",
        "scorecam": "Score-CAM",
        "eigencam": "Eigen-CAM",
    }
    assert method_title("gradcam++") == "Grad-CAM++ (2018)" and method_title("cam") == "CAM (2016)"
    assert len(set(shown.values())) == len(METHODS)
    with pytest.raises(MethodError, match=r"Unknown method 'gradcamm'\. Available methods: cam, gradcam"):
        display_name("gradcamm")


def test_refusals_are_cam_errors() -> None:
    a = torch.rand(1, 2, 3, 3)
    bare = MethodInputs(activations=a, targets=torch.tensor([[0]]), fc_weight=torch.zeros(1, 2))
    with pytest.raises(MethodError):
        METHODS["gradcam"].fn(bare)
    full = MethodInputs(a, torch.tensor([[0]]), torch.zeros(1, 2), None, lambda b: b.sum(dim=(2, 3)), a, None, 0)
    with pytest.raises(SettingError, match="scorecam batch_size must be at least 1, got 0"):
        scorecam(full)
