"""Deletion / insertion curves and Average Drop / Increase in Confidence.

The central case is a hand-built network whose class-0 logit is linear in the pixels,
y_0 = s mean_p(a . x(p)) + b_0, with the other logits constant. Its CAM is s a . x(p): exactly each
pixel's contribution to the logit, so the deletion curve is known in closed form, must fall
monotonically, and must beat any other pixel order, the random one included.
"""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
import torch

from cam import explain
from cam.capture import hook_count
from cam.faithfulness import (
    RANDOM,
    average_drop_increase,
    baseline_image,
    evaluate_maps,
    faithfulness_summary,
    forward_passes,
    gaussian_blur,
    pixel_ranks,
    random_map,
    step_counts,
    trapezoid,
)
from cam.model import CamModel, Provenance
from cam.network import PotPlantGAP
from cam.render import scale_map

A = np.array([0.5, 0.3, 0.2])  # colour weights of the linear model
S, B0 = 8.0, -2.0  # y_0 = S mean(a . x) + B0; the other three logits are 0


@pytest.fixture(scope="module")
def linear_model() -> CamModel:
    net = PotPlantGAP()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        convs = [m for m in net.conv_layers if isinstance(m, torch.nn.Conv2d)]  # the three 3x3 convs
        convs[0].weight[0, :, 1, 1] = torch.tensor(A, dtype=torch.float32)  # channel 0 = a . x >= 0
        convs[1].weight[0, 0, 1, 1] = 1.0  # passed on unchanged (ReLU of a non-negative value)
        convs[2].weight[0, 0, 1, 1] = 1.0
        net.classifier.weight[0, 0] = S
        net.classifier.bias[0] = B0
    prov = Provenance(source="file", requested="test", path="<memory>", sha256="0" * 64, size=0)
    return CamModel(module=net.eval(), provenance=prov)


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(0))


def contributions(x: torch.Tensor) -> np.ndarray:
    """(H, W) a . x(p) in float64: pixel p adds S * this / (H W) to the class-0 logit."""
    return np.einsum("c,chw->hw", A, x[0].double().numpy())


def p0(logit0: np.ndarray) -> np.ndarray:
    return np.exp(logit0) / (np.exp(logit0) + 3.0)


