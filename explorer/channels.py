"""The "Inside the CAM" tab: the lesson's weighted sum, channel by channel, and at one pixel.

Everything here reads one `cam.channels.ChannelDecomposition` (one forward pass): the channel grid,
the sum built from the top k channels, the per-channel proof that Grad-CAM's weights are w / (H W),
and the decomposition of one clicked pixel. Charts are data frames for the page's native plots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from cam import render
from cam.channels import ChannelDecomposition
from cam.network import GAP_LAYER, INPUT_SIZE, receptive_box, receptive_field
from explorer.maps import Settings, paint

Show = Literal["top", "bottom", "all"]
TILE = 160  # px per feature-map tile: 64 of them stay small enough for a phone
PIXEL_VIEW = 512  # the clickable photo is the model input drawn at 2x, so a tap hits the pixel meant


@dataclass(frozen=True)
class ChannelTile:
    k: int
    picture: np.ndarray  # (TILE + label, TILE, 3) uint8: the feature map with its numbers written under it
    caption: str  # the same numbers as text (alt text and tests)


def is_pixel(value: Any) -> bool:
    """``[x, y]``: two whole numbers inside the model input."""
    inside = isinstance(value, list | tuple) and len(value) == 2
    return inside and all(type(v) is int and 0 <= v < INPUT_SIZE for v in value)


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:+.3g}"


def shown_channels(d: ChannelDecomposition, c: int, show: Show, n: int) -> list[int]:
    """Channel indices to draw: the n largest terms, the n smallest (those against the class), or all,
    in the order they are drawn."""
    order = [int(k) for k in d.order(c)]
    n = max(1, min(int(n), len(order)))
    if show == "top":
        return order[:n]
    if show == "bottom":
        return order[::-1][:n]
    return order


def channel_caption(d: ChannelDecomposition, c: int, k: int) -> str:
    if d.is_gap_layer:
        w = float(d.weights[c, k])  # type: ignore[index]
        return f"k={k} w={_fmt(w)} F={d.gap[k]:.3g} wF={_fmt(w * float(d.gap[k]))}"
    return f"k={k} α·HW={_fmt(float(d.alpha[c, k]) * d.hw)} F={d.gap[k]:.3g}"


def channel_tiles(d: ChannelDecomposition, c: int, show: Show, n: int) -> list[ChannelTile]:
    """Each shown feature map A^k in grey (A^k >= 0 after the ReLU), 0 black and its 99th percentile
    white (the maps are sparse: scaled to their maximum most would look black), numbers above it."""
    tiles = []
    for k in shown_channels(d, c, show, n):
        a = d.activations[k]
        top = float(np.percentile(a, 99)) or float(a.max()) or 1.0
        grey = (np.clip(a / top, 0, 1) * 255).astype(np.uint8)
        img = np.asarray(Image.fromarray(grey).convert("RGB").resize((TILE, TILE), Image.Resampling.BILINEAR))
        caption = channel_caption(d, c, k)
        tiles.append(ChannelTile(k, render.titled(img, caption, font_size=17, min_lines=3), caption))
    return tiles


def partial_sum(d: ChannelDecomposition, c: int, k: int, photo256: np.ndarray, s: Settings) -> tuple[np.ndarray, str]:
    """The map from the k largest channel terms over the photo, and the partial logit beside the true one."""
    k = max(1, min(int(k), d.n_channels))
    m = d.partial_cam(c, k)
    shown = (
        paint(photo256, render.scale_map(m), s)
        if np.any(m > 0)
        else render.muted(photo256, "No positive evidence in these channels", font_size=16)
    )
    name, logit = d.class_names[c], float(d.logits[c])
    if d.is_gap_layer:
        part = d.partial_logit(c, k)
        text = (
            f"**Top {k} of {d.n_channels} channels** for *{name}*: partial logit "
            f"Σ<sub>top {k}</sub> w<sub>k</sub>F<sup>k</sup> + b = **{part:.4f}**, true logit y = **{logit:.4f}** "
            f"(difference {abs(part - logit):.2e}{', the full sum' if k == d.n_channels else ''})."
        )
    else:
        text = (
            f"**Top {k} of {d.n_channels} channels** of Grad-CAM at {d.layer} for *{name}*, ranked by "
            f"α<sub>k</sub>F<sup>k</sup>. There is no partial logit here: below {GAP_LAYER} no linear layer turns "
            f"the maps into the score (true logit {logit:.4f})."
        )
    return shown, text


def proof_frame(d: ChannelDecomposition, c: int) -> pd.DataFrame:
    """One row per channel: x = w_k (conv3) or the channel index (conv1/conv2), y = Grad-CAM's
    alpha_k x H W. ``attrs["x_title"]`` names the x axis."""
    if d.is_gap_layer:
        x, x_title = d.weights[c].astype(np.float64), "w_k, the fc weight"  # type: ignore[index]
    else:
        x, x_title = np.arange(d.n_channels, dtype=np.float64), f"channel k of {d.layer}"
    frame = pd.DataFrame({"x": x, "y": d.alpha[c] * d.hw, "channel": [f"k={k}" for k in range(d.n_channels)]})
    frame.attrs["x_title"] = x_title
    return frame


def proof_text(d: ChannelDecomposition, c: int) -> str:
    if d.is_gap_layer:
        w = d.weights[c].astype(np.float64)  # type: ignore[index]
        err = float(np.max(np.abs(d.alpha[c] * d.hw - w)))
        return (
            f"Every point lies on the diagonal: Grad-CAM's weight α<sub>k</sub> × H·W equals the fc weight "
            f"w<sub>k</sub> for all {d.n_channels} channels (largest gap {err:.1e}), because at {GAP_LAYER} "
            "∂y/∂A<sup>k</sup>(x, y) = w<sub>k</sub>/(H·W) at every pixel."
        )
    return (
        f"At {d.layer} there is no w: no linear layer reads these maps. Grad-CAM weights each channel by its "
        "mean gradient α<sub>k</sub> (shown × H·W), which has passed back through later convolutions and ReLUs."
    )


def pixel_view(
    d: ChannelDecomposition, c: int, x: int, y: int, photo256: np.ndarray
) -> tuple[np.ndarray, pd.DataFrame, str]:
    """The photo (2x) with the pixel's receptive field drawn, its channel terms (largest first), and the sum."""
    x0, y0, x1, y1 = receptive_box(d.layer, x, y)
    scale = PIXEL_VIEW // photo256.shape[0]
    img = Image.fromarray(photo256).resize((PIXEL_VIEW, PIXEL_VIEW), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(img)
    draw.rectangle([x0 * scale - 1, y0 * scale - 1, x1 * scale, y1 * scale], outline=(255, 255, 255), width=3)
    draw.rectangle([x0 * scale - 3, y0 * scale - 3, x1 * scale + 2, y1 * scale + 2], outline=(0, 0, 0), width=2)
    terms = d.pixel_terms(c, x, y)
    order = np.argsort(-terms, kind="stable")
    frame = pd.DataFrame(
        {"channel": [f"k={int(k)}" for k in order], "term": terms[order], "rank": np.arange(len(order))}
    )
    rf = receptive_field(d.layer)
    total = float(terms.sum())
    if d.is_gap_layer:
        text = (
            f"**Pixel ({x}, {y})** of the 256×256 input: CAM = Σ<sub>k</sub> w<sub>k</sub>A<sup>k</sup>({x}, {y}) = "
            f"**{total:.4f}**, the sum of the {d.n_channels} terms below. "
            f"It sees the {rf}×{rf} patch drawn on the photo."
        )
    else:
        text = (
            f"**Pixel ({x}, {y})**: Grad-CAM at {d.layer} before ReLU = Σ<sub>k</sub> α<sub>k</sub>A<sup>k</sup> = "
            f"**{total:.6f}** (no CAM at {d.layer}). It sees the {rf}×{rf} patch drawn on the photo."
        )
    return np.asarray(img), frame, text


def clickable_photo(photo256: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(photo256).resize((PIXEL_VIEW, PIXEL_VIEW), Image.Resampling.NEAREST))
