"""How faithful is a saliency map to the model? Perturb the input in the map's order and watch the score.

Deletion and insertion (Petsiuk et al., 2018, "RISE: Randomized Input Sampling for Explanation of
Black-box Models"):

* pixels are ranked by the raw map at model-input resolution (256x256), highest first; ties keep
  pixel order (stable sort). The raw map is used, not its ReLU: ReLU would tie every negative pixel;
* the ranking is cut into ``n_steps`` (default 32) nearly equal chunks: at step i the first
  k_i = round(i H W / n_steps) pixels are changed, i = 0 .. n_steps;
* **deletion** replaces those pixels (all three channels) by a *black* image (zeros, as RISE);
  **insertion** starts from a *blurred* copy of the image (Gaussian blur, 11x11 kernel, sigma 5, as
  RISE's) and puts the original pixels back. Either baseline can be chosen ("black" or "blur");
* the tracked value is the **softmax probability of the target class**, p_c = softmax(y)_c;
* the area under the curve uses the trapezoid rule over the changed fraction k_i / (H W) in [0, 1],
  so it lies in [0, 1]. Deletion: lower is better (the score falls fast); insertion: higher is better.

A seeded uniform random map (`random_map`) gives the chance-level baseline.

Average Drop and Increase in Confidence (Chattopadhay et al., 2018, "Grad-CAM++"): with
L = min-max scaled ReLU of the map (`cam.render.scale_map`) and the explanation image E = L * I
(pixel by pixel), Y = p_c(I) and O = p_c(E):

    Average Drop %            = 100 / N sum_i max(0, Y_i - O_i) / Y_i      (lower is better)
    Increase in Confidence %  = 100 / N sum_i [Y_i < O_i]                  (higher is better)

Every forward pass is batched (at most ``batch_size`` images per pass), runs without autograd and
leaves the shared model untouched (no hooks, no mode switch). `forward_passes` says what a run costs
(images through the network), before it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from cam.errors import MapError, SettingError
from cam.explain import LayerSpec, Target, explain, resolve_target
from cam.images import ImageSource, LoadedImage, load_image
from cam.methods import ProgressFn
from cam.model import CamModel
from cam.render import scale_map

Baseline = Literal["black", "blur"]
DEFAULT_STEPS = 32  # 2048 pixels a step at 256x256; RISE used 224 steps of 224 pixels at 224x224
DEFAULT_BATCH_SIZE = 4  # images per forward pass, ~40 MB each at 256x256: +222 MB peak (16: +563 MB), as fast
BLUR_KERNEL = 11
BLUR_SIGMA = 5.0
RANDOM = "random"  # key of the random-map baseline in results
PROBABILITY = "softmax probability of the target class"


@dataclass(frozen=True)
class Curve:
    """A deletion or insertion curve: the target's probability after changing a fraction of pixels."""

    fractions: np.ndarray  # (n_steps + 1,) float64, 0 ... 1: share of pixels changed
    probabilities: np.ndarray  # (n_steps + 1,) float64: softmax probability of the target class

    @property
    def auc(self) -> float:
        """Area under the curve by the trapezoid rule, in [0, 1]."""
        return trapezoid(self.probabilities, self.fractions)


@dataclass(frozen=True)
class MapFaithfulness:
    """Every faithfulness number for one map of one image."""

    deletion: Curve
    insertion: Curve
    explanation_probability: float  # O = p_c(L * I), for Average Drop / Increase in Confidence


@dataclass(frozen=True)
class ImageFaithfulness:
    """Faithfulness of several maps (and the random baseline) for one image and one target class."""

    target_index: int
    probability: float  # Y = p_c(I), the probability of the target on the unchanged image
    scores: dict[str, MapFaithfulness] = field(default_factory=dict)

    def average_drop(self, name: str) -> float:
        """Average Drop % of one map on this image alone."""
        return average_drop_increase([self.probability], [self.scores[name].explanation_probability])[0]

    def increased(self, name: str) -> bool:
        """Whether the explanation image E = L * I raised the target's probability."""
        return self.scores[name].explanation_probability > self.probability


def trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """sum_i (x_{i+1} - x_i) (y_i + y_{i+1}) / 2."""
    yy = np.asarray(y, dtype=np.float64)
    xx = np.asarray(x, dtype=np.float64)
    return float(np.sum(np.diff(xx) * (yy[1:] + yy[:-1]) / 2.0))


def average_drop_increase(full: Iterable[float], explained: Iterable[float]) -> tuple[float, float]:
    """(Average Drop %, Increase in Confidence %) from Y_i = p_c(I_i) and O_i = p_c(E_i).

    Average Drop %           = 100 / N sum_i max(0, Y_i - O_i) / Y_i
    Increase in Confidence % = 100 / N sum_i [Y_i < O_i]     (a tie is not an increase)
    """
    y = np.asarray(list(full), dtype=np.float64)
    o = np.asarray(list(explained), dtype=np.float64)
    if y.shape != o.shape or y.ndim != 1 or y.size == 0:
        raise SettingError(
            f"Average Drop needs two equally long, non-empty lists of probabilities; got {y.size} and {o.size}."
        )
    if np.any(y <= 0) or np.any(y > 1) or np.any(o < 0) or np.any(o > 1):
        raise SettingError(
            "Probabilities must lie in [0, 1], and those of the unchanged images must be positive "
            "(Average Drop divides by them)."
        )
    drop = float(np.mean(np.maximum(0.0, y - o) / y) * 100.0)
    increase = float(np.mean(y < o) * 100.0)
    return drop, increase


