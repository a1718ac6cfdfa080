"""Sanity check by cascading model-parameter randomisation (Adebayo et al., 2018, "Sanity Checks for
Saliency Maps").

A saliency method that explains the *model* must give a different map when the model's weights are
replaced by random ones. The layers are randomised top-down, cumulatively:

    step 0: []                 the trained network (similarity 1 by construction)
    step 1: ["fc"]
    step 2: ["fc", "conv3"]
    step 3: ["fc", "conv3", "conv2"]
    step 4: ["fc", "conv3", "conv2", "conv1"]

Each randomised layer gets fresh weights and biases drawn exactly like PyTorch's default
initialisation of that layer (`nn.Conv2d` / `nn.Linear` ``reset_parameters``: Kaiming-uniform with
a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias), from a
`torch.Generator` seeded by (seed, layer): the global RNG is never used, so concurrent requests and
the caller's own random state are undisturbed, and a seed always gives the same steps.

Everything runs on a private copy of the network; the shared model is only read (its state dict is
cloned; ``copy.deepcopy`` is avoided because it would iterate the hook dicts that concurrent
`cam.capture` calls on the shared model add to and remove from).

Similarity of each step's map to the original one, for the target class:
  * Spearman rank correlation of the raw maps (ties get their average rank; `spearman`);
  * SSIM (Wang et al., 2004; Gaussian 11x11 window, sigma 1.5, K1 0.01, K2 0.03, data range 1, mean
    over the positions where the window fits; `ssim`) of the ReLU + min-max scaled maps
    (`cam.render.scale_map`, what the heatmap shows).
A constant map has no ranking: its Spearman correlation is NaN (None in JSON). SSIM of ReLU'd maps
is dominated by the regions where both maps are zero (its constants C1, C2 make flat zero regions
count as identical), so it stays high (0.79 to 0.96 on the eight examples at the fc step, where
|Spearman| is 0.13 to 0.84, median 0.38): the verdict uses Spearman; SSIM is shown for reference.

Data independence: the target's map is also compared with the map of another class (chosen among
the others by the seed) on the trained network: class-specific methods should differ.

CAM exists only at conv3, so it is always computed there, whatever ``layer`` the other methods use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import init

from cam.explain import Explanation, Target, explain, plan_layers
from cam.images import ImageSource, load_image
from cam.methods import METHODS
from cam.model import CamModel
from cam.network import CLASSIFIER, GAP_LAYER, LAYER_ALIASES, PotPlantGAP, resolve_layer, weights_path
from cam.render import scale_map

CASCADE: tuple[str, ...] = (CLASSIFIER, *reversed(LAYER_ALIASES))  # ("fc", "conv3", "conv2", "conv1")
DEFAULT_THRESHOLD = 0.9  # |Spearman| above this once the explaining layers are random: the method fails
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


# ---------------------------------------------------------------------------------------------
# Similarity measures.


def rank(a: np.ndarray) -> np.ndarray:
    """Ranks 0 .. n-1 of the flattened values (float64, same shape), ties sharing their average rank."""
    flat = np.asarray(a).ravel()
    n = flat.size
    order = np.argsort(flat)  # not a stable sort: tied values get one (average) rank whatever their order
    s = flat[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # first position of each run of equal values
    counts = np.diff(np.r_[starts, n])
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(starts + (counts - 1) / 2.0, counts)
    return ranks.reshape(np.shape(a))


def _centred_ranks(a: np.ndarray) -> tuple[np.ndarray, float]:
    """(ranks minus their mean, flattened; their norm) of a finite map."""
    if not np.all(np.isfinite(a)):
        raise ValueError("A map contains NaN or infinite values; it cannot be ranked.")
    r = rank(a).ravel()
    r -= r.mean()
    return r, math.sqrt(float(r @ r))


def _correlate(ra: tuple[np.ndarray, float], rb: tuple[np.ndarray, float]) -> float:
    den = ra[1] * rb[1]
    if den == 0.0:
        return float("nan")
    return float(np.clip(float(ra[0] @ rb[0]) / den, -1.0, 1.0))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (Pearson correlation of the average ranks) in [-1, 1]; NaN when
    either input is constant (it has no ranking)."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"Cannot correlate maps of shapes {np.shape(a)} and {np.shape(b)}.")
    return _correlate(_centred_ranks(a), _centred_ranks(b))


def _gaussian(window: int, sigma: float) -> np.ndarray:
    t = np.arange(window, dtype=np.float64) - (window - 1) / 2.0
    g = np.exp(-(t**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable correlation with ``g`` along both axes, 'valid' positions only: the border rows and
    columns whose window would need padding are cut off, so the padding mode never matters."""
    r = g.size // 2
    full = cv2.sepFilter2D(img, cv2.CV_64F, g, g, borderType=cv2.BORDER_REFLECT)
    return full[r : img.shape[0] - r, r : img.shape[1] - r]


