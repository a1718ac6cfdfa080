"""CAM against Grad-CAM, and every method against every other: the numbers behind the proof.

At the GAP layer Grad-CAM = CAM / (H W) exactly (`cam.methods`), so after ReLU and min-max scaling
the two maps coincide, max |Grad-CAM x H W - CAM| is float rounding, and mean(CAM) + b_c = y_c.
`compare_cam_gradcam` measures exactly those numbers; `method_equivalences` finds which methods of the
CAM family equal CAM (or each other) up to a positive scale, checked on the maps themselves, never
assumed from the layer.

Everything here reads an `Explanation`; nothing runs the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cam.errors import MapError
from cam.explain import Explanation
from cam.network import GAP_LAYER
from cam.render import scale_map


@dataclass(frozen=True)
class CompareNumbers:
    """The checks of CAM against Grad-CAM for one explanation's target class."""

    max_abs_diff_scaled: float  # max |scale(CAM) - scale(Grad-CAM)|, both after ReLU + min-max scaling
    correlation: float  # Pearson correlation of the raw maps; NaN when either map is constant
    mean_cam_plus_bias: float  # mean(CAM) + b_c, in float64
    logit: float  # y_c from the network
    gradcam_times_hw_residual: float | None  # max |Grad-CAM x H W - CAM| (raw); None unless Grad-CAM is at conv3


def compare_cam_gradcam(r: Explanation) -> CompareNumbers:
    """The checks of CAM (always at conv3) against Grad-CAM (at whatever layer ``r`` has it).

    H W is the number of pixels of the maps: at conv3 the feature map has the model input's size, so
    Grad-CAM's weights there are CAM's divided by exactly that many pixels.
    """
    missing = [m for m in ("cam", "gradcam") if m not in r.class_maps]
    if missing:
        raise MapError(
            f"Comparing CAM with Grad-CAM needs both maps; this explanation lacks {', '.join(missing)}. "
            "Explain with methods=('cam', 'gradcam')."
        )
    cam, gc = r.maps["cam"], r.maps["gradcam"]
    mean_plus_bias, logit = r.logit_check()
    residual = None
    if r.layers["gradcam"] == GAP_LAYER:
        hw = cam.shape[-2] * cam.shape[-1]
        residual = float(np.max(np.abs(gc.astype(np.float64) * hw - cam.astype(np.float64))))
    return CompareNumbers(
        max_abs_diff_scaled=float(np.max(np.abs(scale_map(cam) - scale_map(gc)))),
        correlation=float(method_correlations({"cam": cam, "gradcam": gc})[1][0, 1]),
        mean_cam_plus_bias=mean_plus_bias,
        logit=logit,
        gradcam_times_hw_residual=residual,
    )


def equal_up_to_positive_scale(a: np.ndarray, b: np.ndarray, rtol: float = 1e-4) -> bool:
    """True when a = s b for some s > 0, up to a relative error ``rtol``.

    s is the least-squares scale <a, b> / <b, b> (`positive_scale`); the test is
    ||a - s b|| <= rtol ||a||. Two all-zero maps are equal; an all-zero map never equals a non-zero one.
    """
    x, y = _pair(a, b)
    nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    if nx == 0.0 or ny == 0.0:
        return nx == ny
    s = float(x @ y) / (ny * ny)
    return s > 0 and float(np.linalg.norm(x - s * y)) <= rtol * nx


def positive_scale(a: np.ndarray, b: np.ndarray) -> float:
    """The least-squares s with a ≈ s b, <a, b> / <b, b> (what `equal_up_to_positive_scale` tests).

    For two all-zero maps any s fits; 1.0 is returned. For a non-zero ``a`` and an all-zero ``b`` no s
    fits: NaN.
    """
    x, y = _pair(a, b)
    yy = float(y @ y)
    if yy == 0.0:
        return 1.0 if not np.any(x) else float("nan")
    return float(x @ y) / yy


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if np.shape(a) != np.shape(b):
        raise MapError(f"Cannot compare maps of shapes {np.shape(a)} and {np.shape(b)}; resize one first.")
    return np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()


def method_correlations(
    maps: Explanation | Mapping[str, np.ndarray], methods: Sequence[str] | None = None
) -> tuple[tuple[str, ...], np.ndarray]:
    """Pearson correlation between the raw maps of several methods (for the explanation's target).

    Args:
        maps: an `Explanation` (its ``maps``: method -> (H, W)) or such a mapping directly.
        methods: which methods, in this order; None means all of them.

    Returns:
        (names, R) with R[i, j] the correlation of the maps of names[i] and names[j], float64 (M, M).
        A constant map has no variation to correlate: its row and column are NaN (its diagonal too).
        Maps equal up to a positive scale correlate at 1.
    """
    table = maps if isinstance(maps, Mapping) else maps.maps
    names = tuple(table) if methods is None else tuple(methods)
    missing = [m for m in names if m not in table]
    if missing:
        raise MapError(f"No map for {', '.join(missing)}; computed methods are: {', '.join(table)}.")
    if not names:
        return names, np.zeros((0, 0))
    shapes = {np.shape(table[m]) for m in names}
    if len(shapes) > 1:
        raise MapError(f"Cannot correlate maps of different shapes {sorted(shapes)}; resize them first.")
    flat = np.stack([np.asarray(table[m], dtype=np.float64).ravel() for m in names])  # (M, HW)
    centred = flat - flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1)  # (M,)
    # A constant map's centred norm is rounding noise, far below what a non-constant map's is near.
    scale = np.max(np.abs(flat), axis=1) * np.sqrt(flat.shape[1])
    constant = norms <= 1e-12 * np.maximum(scale, 1e-300)
    safe = np.where(constant, 1.0, norms)
    unit = centred / safe[:, None]
    r = np.clip(unit @ unit.T, -1.0, 1.0)
    r[constant, :] = np.nan
    r[:, constant] = np.nan
    return names, r


@dataclass(frozen=True)
class MethodEquivalences:
    """Which methods' maps are the same map up to a positive scale, for one class and layer."""

    names: tuple[str, ...]  # methods in the matrix, in order
    correlations: np.ndarray  # (M, M) Pearson correlation of the raw maps (`method_correlations`)
    equal_to_cam: dict[str, float]  # method -> s > 0 with CAM ≈ s x map (`positive_scale`)
    equal_pairs: tuple[tuple[str, str], ...]  # other pairs equal up to a positive scale (CAM in none)


def method_equivalences(r: Explanation, methods: Sequence[str] | None = None) -> MethodEquivalences:
    """Which of ``methods`` (default: every computed one) equal CAM, or each other, up to a positive
    scale for ``r``'s target, by `equal_up_to_positive_scale` on the raw maps."""
    names, corr = method_correlations(r, methods)
    maps = r.maps
    equal_to_cam: dict[str, float] = {}
    if "cam" in names:
        equal_to_cam = {
            m: positive_scale(maps["cam"], maps[m])
            for m in names
            if m != "cam" and equal_up_to_positive_scale(maps[m], maps["cam"])
        }
    pairs = tuple(
        (a, b)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        if "cam" not in (a, b) and equal_up_to_positive_scale(maps[a], maps[b])
    )
    return MethodEquivalences(names, corr, equal_to_cam, pairs)