def forward_p0(model: CamModel, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(model.module(x).double(), dim=1)[:, 0].numpy()


def test_linear_model_has_the_logit_we_built(linear_model: CamModel, image: torch.Tensor) -> None:
    expected = S * contributions(image).mean() + B0
    with torch.no_grad():
        logits = linear_model.module(image)[0].double().numpy()
    np.testing.assert_allclose(logits, [expected, 0, 0, 0], rtol=1e-6, atol=1e-6)


def test_deletion_curve_is_the_closed_form_and_falls(linear_model: CamModel, image: torch.Tensor) -> None:
    c = contributions(image)  # the true contributions; the map S * c is the CAM of this model
    n_steps = 12
    r = evaluate_maps(linear_model, image, {"cam": S * c}, 0, n_steps=n_steps, batch_size=5, random_seed=None)
    curve = r.scores["cam"].deletion
    hw = c.size
    counts = step_counts(hw, n_steps)
    top_first = np.sort(c.ravel())[::-1]
    removed = np.r_[0.0, np.cumsum(top_first)][counts]  # sum of the k_i largest contributions
    expected = p0(S * (c.sum() - removed) / hw + B0)
    np.testing.assert_allclose(curve.fractions, counts / hw)
    np.testing.assert_allclose(curve.probabilities, expected, rtol=1e-5)
    assert np.all(np.diff(curve.probabilities) <= 1e-12)  # non-increasing


def test_random_and_reversed_orders_are_worse_than_cam(linear_model: CamModel, image: torch.Tensor) -> None:
    c = contributions(image)
    maps = {"cam": S * c, "reversed": -c}
    r = evaluate_maps(linear_model, image, maps, 0, n_steps=16, insertion_baseline="black", random_seed=3)
    cam, rnd, rev = r.scores["cam"], r.scores[RANDOM], r.scores["reversed"]
    assert cam.deletion.auc < rnd.deletion.auc < rev.deletion.auc  # deletion: lower is better
    assert cam.insertion.auc > rnd.insertion.auc > rev.insertion.auc  # insertion: higher is better
    for s in r.scores.values():
        for curve in (s.deletion, s.insertion):
            assert 0.0 <= curve.auc <= 1.0
            assert curve.auc == pytest.approx(trapezoid(curve.probabilities, curve.fractions))
    # Ends are shared: the unchanged image, the black image
    (full, black) = forward_p0(linear_model, torch.cat([image, torch.zeros_like(image)]))
    for s in r.scores.values():
        assert s.deletion.probabilities[0] == s.insertion.probabilities[-1] == r.probability
        assert s.deletion.probabilities[-1] == s.insertion.probabilities[0]
    assert r.probability == pytest.approx(full, rel=1e-9) and cam.deletion.probabilities[-1] == pytest.approx(black)


def test_insertion_starts_from_the_blurred_image(linear_model: CamModel, image: torch.Tensor) -> None:
    c = contributions(image)
    curve = evaluate_maps(linear_model, image, {"m": c}, 0, n_steps=4, random_seed=None).scores["m"].insertion
    blurred = forward_p0(linear_model, gaussian_blur(image))[0]
    assert curve.probabilities[0] == pytest.approx(blurred, rel=1e-9)
    assert curve.probabilities[-1] == pytest.approx(forward_p0(linear_model, image)[0], rel=1e-9)
    # At step 2 the top half of the pixels are the image's, the rest the blurred image's
    k = step_counts(c.size, 4)[2]
    half = pixel_ranks(c) < int(k)  # (H, W) bool
    mixed = torch.where(half, image, gaussian_blur(image))
    assert curve.probabilities[2] == pytest.approx(forward_p0(linear_model, mixed)[0], rel=1e-9)


def test_blur_is_the_documented_gaussian() -> None:
    """Independent check with OpenCV: 11x11 Gaussian, sigma 5, reflected borders (REFLECT_101)."""
    img = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    ours = gaussian_blur(torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0))[0].permute(1, 2, 0).numpy()
    theirs = cv2.GaussianBlur(img, (11, 11), 5.0, borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert torch.equal(baseline_image(torch.ones(1, 3, 4, 4), "black"), torch.zeros(1, 3, 4, 4))


def test_average_drop_by_hand() -> None:
    # drops: (0.8 - 0.4) / 0.8 = 0.5, 0 (increase), 0 (tie) -> 100 * 0.5 / 3; increases: 1 of 3
    drop, inc = average_drop_increase([0.8, 0.5, 0.2], [0.4, 0.6, 0.2])
    assert drop == pytest.approx(100 * 0.5 / 3)
    assert inc == pytest.approx(100 / 3)
    assert average_drop_increase([0.5], [0.5]) == (0.0, 0.0)
    assert average_drop_increase([0.25], [0.0]) == (100.0, 0.0)
    with pytest.raises(ValueError, match="two equally long, non-empty lists of probabilities; got 2 and 1"):
        average_drop_increase([0.5, 0.4], [0.3])
    with pytest.raises(ValueError, match=re.escape("unchanged images must be positive (Average Drop divides")):
        average_drop_increase([0.0], [0.3])


def test_average_drop_uses_the_scaled_map_times_the_image(linear_model: CamModel, image: torch.Tensor) -> None:
    c = contributions(image)
    signed = c - c.mean()  # half the pixels negative: the ReLU matters
    r = evaluate_maps(linear_model, image, {"m": signed}, 0, n_steps=2, random_seed=None)
    explained = torch.from_numpy(scale_map(signed.astype(np.float32))) * image
    o = forward_p0(linear_model, explained)[0]
    assert r.scores["m"].explanation_probability == pytest.approx(o, rel=1e-9)
    y = r.probability
    assert r.average_drop("m") == pytest.approx(100 * max(0.0, y - o) / y)
    assert r.increased("m") == (o > y)


def test_step_counts_ranks_and_random_map() -> None:
    assert step_counts(10, 4).tolist() == [0, 2, 5, 8, 10]  # round half to even: 2.5 -> 2, 7.5 -> 8
    assert step_counts(7, 7).tolist() == list(range(8))
    for bad in (0, 11):
        with pytest.raises(ValueError, match=f"n_steps must be between 1 and the number of pixels \\(10\\); got {bad}"):
            step_counts(10, bad)
    ranks = pixel_ranks(np.array([[0.5, 2.0], [0.5, -1.0]]))
    assert ranks.tolist() == [[1, 0], [2, 3]]  # ties keep pixel order
    with pytest.raises(ValueError, match="contains NaN or infinite values"):
        pixel_ranks(np.array([[0.0, np.nan]]))
    assert np.array_equal(random_map((5, 6), 7), random_map((5, 6), 7))
    assert not np.array_equal(random_map((5, 6), 7), random_map((5, 6), 8))


def test_batch_size_does_not_change_results(linear_model: CamModel, image: torch.Tensor) -> None:
    c = contributions(image)
    one = evaluate_maps(linear_model, image, {"m": c}, 0, n_steps=6, batch_size=1)
    many = evaluate_maps(linear_model, image, {"m": c}, 0, n_steps=6, batch_size=64)
    for name in ("m", RANDOM):
        a, b = one.scores[name], many.scores[name]
        np.testing.assert_allclose(a.deletion.probabilities, b.deletion.probabilities, rtol=1e-9)
        np.testing.assert_allclose(a.insertion.probabilities, b.insertion.probabilities, rtol=1e-9)


def test_refusals(linear_model: CamModel, image: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=re.escape("The map is (5, 5) but the model input is (16, 20); resize")):
        evaluate_maps(linear_model, image, {"m": np.zeros((5, 5))}, 0)
    with pytest.raises(ValueError, match="Unknown baseline 'grey'; choose 'black'"):
        evaluate_maps(linear_model, image, {"m": np.zeros((16, 20))}, 0, deletion_baseline="grey")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="A map is named 'random', the name of the random baseline; rename it"):
        evaluate_maps(linear_model, image, {RANDOM: np.zeros((16, 20))}, 0)
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        evaluate_maps(linear_model, image, {"m": np.zeros((16, 20))}, 0, batch_size=0)


