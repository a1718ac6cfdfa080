"""Text and layout for figures: fonts, titles, notes, labels, stacking. No colour maps here
(`cam.render` builds on these); pictures are (H, W, 3) uint8 RGB in and out.

Text uses DejaVu Sans, which ships with matplotlib (a dependency), so the Space needs no system font.
Pillow's built-in font lacks ×, −, ≤ and Greek: "256×256" came out with a missing-glyph box.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

PANEL_BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (30, 30, 30)
MUTED_TEXT_COLOUR = (90, 90, 90)
MIN_FONT_SIZE = 14
# Figures are shown scaled to the page. A figure W px wide shown in a ~900 px column is scaled by
# 900 / W; one text pixel per 64 figure pixels keeps text >= 12 px on screen for W up to ~4800 px,
# and 14 px (MIN_FONT_SIZE) covers figures narrower than ~900 px shown at full size.
FIGURE_WIDTH_PER_FONT_PX = 64

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _dejavu_path(bold: bool) -> Path | None:
    """DejaVu Sans (Bold) from matplotlib's mpl-data, else wherever font_manager finds it."""
    try:
        import matplotlib
        from matplotlib import font_manager
    except ImportError:  # matplotlib is a dependency; stay usable (with Pillow's font) without it
        return None
    bundled = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    if bundled.is_file():
        return bundled
    props = font_manager.FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal")
    try:
        return Path(font_manager.findfont(props, fallback_to_default=False))
    except ValueError:
        return None


@functools.cache
def figure_font(size: int, bold: bool = False) -> Font:
    """DejaVu Sans at ``size`` px (cached per size). Falls back to Pillow's default font only if
    matplotlib's copy is missing, which loses the ×, − and Greek glyphs."""
    path = _dejavu_path(bold)
    if path is not None:
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def figure_font_size(width: int) -> int:
    """Font size in px for a figure ``width`` px wide: readable (>= 12 px) once the page scales the
    figure into a desktop column, and never below 14 px in the PNG."""
    return max(MIN_FONT_SIZE, round(width / FIGURE_WIDTH_PER_FONT_PX))


def _line_height(font: Font) -> int:
    size = font.size if isinstance(font, ImageFont.FreeTypeFont) else 11
    return round(size * 1.3)


def wrap(text: str, font: Font, width: int) -> list[str]:
    """``text`` split into lines no wider than ``width`` px (a longer single word keeps its line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def titled(
    panel: np.ndarray,
    title: str,
    width: int | None = None,
    font_size: int | None = None,
    *,
    min_lines: int = 1,
    bold: bool = False,
) -> np.ndarray:
    """``panel`` with ``title`` (wrapped to ``width``, default the panel's) written above it.

    ``font_size`` defaults to `figure_font_size` of that width; pass the whole figure's font size
    when the panel is one of several side by side. ``min_lines`` reserves room for that many lines
    so panels in a row stay aligned when some titles wrap and others do not."""
    w = width or panel.shape[1]
    font = figure_font(font_size or figure_font_size(w), bold)
    lines = wrap(title, font, w - 4) if title else []
    step = _line_height(font)
    head = (6 + step * max(len(lines), min_lines)) if (lines or min_lines > 1) else 0
    canvas = Image.new("RGB", (max(w, panel.shape[1]), head + panel.shape[0]), PANEL_BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw.text((2, 3 + step * i), line, fill=TEXT_COLOUR, font=font)
    canvas.paste(Image.fromarray(np.ascontiguousarray(panel)), (0, head))
    return np.asarray(canvas)


def label_column(
    height: int,
    labels: Sequence[tuple[float, str]],
    font_size: int = MIN_FONT_SIZE,
    *,
    muted_from: int | None = None,
    margin: int = 4,
) -> np.ndarray:
    """A white (height, W, 3) strip with each ``(y, text)`` written with its vertical middle at y
    (kept inside the strip), W fitting the longest text. Labels from index ``muted_from`` on are
    drawn in grey (used for the words that explain the numbers)."""
    font = figure_font(font_size)
    width = max((int(font.getlength(t)) for _, t in labels), default=0) + 2 * margin
    canvas = Image.new("RGB", (max(width, 1), height), PANEL_BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for i, (y, text) in enumerate(labels):
        _, top, _, bottom = font.getbbox(text, anchor="lm")
        yc = min(max(float(y), -float(top)), height - 1 - float(bottom))
        colour = MUTED_TEXT_COLOUR if muted_from is not None and i >= muted_from else TEXT_COLOUR
        draw.text((margin, yc), text, fill=colour, font=font, anchor="lm")
    return np.asarray(canvas)


def muted(image: Image.Image | np.ndarray, note: str, font_size: int | None = None) -> np.ndarray:
    """The photo greyed and dimmed with ``note`` written across it: used instead of a blank overlay
    when a map has nothing to show (e.g. no positive evidence for the class). ``font_size`` defaults
    to 1/22 of the width (at least 14 px); small tiles shown shrunk need more."""
    base = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.uint8)
    grey = cv2.cvtColor(cv2.cvtColor(base, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    dim = Image.fromarray((grey.astype(np.float32) * 0.45 + 120).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(dim)
    font = figure_font(font_size or max(MIN_FONT_SIZE, dim.width // 22))
    lines = wrap(note, font, dim.width - 20)
    line_h = _line_height(font)
    y = (dim.height - line_h * len(lines)) // 2
    for line in lines:
        x = (dim.width - int(font.getlength(line))) // 2
        draw.text((x, y), line, fill=(255, 255, 255), font=font, stroke_width=2, stroke_fill=(40, 40, 40))
        y += line_h
    return np.asarray(dim)


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


def vstack(panels: list[np.ndarray], gap: int = 10) -> np.ndarray:
    """Panels one above the other on a white background, left-aligned."""
    w = max(p.shape[1] for p in panels)
    h = sum(p.shape[0] for p in panels) + gap * (len(panels) - 1)
    out = np.full((h, w, 3), PANEL_BACKGROUND, dtype=np.uint8)
    y = 0
    for p in panels:
        out[y : y + p.shape[0], : p.shape[1]] = p
        y += p.shape[0] + gap
    return out


def pad(image: np.ndarray, margin: int = 10) -> np.ndarray:
    """A white margin around ``image``."""
    return np.pad(image, ((margin, margin), (margin, margin), (0, 0)), constant_values=255)
