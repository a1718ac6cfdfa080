"""Post-processing of raw maps, kept apart from the maths: ReLU, safe scaling, resizing, colour.

Raw maps (``Explanation.maps``) are never modified; everything here returns new arrays.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

COLORMAPS: dict[str, int] = {
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "inferno": cv2.COLORMAP_INFERNO,
    "magma": cv2.COLORMAP_MAGMA,
    "plasma": cv2.COLORMAP_PLASMA,
    "hot": cv2.COLORMAP_HOT,
}
DEFAULT_COLORMAP = "jet"


def scale_map(raw: np.ndarray, relu: bool = True) -> np.ndarray:
    """ReLU (optional) then min-max scaling to [0, 1], float32.

    A constant map (including an all-zero one after ReLU) scales to zeros, never NaN: there is no
    contrast to show, and 0/0 must not leak into an image.
    """
    m = np.maximum(raw, 0.0) if relu else np.asarray(raw)
    m = m.astype(np.float32, copy=False)
    lo, hi = float(m.min()), float(m.max())
    span = hi - lo
    if not np.isfinite(span) or span <= 1e-12 * max(abs(hi), abs(lo), 1e-30):
        return np.zeros_like(m, dtype=np.float32)
    return ((m - lo) / span).astype(np.float32)


def resize_map(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a (H, W) map to ``size`` = (width, height)."""
    if (m.shape[1], m.shape[0]) == tuple(size):
        return m
    return cv2.resize(m, size, interpolation=cv2.INTER_LINEAR)


def colorize(m01: np.ndarray, colormap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """(H, W) map in [0, 1] -> (H, W, 3) uint8 RGB."""
    try:
        code = COLORMAPS[colormap]
    except KeyError:
        raise ValueError(f"Unknown colormap {colormap!r}; choose one of {', '.join(COLORMAPS)}.") from None
    u8 = np.clip(m01 * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, code), cv2.COLOR_BGR2RGB)


def overlay(
    image: Image.Image | np.ndarray,
    m01: np.ndarray,
    alpha: float = 0.5,
    colormap: str = DEFAULT_COLORMAP,
) -> np.ndarray:
    """Blend a [0, 1] map, resized to the image, over the image: (1 - alpha) * image + alpha * colour.

    Returns (H, W, 3) uint8 RGB at the image's size.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"Overlay opacity must be between 0 and 1, got {alpha}.")
    base = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.uint8)
    heat = colorize(resize_map(m01, (base.shape[1], base.shape[0])), colormap)
    return cv2.addWeighted(base, 1.0 - alpha, heat, alpha, 0.0)


def colorbar(vmin: float, vmax: float, colormap: str = DEFAULT_COLORMAP, height: int = 256, width: int = 24) -> np.ndarray:
    """A vertical colour bar, top = vmax, bottom = vmin, as (height, width, 3) uint8 RGB."""
    ramp = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None].repeat(width, axis=1)
    return colorize(ramp, colormap)