def test_course_shaped_model_at_256(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    """On the real input size: AUCs in [0, 1], the progress count exact, the shared model untouched."""
    r = explain(fixture_model, images[0], methods=("cam", "gradcam"))
    calls: list[tuple[int, int]] = []
    res = evaluate_maps(
        fixture_model,
        r.image,
        r.maps,
        "predicted",
        n_steps=4,  # type: ignore[arg-type]
        progress=lambda done, total: calls.append((done, total)),
    )
    assert res.target_index == r.target_index
    assert res.probability == pytest.approx(r.probabilities[r.target], rel=1e-5)
    total = 3 + 3 * (2 * 3 + 1)  # shared ends + (interior deletion, interior insertion, L * I) per map
    assert calls[-1] == (total, total) and len(calls) == 4
    for s in res.scores.values():
        assert 0.0 <= s.deletion.auc <= 1.0 and 0.0 <= s.insertion.auc <= 1.0
    # Grad-CAM = CAM / (h w) at conv3: the same pixel order, the same curves (float32 near-ties aside)
    cam, gradcam = res.scores["cam"], res.scores["gradcam"]
    np.testing.assert_allclose(cam.deletion.probabilities, gradcam.deletion.probabilities, rtol=1e-4)
    np.testing.assert_allclose(cam.insertion.probabilities, gradcam.insertion.probabilities, rtol=1e-4)
    module = fixture_model.module
    assert not module.training and hook_count(module) == 0
    assert all(p.grad is None for p in module.parameters())


def test_summary_for_the_cli(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    seen: list[tuple[int, int]] = []
    out = faithfulness_summary(
        fixture_model, images[:2], ("cam",), n_steps=2, seed=5, progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(1, 2), (2, 2)]
    assert out["n_images"] == 2 and list(out["methods"]) == ["cam", RANDOM]
    assert out["settings"]["deletion_baseline"] == "black"
    assert out["settings"]["insertion_baseline"] == "blur (Gaussian 11x11, sigma 5)"
    assert out["settings"]["probability"] == "softmax probability of the target class"
    for name, m in out["methods"].items():
        per = [p["maps"][name] for p in out["per_image"]]
        assert m["deletion_auc"] == pytest.approx(np.mean([p["deletion_auc"] for p in per]))
        assert m["insertion_auc"] == pytest.approx(np.mean([p["insertion_auc"] for p in per]))
        drop, inc = average_drop_increase(
            [p["probability"] for p in out["per_image"]], [p["explanation_probability"] for p in per]
        )
        assert (m["average_drop"], m["increase_in_confidence"]) == (drop, inc)
        assert 0.0 <= m["deletion_auc"] <= 1.0 and 0.0 <= m["average_drop"] <= 100.0
    with pytest.raises(ValueError, match="No images to evaluate; pass at least one image"):
        faithfulness_summary(fixture_model, [])


class CountingGAP(PotPlantGAP):
    """The course network that counts what it is asked to do: forward calls and images forwarded."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.images = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.images += int(x.shape[0])
        return super().forward(x)


@pytest.mark.parametrize(
    ("n_maps", "n_steps", "batch_size", "target", "random_seed"),
    [(1, 4, 16, "predicted", 0), (2, 7, 3, 0, 0), (3, 2, 1, "top", None), (0, 5, 16, "greg", 0), (2, 32, 16, 1, None)],
)
def test_forward_passes_counts_what_the_network_is_asked(
    state_dict: dict[str, torch.Tensor],
    images: list[np.ndarray],
    n_maps: int,
    n_steps: int,
    batch_size: int,
    target: str | int,
    random_seed: int | None,
) -> None:
    """forward_passes(n_maps, n_steps) is the number of images the network sees, whatever the target
    (a "predicted" target costs no pass of its own), the batch size or the random baseline."""
    net = CountingGAP()
    net.load_state_dict(state_dict)
    model = CamModel(module=net.eval(), provenance=Provenance("file", "test", "<memory>", "0" * 64, 0))
    rng = np.random.default_rng(n_maps)
    maps = {f"m{i}": rng.random((256, 256)).astype(np.float32) for i in range(n_maps)}
    x = torch.from_numpy(images[0]).permute(2, 0, 1)[None].float() / 255.0
    seen: list[tuple[int, int]] = []
    evaluate_maps(
        model,
        x,
        maps,
        target,
        n_steps=n_steps,
        batch_size=batch_size,
        random_seed=random_seed,
        progress=lambda d, t: seen.append((d, t)),
    )
    scored = n_maps + (random_seed is not None)
    expected = forward_passes(scored, n_steps)
    assert net.images == expected
    assert seen[-1] == (expected, expected)
    assert net.calls == sum(-(-n // batch_size) for n in [3] + [n_steps - 1, n_steps - 1, 1] * scored)
    assert expected == 3 + scored * (2 * (n_steps - 1) + 1)  # the closed form the app shows readers


def test_refusals_are_cam_errors(linear_model: CamModel, image: torch.Tensor) -> None:
    from cam.errors import CamError, MapError, SettingError

    with pytest.raises(MapError):
        evaluate_maps(linear_model, image, {"m": np.full((16, 20), np.nan)}, 0)
    with pytest.raises(SettingError):
        evaluate_maps(linear_model, image, {"m": np.zeros((16, 20))}, 0, n_steps=0)
    with pytest.raises(SettingError):
        forward_passes(1, 0)
    with pytest.raises(CamError):
        average_drop_increase([], [])
