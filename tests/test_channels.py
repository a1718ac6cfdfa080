"""The channel decomposition against an independent computation: the network's pieces run with
plain torch functions from the state dict, and autograd on a fresh graph."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cam import LayerError, TargetError, explain, load_image, load_model
from cam.capture import hook_count
from cam.channels import ChannelDecomposition, ChannelError, decompose
from cam.images import LoadedImage
from cam.model import CamModel
from cam.network import CLASS_NAMES, INPUT_SIZE, PixelError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONVS = ("conv_layers.0", "conv_layers.2", "conv_layers.4")
LAYERS = ("conv1", "conv2", "conv3")
HW = INPUT_SIZE * INPUT_SIZE
PIXELS = [(0, 0), (255, 255), (17, 200), (128, 64), (250, 3)]


@pytest.fixture(scope="module")
def bundled() -> CamModel:
    return load_model("bundled")


@pytest.fixture(params=["fixture", "bundled"])
def model(request: pytest.FixtureRequest) -> CamModel:
    name = "fixture_model" if request.param == "fixture" else "bundled"
    return request.getfixturevalue(name)


@pytest.fixture(scope="module")
def photos(images: list[np.ndarray]) -> list[LoadedImage]:
    """Two example photos and two seeded test images, loaded once."""
    return [load_image(EXAMPLES / "greg_2.jpg"), load_image(EXAMPLES / "rudo_1.jpg"), load_image(images[1])]


@dataclass
class Reference:
    logits: np.ndarray  # (C,) float64
    acts: np.ndarray  # (K, H, W) float64
    gap: np.ndarray  # (K,)
    alpha: np.ndarray  # (C, K) mean gradient


def independent(model: CamModel, image: LoadedImage, layer: str) -> Reference:
    """The network rebuilt from its state dict in float64, and dy_c/dA from a fresh graph per class."""
    sd = {k: v.detach().double() for k, v in model.module.state_dict().items()}
    x = torch.from_numpy(np.asarray(image.model_input, dtype=np.float64) / 255.0).permute(2, 0, 1)[None]
    stop = LAYERS.index(layer)
    h = x
    for path in CONVS[: stop + 1]:
        h = F.relu(F.conv2d(h, sd[f"{path}.weight"], sd[f"{path}.bias"], padding=1))
    a = h.clone().requires_grad_(True)
    h = a
    for path in CONVS[stop + 1 :]:
        h = F.relu(F.conv2d(h, sd[f"{path}.weight"], sd[f"{path}.bias"], padding=1))
    logits = h.mean(dim=(2, 3)) @ sd["fc.1.weight"].T + sd["fc.1.bias"]  # (1, C)
    alpha = []
    for c in range(len(CLASS_NAMES)):
        (g,) = torch.autograd.grad(logits[0, c], a, retain_graph=True)
        alpha.append(g[0].mean(dim=(1, 2)).numpy())
    acts = a.detach()[0].numpy()
    return Reference(logits[0].detach().numpy(), acts, acts.mean(axis=(1, 2)), np.stack(alpha))


def close(a: np.ndarray | float, b: np.ndarray | float, rtol: float, scale: float | None = None) -> bool:
    """|a - b| <= rtol * scale elementwise (scale: max |b| unless given)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    s = float(np.abs(b).max()) if scale is None else scale
    return bool(np.all(np.abs(a - b) <= rtol * max(s, 1e-30)))


def test_conv3_sum_of_contributions_is_the_logit(model: CamModel, photos: list[LoadedImage]) -> None:
    fc = model.module.classifier
    for image in photos:
        d = decompose(model, image, "conv3")
        ref = independent(model, image, "conv3")
        assert d.weights is not None and d.is_gap_layer
        assert np.array_equal(d.weights, fc.weight.detach().numpy())  # weight == the fc row, bit for bit
        assert np.array_equal(d.bias, fc.bias.detach().numpy())
        assert close(d.activations, ref.acts, 1e-5)
        assert close(d.gap, ref.gap, 1e-5)
        for c in range(len(CLASS_NAMES)):
            contrib = d.contributions(c)
            assert contrib is not None
            terms = np.abs(contrib).sum() + abs(float(d.bias[c]))  # the sum's own rounding scale
            assert close(contrib.sum() + d.bias[c], ref.logits[c], 1e-5, scale=max(abs(ref.logits[c]), terms))
            assert close(d.logits[c], ref.logits[c], 1e-5, scale=max(abs(ref.logits[c]), terms))
            assert np.allclose(d.alpha[c] * d.hw, d.weights[c], rtol=1e-4, atol=1e-7)  # alpha_hw == weight
            assert close(d.alpha[c], ref.alpha[c], 1e-4)
            assert d.partial_logit(c, d.n_channels) == pytest.approx(float(contrib.sum() + d.bias[c]), abs=1e-12)
            assert close(d.partial_logit(c, d.n_channels), ref.logits[c], 1e-5, scale=max(abs(ref.logits[c]), terms))