class _Moments:
    """Gaussian-weighted local mean and variance of one image, reusable across comparisons."""

    def __init__(self, img: np.ndarray, window: int, sigma: float) -> None:
        self.img = np.asarray(img, dtype=np.float64)
        if self.img.ndim != 2:
            raise ValueError(f"SSIM compares 2-D images; got shape {self.img.shape}.")
        if min(self.img.shape) < window:
            raise ValueError(f"SSIM needs images of at least {window}x{window} pixels; got {self.img.shape}.")
        self.g = _gaussian(window, sigma)
        self.mu = _filter_valid(self.img, self.g)
        self.var = _filter_valid(self.img * self.img, self.g) - self.mu * self.mu


def _ssim(a: _Moments, b: _Moments, data_range: float) -> float:
    if a.img.shape != b.img.shape:
        raise ValueError(f"SSIM compares two images of one shape; got {a.img.shape} and {b.img.shape}.")
    cov = _filter_valid(a.img * b.img, a.g) - a.mu * b.mu
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    num = (2 * a.mu * b.mu + c1) * (2 * cov + c2)
    den = (a.mu**2 + b.mu**2 + c1) * (a.var + b.var + c2)
    return float(np.mean(num / den))


def ssim(
    a: np.ndarray, b: np.ndarray, *, data_range: float = 1.0, window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA
) -> float:
    """Mean structural similarity of two 2-D images (Wang, Bovik, Sheikh & Simoncelli, 2004).

        SSIM = (2 mu_a mu_b + C1)(2 s_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2))

    with Gaussian-weighted local means, variances and covariance (window x window, ``sigma``), C1 =
    (0.01 L)^2, C2 = (0.03 L)^2, L = ``data_range``, averaged over the positions where the window fits
    (the paper's 'valid' filtering; equal to scikit-image's ``structural_similarity(...,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)``). 1 for identical images.
    """
    return _ssim(_Moments(a, window, sigma), _Moments(b, window, sigma), data_range)


# ---------------------------------------------------------------------------------------------
# Randomisation on a private copy.


def copy_network(module: PotPlantGAP) -> PotPlantGAP:
    """A private eval-mode copy of the network with cloned weights (built on the meta device, so the
    global RNG is not touched by a default initialisation)."""
    dropout = module.fc[0]
    assert isinstance(dropout, nn.Dropout)
    with torch.device("meta"):
        net = PotPlantGAP(num_classes=module.classifier.out_features, dropout=dropout.p)
    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    net.load_state_dict(state, strict=True, assign=True)
    return net.eval()


