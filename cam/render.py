"""Post-processing of raw maps, kept apart from the maths: ReLU, safe scaling, resizing, colour.

Raw maps (``Explanation.maps``) are never modified; everything here returns new arrays.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

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


def colorbar(
    vmin: float, vmax: float, colormap: str = DEFAULT_COLORMAP, height: int = 256, width: int = 24
) -> np.ndarray:
    """A vertical colour bar, top = vmax, bottom = vmin, as (height, width, 3) uint8 RGB."""
    ramp = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None].repeat(width, axis=1)
    return colorize(ramp, colormap)


# ---------------------------------------------------------------------------------------------
# Figure helpers for the app and downloads: small pure functions, (H, W, 3) uint8 RGB in and out.

PANEL_BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (30, 30, 30)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's built-in font: no font file needed on the Space.
    return ImageFont.load_default(size=size)


def _fmt(v: float) -> str:
    return f"{v:.3g}" if v != 0 else "0"


def labelled_colorbar(
    vmin: float, vmax: float, colormap: str = DEFAULT_COLORMAP, height: int = 256, *, zero_line: bool = True
) -> np.ndarray:
    """`colorbar` with its values written beside it: vmax at the top, vmin at the bottom, and 0 when
    it lies strictly inside the range (marked by a line across the bar). Returns (height, W, 3) uint8."""
    bar = colorbar(vmin, vmax, colormap, height=height, width=16)
    font = _font(12)
    labels = [(0, _fmt(vmax)), (height - 1, _fmt(vmin))]
    if zero_line and vmin < 0 < vmax:
        y0 = round((vmax / (vmax - vmin)) * (height - 1))
        bar[max(0, y0 - 1) : y0 + 1] = 255
        labels.append((y0, "0"))
    text_w = max(int(font.getlength(t)) for _, t in labels) + 6
    canvas = Image.new("RGB", (bar.shape[1] + text_w, height), PANEL_BACKGROUND)
    canvas.paste(Image.fromarray(bar), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for y, text in labels:
        top = min(max(0, y - 6), height - 13)
        draw.text((bar.shape[1] + 4, top), text, fill=TEXT_COLOUR, font=font)
    return np.asarray(canvas)


def raw_heatmap(raw: np.ndarray, colormap: str = DEFAULT_COLORMAP, size: int = 256) -> np.ndarray:
    """The raw map (no ReLU), min-max coloured, with a colour bar labelled in the map's own units.

    Negative values stay visible here (they are evidence *against* the class); the overlays use
    ReLU then scaling instead. A constant map is drawn in the colour of its (single) value's bottom.
    """
    lo, hi = float(np.min(raw)), float(np.max(raw))
    heat = colorize(resize_map(scale_map(raw, relu=False), (size, size)), colormap)
    bar = labelled_colorbar(lo, hi, colormap, height=size)
    return hstack([heat, bar], gap=6)


def muted(image: Image.Image | np.ndarray, note: str, font_size: int | None = None) -> np.ndarray:
    """The photo greyed and dimmed with ``note`` written across it: used instead of a blank overlay
    when a map has nothing to show (e.g. no positive evidence for the class). ``font_size`` defaults
    to 1/22 of the width (at least 12 px); small tiles shown shrunk need more."""
    base = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.uint8)
    grey = cv2.cvtColor(cv2.cvtColor(base, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    dim = Image.fromarray((grey.astype(np.float32) * 0.45 + 120).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(dim)
    font = _font(font_size or max(12, dim.width // 22))
    lines = _wrap(note, font, dim.width - 20)
    line_h = int(font.size * 1.3) if isinstance(font, ImageFont.FreeTypeFont) else 14
    y = (dim.height - line_h * len(lines)) // 2
    for line in lines:
        x = (dim.width - int(font.getlength(line))) // 2
        draw.text((x, y), line, fill=(255, 255, 255), font=font, stroke_width=2, stroke_fill=(40, 40, 40))
        y += line_h
    return np.asarray(dim)


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def titled(panel: np.ndarray, title: str, width: int | None = None, font_size: int = 14) -> np.ndarray:
    """``panel`` with ``title`` (wrapped to the panel's width) written above it."""
    font = _font(font_size)
    w = width or panel.shape[1]
    lines = _wrap(title, font, w - 4)
    step = round(font_size * 1.3)
    head = 6 + step * len(lines)
    canvas = Image.new("RGB", (w, head + panel.shape[0]), PANEL_BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw.text((2, 3 + step * i), line, fill=TEXT_COLOUR, font=font)
    canvas.paste(Image.fromarray(panel), (0, head))
    return np.asarray(canvas)


def hstack(panels: list[np.ndarray], gap: int = 10) -> np.ndarray:
    """Panels side by side on a white background, top-aligned."""
    h = max(p.shape[0] for p in panels)
    w = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    out = np.full((h, w, 3), PANEL_BACKGROUND, dtype=np.uint8)
    x = 0
    for p in panels:
        out[: p.shape[0], x : x + p.shape[1]] = p
        x += p.shape[1] + gap
    return out


def pad(image: np.ndarray, margin: int = 10) -> np.ndarray:
    """A white margin around ``image``."""
    return np.pad(image, ((margin, margin), (margin, margin), (0, 0)), constant_values=255)