def test_conv3_pixel_terms_and_partial_cam_rebuild_the_cam_map(model: CamModel, photos: list[LoadedImage]) -> None:
    for image in photos[:3]:
        d = decompose(model, image, "conv3")
        r = explain(model, image, methods=("cam",), all_classes=True)
        for c in range(len(CLASS_NAMES)):
            cam = r.for_target(c).maps["cam"]
            scale = float(np.abs(cam).max())
            assert close(d.partial_cam(c, 64), cam, 1e-5, scale)
            for x, y in PIXELS:
                terms = d.pixel_terms(c, x, y)
                assert terms.shape == (64,)
                assert close(terms.sum(), cam[y, x], 1e-5, scale)  # numpy [row, column] = [y, x]
                assert d.cam_at(c, x, y) == pytest.approx(float(terms.sum()))


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_earlier_layers_have_no_weights_and_the_independent_alpha(
    model: CamModel, photos: list[LoadedImage], layer: str
) -> None:
    for image in photos[:1]:  # float64 reference convolutions are slow: one photo per model and layer
        d = decompose(model, image, layer)
        ref = independent(model, image, layer)
        k = {"conv1": 16, "conv2": 32}[layer]
        assert d.weights is None and not d.is_gap_layer and d.activations.shape == (k, INPUT_SIZE, INPUT_SIZE)
        assert close(d.activations, ref.acts, 1e-5)
        gradcam = explain(model, image, methods=("gradcam",), layer=layer, all_classes=True)
        for c in range(len(CLASS_NAMES)):
            assert d.contributions(c) is None and d.cam_at(c, 3, 4) is None
            assert close(d.alpha[c], ref.alpha[c], 1e-4)  # Grad-CAM's mean gradient, from a fresh graph
            gc = gradcam.for_target(c).maps["gradcam"]
            assert close(d.partial_cam(c, k), gc, 1e-4)  # all channels: the raw Grad-CAM map
            assert close(d.pixel_terms(c, 9, 200).sum(), gc[200, 9], 1e-4, float(np.abs(gc).max()))
        with pytest.raises(LayerError, match="only at 'conv3'"):
            d.partial_logit(0, 3)


def test_order_is_largest_first_and_partial_sums_use_it(fixture_model: CamModel, photos: list[LoadedImage]) -> None:
    d = decompose(fixture_model, photos[0], "conv3")
    for c in range(len(CLASS_NAMES)):
        contrib = d.contributions(c)
        assert contrib is not None
        order = d.order(c)
        assert sorted(order.tolist()) == list(range(64))
        assert np.all(np.diff(contrib[order]) <= 0)
        for k in (0, 1, 5, 63):
            assert d.partial_logit(c, k) == pytest.approx(float(np.sort(contrib)[::-1][:k].sum() + d.bias[c]))
            top = order[:k]
            expected = np.tensordot(d.weights[c, top], d.activations[top], axes=1) if k else 0.0  # type: ignore[index]
            assert np.allclose(d.partial_cam(c, k), expected, atol=1e-5)
    early = decompose(fixture_model, photos[0], "conv2")
    terms = early.alpha[1] * early.gap  # Grad-CAM's channel terms alpha_k F^k
    assert np.all(np.diff(terms[early.order(1)]) <= 0)


