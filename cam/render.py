"""Post-processing of raw maps, kept apart from the maths: ReLU, safe scaling, resizing, colour,
overlays, signed heatmaps, colour bars and a comparison figure.

Raw maps (``Explanation.maps``) are never modified; everything here returns new arrays, (H, W, 3)
uint8 RGB for pictures. Fonts, titles and stacking live in `cam.figures` (no colour there), and
are re-exported here so ``render.titled`` and friends keep working.

Colour maps are matplotlib's, used only as look-up tables (``matplotlib.colormaps[name]``): no
pyplot, no GUI backend. matplotlib is imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from PIL import Image

from cam.errors import CamError
from cam.figures import (
    MIN_FONT_SIZE,
    PANEL_BACKGROUND,
    TEXT_COLOUR,
    figure_font,
    figure_font_size,
    hstack,
    label_column,
    muted,
    pad,
    titled,
    vstack,
    wrap,
)


class RenderError(CamError, ValueError):
    """A rendering option is invalid: unknown colour map, opacity or percentage out of range."""


# Sequential maps for ReLU'd, [0, 1]-scaled maps: id (what the app and CLI pass) -> matplotlib name.
# The default is inferno: perceptually uniform (equal steps in value look like equal steps in colour),
# readable by colour-blind readers and in greyscale (its lightness rises monotonically), and its
# purple-red-yellow hues stand out on green foliage, where viridis's greens blend into the plant.
# jet stays one click away because the course's notebooks use it.
COLORMAPS: dict[str, str] = {
    "inferno": "inferno",
    "jet": "jet",
    "viridis": "viridis",
    "cividis": "cividis",
    "magma": "magma",
    "plasma": "plasma",
    "turbo": "turbo",
    "hot": "hot",
}
COLORMAP_LABELS: dict[str, str] = {
    "inferno": "inferno (default, colour-blind safe)",
    "jet": "jet, as in the course",
    "viridis": "viridis",
    "cividis": "cividis (optimised for colour-blind readers)",
    "magma": "magma",
    "plasma": "plasma",
    "turbo": "turbo (rainbow, like jet but smoother)",
    "hot": "hot",
}
DEFAULT_COLORMAP = "inferno"

# Diverging maps for signed (raw, pre-ReLU) maps, centred on zero. RdBu_r is ColorBrewer's red-blue
# scheme, which ColorBrewer marks colour-blind safe (red and blue stay apart for the common red-green
# deficiencies); its centre is a neutral near-white, so "no evidence" reads as "nothing there", red
# (warm, like the overlays' hot end) is evidence for the class and blue evidence against it.
DIVERGING_COLORMAPS: dict[str, str] = {"rdbu": "RdBu_r", "puor": "PuOr_r", "brbg": "BrBG"}
DEFAULT_DIVERGING = "rdbu"

# Sequential LUTs have 256 entries (one per uint8 level). Diverging ones have 257: an odd count puts
# an entry exactly at the middle (index 128 = value 0.5), so zero gets the map's true centre colour
# and both signs get 128 levels each.
SEQUENTIAL_LEVELS = 256
DIVERGING_LEVELS = 257

FRAME_GREY = 120

OverlayBlend = Literal["value", "uniform"]


def _lookup(colormap: str, table: dict[str, str], kind: str) -> str:
    try:
        return table[colormap]
    except (KeyError, TypeError):
        raise RenderError(f"Unknown {kind} colour map {colormap!r}; choose one of {', '.join(table)}.") from None


@functools.cache
def _lut(mpl_name: str, levels: int) -> np.ndarray:
    """(levels, 3) uint8 RGB, sampled once per colour map and kept (read-only) for the process."""
    import matplotlib  # lazily: ~0.5 s, and only its colour tables are used

    # `resampled` re-interpolates segment-defined maps (jet, RdBu) at exactly `levels` points;
    # indexing with integers then returns the entries themselves, with no second rounding.
    cmap = matplotlib.colormaps[mpl_name].resampled(levels)
    lut = np.clip(cmap(np.arange(levels))[:, :3] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def colormap_lut(colormap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """The (256, 3) uint8 RGB table `colorize` uses for ``colormap`` (a `COLORMAPS` id)."""
    return _lut(_lookup(colormap, COLORMAPS, "sequential"), SEQUENTIAL_LEVELS)


def diverging_lut(colormap: str = DEFAULT_DIVERGING) -> np.ndarray:
    """The (257, 3) uint8 RGB table for signed maps (a `DIVERGING_COLORMAPS` id); row 128 is zero."""
    return _lut(_lookup(colormap, DIVERGING_COLORMAPS, "diverging"), DIVERGING_LEVELS)


def centre_colour(colormap: str = DEFAULT_DIVERGING) -> tuple[int, int, int]:
    """The colour a signed map's zero gets: the diverging map's middle entry."""
    r, g, b = (int(c) for c in diverging_lut(colormap)[DIVERGING_LEVELS // 2])
    return r, g, b


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


def _levels01(m01: np.ndarray, levels: int) -> np.ndarray:
    """[0, 1] floats (NaN as 0, out of range clipped) -> uint8 LUT indices 0 .. levels - 1 (<= 256)."""
    t = np.asarray(m01, dtype=np.float32) * np.float32(levels - 1)  # a new array: the map is left alone
    t += np.float32(0.5)
    if np.isnan(t).any():
        np.nan_to_num(t, copy=False, nan=0.0)
    np.clip(t, 0, levels - 1, out=t)
    return t.astype(np.uint8 if levels <= 256 else np.uint16)


def colorize(m01: np.ndarray, colormap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """(H, W) map in [0, 1] -> (H, W, 3) uint8 RGB. Values outside [0, 1] are clipped, NaN is 0."""
    return np.take(colormap_lut(colormap), _levels01(m01, SEQUENTIAL_LEVELS), axis=0)


def colormap_css_gradient(colormap: str = DEFAULT_COLORMAP, stops: int = 8) -> str:
    """A CSS ``linear-gradient(to right, ...)`` of ``colormap`` (low on the left), for a page legend.

    ``stops`` evenly spaced colours (at least 2) are enough: the browser interpolates between them.
    """
    lut = colormap_lut(colormap)
    n = max(2, int(stops))
    parts = []
    for i in range(n):
        r, g, b = lut[round(i * (SEQUENTIAL_LEVELS - 1) / (n - 1))]
        parts.append(f"#{r:02x}{g:02x}{b:02x} {round(100 * i / (n - 1), 1):g}%")
    return f"linear-gradient(to right, {', '.join(parts)})"


def overlay(
    image: Image.Image | np.ndarray,
    m01: np.ndarray,
    alpha: float = 0.8,
    colormap: str = DEFAULT_COLORMAP,
    *,
    blend: OverlayBlend = "value",
    top_percent: float | None = None,
    gamma: float = 0.5,
    desaturate: float = 0.0,
) -> np.ndarray:
    """Colour a [0, 1] map, resized to the image, over the image. Returns (H, W, 3) uint8 RGB.

    Per-pixel opacity is ``alpha * weight``, where:

    - ``blend="value"`` (default): weight = value ** ``gamma``, so the colour is as opaque as the
      evidence is strong and the plain photo shows where the map is low; ``alpha`` is the opacity at
      the map's maximum. ``gamma`` < 1 lifts weak evidence (0.5: a value of 0.25 gets half of
      ``alpha``), because CAMs are peaked and a linear weight leaves most of their support invisible.
    - ``blend="uniform"``: weight = 1, the course notebooks' ``(1 - alpha) * image + alpha * colour``.
    - ``top_percent=X`` (0 < X <= 100) sets weight = 0 outside the X % of the photo's pixels with
      the highest values (ties at the cut kept, pixels at 0 always out): only the strongest
      evidence is coloured. ``None`` (default) keeps every pixel.
    - ``desaturate`` in [0, 1] greys the photo first (1 = greyscale), so every colour seen comes from
      the map; 0 (default) keeps the photo's colours.
    """
    if not 0.0 <= alpha <= 1.0:
        raise RenderError(f"Overlay opacity must be between 0 and 1, got {alpha}.")
    if blend not in ("value", "uniform"):
        raise RenderError(f"Unknown overlay blend {blend!r}; choose 'value' or 'uniform'.")
    if top_percent is not None and not 0.0 < top_percent <= 100.0:
        raise RenderError(f"top_percent must be in (0, 100], got {top_percent}; use None to colour every pixel.")
    if not gamma > 0.0:
        raise RenderError(f"Overlay gamma must be positive, got {gamma}; 1 makes opacity proportional to value.")
    if not 0.0 <= desaturate <= 1.0:
        raise RenderError(f"desaturate must be between 0 (photo's colours) and 1 (greyscale), got {desaturate}.")
    base = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.uint8)
    m = np.clip(resize_map(np.asarray(m01, dtype=np.float32), (base.shape[1], base.shape[0])), 0.0, 1.0)
    if np.isnan(m).any():
        np.nan_to_num(m, copy=False, nan=0.0)
    heat = colorize(m, colormap)
    weight = (
        np.ones_like(m)
        if blend == "uniform"
        else np.sqrt(m)  # the default gamma: as np.power, but 10x faster
        if gamma == 0.5
        else np.power(m, np.float32(gamma))
    )
    if top_percent is not None:
        keep = max(1, int(np.ceil(m.size * top_percent / 100.0)))  # pixels kept: the top `keep` values
        cut = float(np.partition(m.ravel(), m.size - keep)[m.size - keep])
        weight[(m < cut) | (m <= 0.0)] = 0.0
    a = (np.float32(alpha) * weight).astype(np.float32, copy=False)
    photo: np.ndarray = np.ascontiguousarray(base)
    if desaturate > 0:
        grey = cv2.cvtColor(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        photo = cv2.addWeighted(photo, 1.0 - desaturate, grey, desaturate, 0.0)
    # Per pixel a * heat + (1 - a) * photo, rounded to uint8, in one SIMD pass.
    return cv2.blendLinear(heat, photo, a, np.float32(1.0) - a)


def colorbar(
    vmin: float, vmax: float, colormap: str = DEFAULT_COLORMAP, height: int = 256, width: int = 24
) -> np.ndarray:
    """A vertical colour bar, top = vmax, bottom = vmin, as (height, width, 3) uint8 RGB."""
    ramp = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None].repeat(width, axis=1)
    return colorize(ramp, colormap)


# ---------------------------------------------------------------------------------------------
# Signed (raw, pre-ReLU) maps: a diverging colour map with symmetric limits, zero in the centre.


@dataclass(frozen=True)
class SignedHeatmap:
    """A signed map coloured on [-limit, +limit] and its labelled colour bar, with the numbers shown.

    ``labels`` are the bar's texts from top to bottom ("+v", "0", "−v"); ``words`` say what each end
    means (top, bottom). ``figure`` is the map and the bar side by side, as `raw_heatmap` returns.
    """

    image: np.ndarray
    colorbar: np.ndarray
    limit: float
    labels: tuple[str, str, str]
    words: tuple[str, str]
    colormap: str

    @property
    def centre_colour(self) -> tuple[int, int, int]:
        return centre_colour(self.colormap)

    @property
    def figure(self) -> np.ndarray:
        # A thin grey frame: the neutral centre is near-white, and so is the page around the map.
        framed = np.pad(self.image, ((1, 1), (1, 1), (0, 0)), constant_values=FRAME_GREY)
        return hstack([framed, self.colorbar], gap=6)


def symmetric_limit(raw: np.ndarray) -> float:
    """max |raw| over the finite values (0 for an empty, all-zero or all-non-finite map)."""
    r = np.asarray(raw, dtype=np.float64)
    finite = r[np.isfinite(r)]
    return float(np.abs(finite).max()) if finite.size else 0.0


def colorize_signed(raw: np.ndarray, limit: float, colormap: str = DEFAULT_DIVERGING) -> np.ndarray:
    """(H, W) signed values -> (H, W, 3) uint8: -limit, 0, +limit -> the diverging map's bottom,
    centre and top. ``limit`` <= 0 (a constant-zero map) colours everything with the centre colour.
    NaN counts as 0; values beyond ±limit are clipped."""
    lut = diverging_lut(colormap)
    r = np.nan_to_num(np.asarray(raw, dtype=np.float64), nan=0.0, posinf=max(limit, 0.0), neginf=-max(limit, 0.0))
    if not limit > 0.0:
        return np.broadcast_to(lut[DIVERGING_LEVELS // 2], (*r.shape, 3)).copy()
    half = DIVERGING_LEVELS // 2  # 128: index = 128 + 128 * raw / limit, zero exactly in the middle
    idx = np.clip(np.rint(half + half * (r / limit)), 0, DIVERGING_LEVELS - 1).astype(np.intp)
    return lut[idx]


def symmetric_labels(limit: float) -> tuple[str, str, str]:
    """("+v", "0", "−v") for a colour bar on [-limit, +limit], both ends formatted identically; a
    zero limit gives ("0", "0", "0")."""
    if not limit > 0.0:
        return "0", "0", "0"
    text = f"{limit:.3g}"
    if "e" in text:  # 1.2e-05 -> 1.2e−5: a real minus sign, no padded exponent
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{'−' if exponent.startswith('-') else ''}{int(exponent.lstrip('+-'))}"
    return f"+{text}", "0", f"−{text}"


def signed_heatmap(
    raw: np.ndarray,
    size: int = 256,
    *,
    colormap: str = DEFAULT_DIVERGING,
    positive: str = "for the class",
    negative: str = "against",
    font_size: int | None = None,
) -> SignedHeatmap:
    """A raw map (no ReLU) resized to ``size`` x ``size`` and coloured on the symmetric range
    [-max|raw|, +max|raw|], zero neutral, with a colour bar labelled +v / 0 / −v and the meaning of
    each end (``positive`` at the top, ``negative`` at the bottom)."""
    limit = symmetric_limit(raw)
    resized = resize_map(np.asarray(raw, dtype=np.float32), (size, size))
    image = colorize_signed(resized, limit, colormap)
    labels = symmetric_labels(limit)
    bar = signed_colorbar(labels, (positive, negative), colormap, height=size, font_size=font_size)
    return SignedHeatmap(image, bar, limit, labels, (positive, negative), colormap)


def raw_heatmap(
    raw: np.ndarray,
    size: int = 256,
    *,
    colormap: str = DEFAULT_DIVERGING,
    positive: str = "for the class",
    negative: str = "against",
) -> np.ndarray:
    """`signed_heatmap`'s figure: the raw map on a zero-centred diverging map beside its colour bar.

    Negative values stay visible here (they are evidence *against* the class); the overlays use
    ReLU then scaling instead. Use `signed_heatmap` to read the limit and labels back.
    """
    return signed_heatmap(raw, size, colormap=colormap, positive=positive, negative=negative).figure


# ---------------------------------------------------------------------------------------------
# Colour bars with labels, and a side-by-side comparison figure.

COLORBAR_WIDTH = 18


def _fmt(v: float) -> str:
    return f"{v:.3g}".replace("-", "−") if v != 0 else "0"


def signed_colorbar(
    labels: tuple[str, str, str],
    words: tuple[str, str] = ("for the class", "against"),
    colormap: str = DEFAULT_DIVERGING,
    height: int = 256,
    *,
    font_size: int | None = None,
) -> np.ndarray:
    """A vertical diverging bar (top = +limit, middle row = 0 in the centre colour, bottom = −limit)
    with ``labels`` (top, middle, bottom) beside it and ``words`` (top, bottom) under the top label
    and over the bottom one. Returns (height, W, 3) uint8."""
    lut = diverging_lut(colormap)
    half = DIVERGING_LEVELS // 2
    y0 = (height - 1) // 2  # the row drawn as exactly zero (the true middle when height is odd)
    ys = np.arange(height)
    idx = np.where(
        ys <= y0,
        np.rint(half + half * (y0 - ys) / max(y0, 1)),
        np.rint(half - half * (ys - y0) / max(height - 1 - y0, 1)),
    ).astype(np.intp)
    bar = np.repeat(lut[idx][:, None, :], COLORBAR_WIDTH, axis=1)
    bar[:, [0, -1]] = bar[[0, -1], :] = FRAME_GREY  # a thin frame: the neutral centre is near-white
    fs = font_size or figure_font_size(height)
    step = round(fs * 1.25)
    top, mid, bottom = labels
    texts = [(fs * 0.6, top), (y0, mid), (height - 1 - fs * 0.6, bottom)]
    texts += [(fs * 0.6 + step, words[0]), (height - 1 - fs * 0.6 - step, words[1])]
    column = label_column(height, texts, fs, muted_from=3)
    tick = np.full((height, 6, 3), PANEL_BACKGROUND, dtype=np.uint8)
    tick[max(0, y0 - 1) : y0 + 1, :] = TEXT_COLOUR  # a tick at zero, between the bar and its "0"
    return np.concatenate([bar, tick, column], axis=1)


def labelled_colorbar(
    vmin: float,
    vmax: float,
    colormap: str = DEFAULT_COLORMAP,
    height: int = 256,
    *,
    zero_line: bool = True,
    words: tuple[str, str] | None = None,
    font_size: int | None = None,
) -> np.ndarray:
    """`colorbar` with its values written beside it: vmax at the top, vmin at the bottom, and 0 when
    it lies strictly inside the range (marked by a line across the bar); ``words`` (top, bottom),
    e.g. ("high", "low"), are written under the top value and over the bottom one.
    Returns (height, W, 3) uint8."""
    bar = colorbar(vmin, vmax, colormap, height=height, width=COLORBAR_WIDTH)
    fs = font_size or figure_font_size(height)
    texts: list[tuple[float, str]] = [(fs * 0.6, _fmt(vmax)), (height - 1 - fs * 0.6, _fmt(vmin))]
    if zero_line and vmin < 0 < vmax:
        y0 = round((vmax / (vmax - vmin)) * (height - 1))
        bar[max(0, y0 - 1) : y0 + 1] = 255
        texts.append((y0, "0"))
    n_numbers = len(texts)
    if words is not None:
        step = round(fs * 1.25)
        texts += [(fs * 0.6 + step, words[0]), (height - 1 - fs * 0.6 - step, words[1])]
    column = label_column(height, texts, fs, muted_from=n_numbers)
    return np.concatenate([bar, np.full((height, 4, 3), PANEL_BACKGROUND, np.uint8), column], axis=1)


def comparison_figure(
    photo: Image.Image | np.ndarray | None,
    panels: Sequence[tuple[np.ndarray, str]],
    *,
    colormap: str = DEFAULT_COLORMAP,
    title: str | None = None,
    photo_title: str = "Photo",
    colorbar_words: tuple[str, str] | None = ("high", "low"),
    size: int = 256,
    columns: int | None = None,
    gap: int = 10,
) -> np.ndarray:
    """Photo, panels and one colour bar, each tile ``size`` x ``size`` and titled, in rows of
    ``columns`` tiles (default: one row; 2 gives a grid that stays legible on a phone).

    A panel is a (H, W) map in [0, 1] (coloured with ``colormap``) or an (H, W, 3) uint8 picture
    used as is (e.g. `muted`). Every title uses one font size, taken from the whole figure's width,
    so the figure stays readable when the page shrinks it, and room for the same number of lines,
    so tiles stay aligned when some titles wrap. ``colorbar_words=None`` leaves the bar out."""
    if photo is None and not panels:
        raise RenderError("A comparison figure needs a photo or at least one panel; both were empty.")
    tiles: list[tuple[np.ndarray, str]] = []
    if photo is not None:
        base = np.asarray(photo.convert("RGB") if isinstance(photo, Image.Image) else photo, dtype=np.uint8)
        tiles.append((cv2.resize(base, (size, size), interpolation=cv2.INTER_AREA), photo_title))
    for picture, text in panels:
        if picture.ndim == 2:
            picture = colorize(resize_map(np.asarray(picture, np.float32), (size, size)), colormap)
        elif picture.shape[:2] != (size, size):
            picture = cv2.resize(picture, (size, size), interpolation=cv2.INTER_AREA)
        tiles.append((picture, text))
    cols = max(1, min(columns or len(tiles), len(tiles)))
    # The bar's width depends on the font, the font on the width: estimate the bar at 5 em.
    fs = figure_font_size(cols * (size + gap) - gap + (5 * MIN_FONT_SIZE if colorbar_words else 0))
    n_lines = max(len(wrap(t, figure_font(fs), size - 4)) for _, t in tiles)
    titled_tiles = [titled(p, t, font_size=fs, min_lines=n_lines) for p, t in tiles]
    blank = np.full_like(titled_tiles[0], 255)
    rows = [titled_tiles[i : i + cols] for i in range(0, len(titled_tiles), cols)]
    grid = vstack([hstack(r + [blank] * (cols - len(r)), gap=gap) for r in rows], gap=gap)
    if colorbar_words is not None:
        head = titled_tiles[0].shape[0] - size  # the bar spans from the first image's top to the last's bottom
        bar = labelled_colorbar(0.0, 1.0, colormap, height=grid.shape[0] - head, words=colorbar_words, font_size=fs)
        grid = hstack([grid, np.pad(bar, ((head, 0), (0, 0), (0, 0)), constant_values=255)], gap=gap)
    if title:
        grid = titled(grid, title, font_size=round(fs * 1.15), bold=True)
    return pad(grid)


__all__ = [
    "COLORMAPS",
    "COLORMAP_LABELS",
    "DEFAULT_COLORMAP",
    "DEFAULT_DIVERGING",
    "DIVERGING_COLORMAPS",
    "PANEL_BACKGROUND",
    "TEXT_COLOUR",
    "RenderError",
    "SignedHeatmap",
    "centre_colour",
    "colorbar",
    "colorize",
    "colorize_signed",
    "colormap_css_gradient",
    "colormap_lut",
    "comparison_figure",
    "diverging_lut",
    "figure_font",
    "figure_font_size",
    "hstack",
    "label_column",
    "labelled_colorbar",
    "muted",
    "overlay",
    "pad",
    "raw_heatmap",
    "resize_map",
    "scale_map",
    "signed_colorbar",
    "signed_heatmap",
    "symmetric_labels",
    "symmetric_limit",
    "titled",
    "vstack",
]