def random_map(shape: tuple[int, int] = (256, 256), seed: int = 0) -> np.ndarray:
    """A seeded uniform random map (float32): a random pixel order, the chance-level baseline."""
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def gaussian_blur(x: torch.Tensor, kernel: int = BLUR_KERNEL, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """(N, 3, H, W) -> the same, blurred by a separable Gaussian (``kernel`` taps, reflected borders)."""
    r = kernel // 2
    t = torch.arange(kernel, dtype=x.dtype) - r
    g = torch.exp(-(t**2) / (2.0 * sigma**2))
    g = g / g.sum()  # (kernel,) weights summing to 1: a flat image stays flat
    c = x.shape[1]
    padded = F.pad(x, (r, r, r, r), mode="reflect")
    out = F.conv2d(padded, g.view(1, 1, 1, kernel).expand(c, 1, 1, kernel), groups=c)
    return F.conv2d(out, g.view(1, 1, kernel, 1).expand(c, 1, kernel, 1), groups=c)


def baseline_image(x: torch.Tensor, kind: Baseline) -> torch.Tensor:
    """The image that replaces the pixels: "black" (zeros) or "blur" (`gaussian_blur`)."""
    if kind == "black":
        return torch.zeros_like(x)
    if kind == "blur":
        return gaussian_blur(x)
    raise SettingError(f"Unknown baseline {kind!r}; choose 'black' (zeros) or 'blur' (Gaussian blur).")


def describe_baseline(kind: Baseline) -> str:
    """A baseline's name with its parameters, for reports."""
    return f"blur (Gaussian {BLUR_KERNEL}x{BLUR_KERNEL}, sigma {BLUR_SIGMA:g})" if kind == "blur" else kind


def pixel_ranks(saliency: np.ndarray) -> torch.Tensor:
    """(H, W) map -> (H, W) long tensor: 0 for the most salient pixel, H W - 1 for the least.

    Descending raw value; equal values keep row-major pixel order (stable sort).
    """
    m = np.asarray(saliency, dtype=np.float64)
    if m.ndim != 2:
        raise MapError(f"A saliency map must be 2-D (H, W); got shape {m.shape}.")
    if not np.all(np.isfinite(m)):
        raise MapError("The saliency map contains NaN or infinite values; it cannot rank pixels.")
    order = np.argsort(-m.ravel(), kind="stable")  # pixel indices, most salient first
    ranks = np.empty(order.size, dtype=np.int64)
    ranks[order] = np.arange(order.size)
    return torch.from_numpy(ranks.reshape(m.shape))


def step_counts(n_pixels: int, n_steps: int) -> np.ndarray:
    """(n_steps + 1,) pixels changed at each step: round(i n_pixels / n_steps), from 0 to n_pixels."""
    if not 1 <= n_steps <= n_pixels:
        raise SettingError(f"n_steps must be between 1 and the number of pixels ({n_pixels}); got {n_steps}.")
    return np.round(np.arange(n_steps + 1) * (n_pixels / n_steps)).astype(np.int64)


def _as_input(image: ImageSource | torch.Tensor) -> torch.Tensor:
    """Any image source, or a (3, H, W) / (1, 3, H, W) float tensor in [0, 1] -> (1, 3, H, W)."""
    if isinstance(image, torch.Tensor):
        x = image.detach().float()
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[:2] != (1, 3):
            raise MapError(f"An input tensor must be (3, H, W) or (1, 3, H, W); got {tuple(image.shape)}.")
        return x
    loaded = image if isinstance(image, LoadedImage) else load_image(image, display_max_side=None)
    return loaded.tensor()


def _check_map(saliency: np.ndarray, x: torch.Tensor) -> np.ndarray:
    m = np.asarray(saliency)
    if m.shape != tuple(x.shape[-2:]):
        raise MapError(
            f"The map is {m.shape} but the model input is {tuple(x.shape[-2:])}; resize the map to the "
            "input first (cam.render.resize_map)."
        )
    return m


class _Scorer:
    """Probabilities of one target class for streams of perturbed inputs, in bounded batches.

    The first call, `start`, forwards the images every curve shares and resolves the target from the
    unchanged image's logits, so "predicted" costs no forward pass of its own.
    """

    def __init__(self, model: CamModel, batch_size: int) -> None:
        if batch_size < 1:
            raise SettingError(f"batch_size must be at least 1, got {batch_size}.")
        self.module = model.module
        self.class_names = model.class_names
        self.batch_size = batch_size
        self.target = -1  # set by `start`
        self.passes = 0  # images forwarded so far

    def start(self, target: Target, x: torch.Tensor, *others: torch.Tensor) -> tuple[int, np.ndarray]:
        """(target index, (1 + len(others),) probabilities) of the image ``x`` and ``others``."""
        batch = torch.cat([x, *others])
        logits = np.empty((len(batch), len(self.class_names)), dtype=np.float64)
        with torch.no_grad():
            for lo in range(0, len(batch), self.batch_size):
                hi = min(lo + self.batch_size, len(batch))
                logits[lo:hi] = self.module(batch[lo:hi]).double().numpy()
                self.passes += hi - lo
        self.target = resolve_target(target, self.class_names, logits[0])
        p = torch.softmax(torch.from_numpy(logits), dim=1)[:, self.target].numpy()  # as `stream` does
        return self.target, p

    def probabilities(self, x: torch.Tensor) -> np.ndarray:
        """(N, 3, H, W) -> (N,) float64 softmax probabilities of the target."""
        return self.stream(len(x), lambda lo, hi: x[lo:hi])

    def stream(self, n: int, make: Callable[[int, int], torch.Tensor]) -> np.ndarray:
        """Probabilities of n inputs built lazily, ``make(lo, hi)`` -> (hi - lo, 3, H, W)."""
        out = np.empty(n, dtype=np.float64)
        with torch.no_grad():
            for lo in range(0, n, self.batch_size):
                hi = min(lo + self.batch_size, n)
                logits = self.module(make(lo, hi)).double()  # (n, C)
                out[lo:hi] = torch.softmax(logits, dim=1)[:, self.target].numpy()
                self.passes += hi - lo
        return out


def _interior_curve(
    scorer: _Scorer,
    x: torch.Tensor,
    base: torch.Tensor,
    saliency: np.ndarray,
    counts: np.ndarray,
    insertion: bool,
) -> np.ndarray:
    """Probabilities at the steps 1 .. n_steps - 1 (the end points are shared by every map)."""
    ranks = pixel_ranks(saliency)  # (H, W)
    ks = torch.from_numpy(counts[1:-1])  # (n_steps - 1,)
    start, end = (base, x) if insertion else (x, base)  # the image at step 0 and at the last step

    def make(lo: int, hi: int) -> torch.Tensor:
        changed = (ranks.unsqueeze(0) < ks[lo:hi, None, None]).unsqueeze(1)  # (n, 1, H, W)
        return torch.where(changed, end, start)  # (n, 3, H, W)

    return scorer.stream(len(ks), make)


def forward_passes(n_maps: int, n_steps: int = DEFAULT_STEPS) -> int:
    """Images `evaluate_maps` forwards through the network for ``n_maps`` maps (the random baseline,
    when added, counts as a map), whatever the target: 3 shared (the photo, the end of deletion, the
    start of insertion), then per map the n_steps - 1 interior points of each curve and the
    explanation image L * I. Batching groups these images; it does not change their number."""
    if n_maps < 0 or n_steps < 1:
        raise SettingError(f"forward_passes needs n_maps >= 0 and n_steps >= 1; got {n_maps} and {n_steps}.")
    return 3 + n_maps * (2 * (n_steps - 1) + 1)


def evaluate_maps(
    model: CamModel,
    image: ImageSource | torch.Tensor,
    maps: Mapping[str, np.ndarray],
    target: Target = "predicted",
    *,
    n_steps: int = DEFAULT_STEPS,
    deletion_baseline: Baseline = "black",
    insertion_baseline: Baseline = "blur",
    random_seed: int | None = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressFn | None = None,
) -> ImageFaithfulness:
    """Deletion and insertion curves and the Average Drop inputs of several maps of one image.

    Args:
        model: the classifier.
        image: any image source, or the model input as a (1, 3, H, W) tensor in [0, 1].
        maps: name -> raw (H, W) map at the model-input size (e.g. ``explain(...).maps``).
        target: the class whose probability is tracked: "predicted", a name or an index.
        n_steps: curve resolution; each curve costs n_steps - 1 forward passes (its ends are shared).
        deletion_baseline, insertion_baseline: "black" or "blur" (defaults as RISE).
        random_seed: add the seeded `random_map` as the map ``"random"``; None leaves it out.
        batch_size: images per forward pass.
        progress: ``progress(done, total)`` in forward passes.
    """
    x = _as_input(image)  # (1, 3, H, W)
    n_pixels = int(x.shape[-2] * x.shape[-1])
    counts = step_counts(n_pixels, n_steps)
    table = {name: _check_map(m, x) for name, m in maps.items()}
    if random_seed is not None:
        if RANDOM in table:
            raise MapError(f"A map is named {RANDOM!r}, the name of the random baseline; rename it.")
        table[RANDOM] = random_map((int(x.shape[-2]), int(x.shape[-1])), random_seed)
    scorer = _Scorer(model, batch_size)
    total = forward_passes(len(table), n_steps)

    def tick() -> None:
        if progress is not None:
            progress(scorer.passes, total)

    del_base = baseline_image(x, deletion_baseline)
    ins_base = baseline_image(x, insertion_baseline)
    index, (p_full, p_del_end, p_ins_start) = scorer.start(target, x, del_base, ins_base)
    tick()
    fractions = counts / n_pixels
    scores: dict[str, MapFaithfulness] = {}
    for name, m in table.items():
        deleted = _interior_curve(scorer, x, del_base, m, counts, insertion=False)
        inserted = _interior_curve(scorer, x, ins_base, m, counts, insertion=True)
        explained = torch.from_numpy(scale_map(np.asarray(m, dtype=np.float32))).to(x.dtype) * x  # L * I
        (p_explained,) = scorer.probabilities(explained)
        scores[name] = MapFaithfulness(
            deletion=Curve(fractions, np.r_[p_full, deleted, p_del_end]),
            insertion=Curve(fractions, np.r_[p_ins_start, inserted, p_full]),
            explanation_probability=float(p_explained),
        )
        tick()
    return ImageFaithfulness(target_index=index, probability=float(p_full), scores=scores)


def faithfulness_summary(
    model: CamModel,
    images: Sequence[ImageSource],
    methods: Sequence[str] = ("cam", "gradcam"),
    *,
    target: Target = "predicted",
    layer: LayerSpec = None,
    n_steps: int = DEFAULT_STEPS,
    deletion_baseline: Baseline = "black",
    insertion_baseline: Baseline = "blur",
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Faithfulness of several methods over a set of images, for ``python -m cam evaluate``.

    Image i's random baseline uses ``random_map(seed=seed + i)``, so a run is reproducible.
    ``progress(done, total)`` counts images.

    Returns a JSON-ready dict::

        {"n_images": N,
         "settings": {"n_steps", "deletion_baseline", "insertion_baseline", "probability", "target",
                      "layer", "seed", "better": {metric: "lower" | "higher"}},
         "methods": {name: {"deletion_auc", "insertion_auc", "average_drop", "increase_in_confidence"}},
         "curves": {"fractions": [...], "mean": {name: {"deletion": [...], "insertion": [...]}}},
         "per_image": [{"target": class name, "probability": Y,
                        "maps": {name: {"deletion_auc", "insertion_auc", "explanation_probability"}}}]}

    AUCs are means over images; Average Drop and Increase in Confidence are percentages. ``methods``
    also holds ``"random"``, the chance level.
    """
    if not images:
        raise SettingError("No images to evaluate; pass at least one image.")
    per_image: list[ImageFaithfulness] = []
    for i, img in enumerate(images):
        loaded = load_image(img, display_max_side=None)
        r = explain(model, loaded, target, methods, layer)
        per_image.append(
            evaluate_maps(
                model,
                loaded,
                r.maps,
                r.target_index,
                n_steps=n_steps,
                deletion_baseline=deletion_baseline,
                insertion_baseline=insertion_baseline,
                random_seed=seed + i,
                batch_size=batch_size,
            )
        )
        if progress is not None:
            progress(i + 1, len(images))
    names = [*dict.fromkeys(methods), RANDOM]
    summary: dict[str, dict[str, float]] = {}
    for name in names:
        drop, increase = average_drop_increase(
            [r.probability for r in per_image], [r.scores[name].explanation_probability for r in per_image]
        )
        summary[name] = {
            "deletion_auc": float(np.mean([r.scores[name].deletion.auc for r in per_image])),
            "insertion_auc": float(np.mean([r.scores[name].insertion.auc for r in per_image])),
            "average_drop": drop,
            "increase_in_confidence": increase,
        }
    # Curves share their fractions (same step count and image size), so they average pointwise.
    fractions = per_image[0].scores[names[0]].deletion.fractions
    mean_curves = {
        name: {
            kind: np.mean([getattr(r.scores[name], kind).probabilities for r in per_image], axis=0).tolist()
            for kind in ("deletion", "insertion")
        }
        for name in names
    }
    return {
        "n_images": len(per_image),
        "settings": {
            "n_steps": n_steps,
            "deletion_baseline": describe_baseline(deletion_baseline),
            "insertion_baseline": describe_baseline(insertion_baseline),
            "probability": PROBABILITY,
            "target": str(target),
            "layer": layer if layer is None or isinstance(layer, str) else dict(layer),
            "seed": seed,
            "better": {
                "deletion_auc": "lower",
                "insertion_auc": "higher",
                "average_drop": "lower",
                "increase_in_confidence": "higher",
            },
        },
        "methods": summary,
        "curves": {"fractions": fractions.tolist(), "mean": mean_curves},
        "per_image": [
            {
                "target": model.class_names[r.target_index],
                "probability": r.probability,
                "maps": {
                    name: {
                        "deletion_auc": s.deletion.auc,
                        "insertion_auc": s.insertion.auc,
                        "explanation_probability": s.explanation_probability,
                    }
                    for name, s in r.scores.items()
                },
            }
            for r in per_image
        ],
    }