def test_to_json_has_the_issue_13_schema(fixture_model: CamModel, photos: list[LoadedImage]) -> None:
    d = decompose(fixture_model, photos[0], "conv3")
    out = d.to_json("greg", (17, 200))
    json.dumps(out, allow_nan=False)
    assert set(out) == {"class", "layer", "logit", "bias", "channels", "pixel"}
    assert out["class"] == "greg" and out["layer"] == "conv3"
    assert out["logit"] == pytest.approx(float(d.logits[2])) and out["bias"] == pytest.approx(float(d.bias[2]))
    assert [ch["k"] for ch in out["channels"]] == list(range(64))  # channel order, not contribution order
    for ch in out["channels"]:
        assert set(ch) == {"k", "weight", "gap", "contribution", "alpha", "alpha_hw"}
        assert ch["contribution"] == pytest.approx(ch["weight"] * ch["gap"])
        assert ch["alpha_hw"] == pytest.approx(ch["weight"], rel=1e-4, abs=1e-7)
    assert sum(ch["contribution"] for ch in out["channels"]) + out["bias"] == pytest.approx(out["logit"], abs=1e-5)
    px = out["pixel"]
    assert set(px) == {"x", "y", "cam", "terms"} and (px["x"], px["y"]) == (17, 200)
    assert len(px["terms"]) == 64 and sum(px["terms"]) == pytest.approx(px["cam"], abs=1e-6)
    assert d.to_json(2)["pixel"] is None

    early = decompose(fixture_model, photos[0], "conv1").to_json("predicted", (5, 6))
    json.dumps(early, allow_nan=False)
    assert len(early["channels"]) == 16 and early["layer"] == "conv1"
    assert all(ch["weight"] is None and ch["contribution"] is None for ch in early["channels"])
    assert early["pixel"]["cam"] is None and len(early["pixel"]["terms"]) == 16


def test_refusals_are_clear(fixture_model: CamModel, photos: list[LoadedImage]) -> None:
    d = decompose(fixture_model, photos[0])
    for bad in [(256, 0), (-1, 5), (3, 1000), (2.0, 3)]:
        with pytest.raises(PixelError, match="from 0 to 255"):
            d.to_json(0, bad)  # type: ignore[arg-type]
        with pytest.raises(PixelError):
            d.pixel_terms(0, *bad)  # type: ignore[arg-type]
    with pytest.raises(ChannelError, match="pair"):
        d.to_json(0, (1, 2, 3))  # type: ignore[arg-type]
    for k in (-1, 65, 2.5, True):
        with pytest.raises(ChannelError, match="from 0 to 64"):
            d.partial_cam(0, k)  # type: ignore[arg-type]
    with pytest.raises(TargetError):
        d.contributions("cactus")
    with pytest.raises(LayerError):
        decompose(fixture_model, photos[0], "conv9")
    assert isinstance(ChannelError("x"), ValueError)


def test_arrays_are_read_only_and_memory_is_reported(fixture_model: CamModel, photos: list[LoadedImage]) -> None:
    d = decompose(fixture_model, photos[0])
    with pytest.raises(ValueError):
        d.activations[0, 0, 0] = 1.0
    with pytest.raises(ValueError):
        d.weights[0, 0] = 1.0  # type: ignore[index]
    assert d.nbytes >= 64 * HW * 4 and d.nbytes < 64 * HW * 4 + 10_000
    assert decompose(fixture_model, photos[0], "conv1").nbytes < 16 * HW * 4 + 10_000


def _snapshot(model: CamModel) -> Iterator[bytes]:
    for t in model.module.state_dict().values():
        yield t.numpy().tobytes()


def test_shared_model_is_untouched(fixture_model: CamModel, photos: list[LoadedImage]) -> None:
    before = list(_snapshot(fixture_model))
    for layer in LAYERS:
        decompose(fixture_model, photos[1], layer)
    assert list(_snapshot(fixture_model)) == before
    assert hook_count(fixture_model.module) == 0 and not fixture_model.module.training
    assert all(p.grad is None for p in fixture_model.module.parameters())


def test_concurrent_decompositions_do_not_mix(fixture_model: CamModel, photos: list[LoadedImage]) -> None:
    expected = {i: decompose(fixture_model, photos[i], "conv2") for i in range(2)}
    got: dict[int, list[ChannelDecomposition]] = {0: [], 1: []}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(3):
                got[i].append(decompose(fixture_model, photos[i], "conv2"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, runs in got.items():
        for d in runs:
            assert np.array_equal(d.activations, expected[i].activations)
            assert np.allclose(d.alpha, expected[i].alpha, rtol=1e-6, atol=1e-12)