def _layer_seed(seed: int, layer: str) -> int:
    """A seed for one layer's generator, distinct per (seed, layer)."""
    ss = np.random.SeedSequence([seed, CASCADE.index(layer)])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def randomize_layer(net: nn.Module, layer: str, seed: int) -> None:
    """Redraw the weight and bias of ``layer`` ("fc", "conv3", ...) of ``net`` in place, like the
    layer's ``reset_parameters`` would, from a generator seeded by (seed, layer)."""
    mod = net.get_submodule(weights_path(layer))
    if not isinstance(mod, (nn.Conv2d, nn.Linear)):
        raise TypeError(f"Layer {layer!r} is a {type(mod).__name__}, not a convolution or linear layer.")
    g = torch.Generator().manual_seed(_layer_seed(seed, layer))
    with torch.no_grad():
        init.kaiming_uniform_(mod.weight, a=math.sqrt(5), generator=g)  # as reset_parameters
        if mod.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(mod.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(mod.bias, -bound, bound, generator=g)


# ---------------------------------------------------------------------------------------------
# The check.


@dataclass(frozen=True)
class SanityStep:
    """One step of the cascade: maps of the (partly) randomised network and their similarity."""

    randomized: tuple[str, ...]  # layers random at this step, top-down
    maps: dict[str, np.ndarray]  # method -> (256, 256) float32 raw map for the target class
    spearman: dict[str, float]  # method -> rank correlation with the original map (NaN: undefined)
    ssim: dict[str, float]  # method -> SSIM of the scaled maps
    logits: np.ndarray  # (C,) float32 logits of this network


@dataclass(frozen=True)
class Verdict:
    """Whether a method passed: its map must change once the layers it explains are random."""

    method: str
    passed: bool | None  # None: the original map is constant, nothing to compare
    similarity: float  # |Spearman| at `step` (0 when undefined)
    step: tuple[str, ...]  # the randomised layers at the judged step
    threshold: float

    @property
    def sentence(self) -> str:
        layers = " and ".join(self.step)
        if self.passed is None:
            return f"{self.method}: the original map is constant, so the check cannot tell anything."
        verb = "passes" if self.passed else "fails"
        return (
            f"{self.method} {verb}: with {layers} randomised its map has |Spearman| {self.similarity:.2f} "
            f"to the trained model's map ({'below' if self.passed else 'at or above'} {self.threshold:g})."
        )


def _nan_to_none(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


@dataclass(frozen=True)
class SanityResult:
    """Every step for every method, plus the other-class comparison."""

    class_names: tuple[str, ...]
    target_index: int
    methods: tuple[str, ...]
    layers: dict[str, str]  # method -> layer alias its map is computed at
    seed: int
    steps: tuple[SanityStep, ...]  # steps[0] is the trained network
    other_index: int  # the other class of the data-independence view
    other_maps: dict[str, np.ndarray]  # method -> (256, 256) raw map of the other class, trained network
    other_spearman: dict[str, float]  # method -> Spearman(target map, other-class map)
    other_ssim: dict[str, float]

    @property
    def target(self) -> str:
        return self.class_names[self.target_index]

    @property
    def other_class(self) -> str:
        return self.class_names[self.other_index]

    def _method(self, method: str | None) -> str:
        m = self.methods[0] if method is None else method
        if m not in self.methods:
            raise ValueError(f"Method {m!r} was not part of this check; it ran: {', '.join(self.methods)}.")
        return m

    def judged_step(self, method: str) -> int:
        """Index of the first step at which fc and every layer above the map's layer are random: the
        weights that turn the map's activations into the class score (the weights it explains)."""
        layer = self.layers[self._method(method)]
        above = CASCADE[: CASCADE.index(layer)] if layer in CASCADE else CASCADE[:1]
        needed = {CLASSIFIER, *above}
        return next(i for i, s in enumerate(self.steps) if needed <= set(s.randomized))

    def verdict(self, method: str | None = None, threshold: float = DEFAULT_THRESHOLD) -> Verdict:
        """Pass or fail for one method.

        A method **fails** when, at the `judged_step` (conv3 maps: fc random; conv2: fc and conv3;
        conv1: fc, conv3 and conv2), its map still has |Spearman| >= ``threshold`` (default 0.9)
        with the trained network's map: it barely depends on the weights it claims to explain. The
        absolute value is used, as in Adebayo et al., because a map whose ranking is merely flipped
        is still fixed by the image rather than by the weights. Later steps also randomise the
        layers that make the activations; they are shown but not judged (a random network's map
        may resemble the image itself, which is a different finding).
        """
        m = self._method(method)
        i = self.judged_step(m)
        original_constant = float(np.ptp(self.steps[0].maps[m])) == 0.0
        rho = self.steps[i].spearman[m]
        sim = 0.0 if math.isnan(rho) else abs(rho)
        passed = None if original_constant else sim < threshold
        return Verdict(method=m, passed=passed, similarity=sim, step=self.steps[i].randomized, threshold=threshold)

    def to_json(self, method: str | None = None, threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
        """The ``/sanity`` answer (issue 15) for one method (default: the first one)::

            {"method": str, "layer": str, "class": str, "seed": int,
             "steps": [{"randomized": [...], "spearman": float | None, "ssim": float}, ...],
             "other_class": {"class": str, "spearman": float | None, "ssim": float},
             "verdict": {"passed": bool | None, "similarity": float, "step": [...], "threshold": float}}

        ``steps[0]`` is ``"randomized": []`` with similarity 1. Spearman is None where undefined
        (a constant map).
        """
        m = self._method(method)
        v = self.verdict(m, threshold)
        return {
            "method": m,
            "layer": self.layers[m],
            "class": self.target,
            "seed": self.seed,
            "steps": [
                {"randomized": list(s.randomized), "spearman": _nan_to_none(s.spearman[m]), "ssim": float(s.ssim[m])}
                for s in self.steps
            ],
            "other_class": {
                "class": self.other_class,
                "spearman": _nan_to_none(self.other_spearman[m]),
                "ssim": float(self.other_ssim[m]),
            },
            "verdict": {"passed": v.passed, "similarity": v.similarity, "step": list(v.step), "threshold": threshold},
        }


class _Reference:
    """The trained network's map of one method, with what every comparison reuses (its ranks)."""

    def __init__(self, raw: np.ndarray) -> None:
        self.raw = raw
        self.ranks = _centred_ranks(raw)
        self.moments = _Moments(scale_map(raw), SSIM_WINDOW, SSIM_SIGMA)

    def compare(self, other: np.ndarray) -> tuple[float, float]:
        """(Spearman of the raw maps, SSIM of the scaled maps)."""
        scaled = _Moments(scale_map(other), SSIM_WINDOW, SSIM_SIGMA)
        return _correlate(self.ranks, _centred_ranks(other)), _ssim(self.moments, scaled, 1.0)

    def itself(self) -> tuple[float, float]:
        """The same measures of the map with itself (1 and 1, up to rounding), from the cached parts."""
        return _correlate(self.ranks, self.ranks), _ssim(self.moments, self.moments, 1.0)


def _similarities(refs: dict[str, _Reference], maps: dict[str, np.ndarray]) -> tuple[dict[str, float], ...]:
    pairs = {m: refs[m].compare(v) for m, v in maps.items()}
    return {m: p[0] for m, p in pairs.items()}, {m: p[1] for m, p in pairs.items()}


def _other_class(seed: int, target: int, n_classes: int) -> int:
    """The seeded choice of another class, uniform among the classes != target."""
    others = [c for c in range(n_classes) if c != target]
    return int(others[int(np.random.default_rng(seed).integers(0, len(others)))])


def cascading_randomization(
    model: CamModel,
    image: ImageSource,
    target: Target = "predicted",
    methods: Sequence[str] = ("cam", "gradcam"),
    layer: str = GAP_LAYER,
    seed: int = 0,
) -> SanityResult:
    """Run the cascade of `CASCADE` randomisations for ``methods`` on one image.

    Args:
        model: the shared model; only read (its weights are byte-identical afterwards).
        image: any source `cam.load_image` takes.
        target: the class whose maps are compared ("predicted" means the trained network's
            prediction; the class stays fixed while the weights are randomised).
        methods: names from `cam.methods.METHODS`; CAM is computed at conv3 whatever ``layer`` is.
        layer: the layer of the other methods.
        seed: a non-negative int; fixes every random layer and the other class.

    Cost: one `cam.explain` call on the trained network (all classes at conv3, for the other-class
    view; at earlier layers a second call for the other class instead, since there every class
    costs a backward pass) and one per step (4 more): 5 forward passes plus each method's gradients
    (Score-CAM would add 64 forward passes a step), plus about 15 ms a step for the similarities.
    Measured (one thread, CPU time, in units of one forward pass of the same process): CAM 8.9,
    Grad-CAM at conv3 11.2, Grad-CAM at conv1 17.3, CAM and Grad-CAM together 13.5.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}.")
    methods = (methods,) if isinstance(methods, str) else tuple(dict.fromkeys(methods))
    alias, _ = resolve_layer(model.module, layer)
    spec = {m: (GAP_LAYER if m in METHODS and METHODS[m].gap_only else alias) for m in methods}
    plan_layers(model.module, methods, spec)  # unknown methods and layers fail here, before any work
    loaded = load_image(image)

    if all(layer == GAP_LAYER for layer in spec.values()):
        # One pass gives every class: at conv3 all classes' gradients cost one vmapped backward pass.
        base: Explanation = explain(model, loaded, target, methods, spec, all_classes=True)
        t = base.target_index
        other = _other_class(seed, t, len(model.class_names))
        other_maps = {m: base.class_maps[m][base.classes.index(other)] for m in methods}
    else:  # at earlier layers every class costs a backward pass: ask for the two needed only
        base = explain(model, loaded, target, methods, spec)
        t = base.target_index
        other = _other_class(seed, t, len(model.class_names))
        other_maps = explain(model, loaded, other, methods, spec).maps
    original = base.maps
    refs = {m: _Reference(v) for m, v in original.items()}
    other_rho, other_ssim = _similarities(refs, other_maps)

    rho0 = {m: refs[m].itself()[0] for m in methods}
    ssim0 = {m: refs[m].itself()[1] for m in methods}
    steps = [SanityStep(randomized=(), maps=original, spearman=rho0, ssim=ssim0, logits=base.logits)]
    net = copy_network(model.module)
    copy_model = CamModel(module=net, provenance=model.provenance, class_names=list(model.class_names))
    randomized: list[str] = []
    for name in CASCADE:
        randomize_layer(net, name, seed)
        randomized.append(name)
        r = explain(copy_model, loaded, t, methods, spec)
        rho, s = _similarities(refs, r.maps)
        steps.append(SanityStep(randomized=tuple(randomized), maps=r.maps, spearman=rho, ssim=s, logits=r.logits))
    return SanityResult(
        class_names=tuple(model.class_names),
        target_index=t,
        methods=methods,
        layers={m: base.layers[m] for m in methods},
        seed=seed,
        steps=tuple(steps),
        other_index=other,
        other_maps=other_maps,
        other_spearman=other_rho,
        other_ssim=other_ssim,
    )
