"""The Methods tab: every CAM-family method for one class and layer, their correlations, and which of
them equal CAM up to a positive scale (checked on the numbers, then explained)."""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
from PIL import Image

from cam import METHODS, Explanation, render
from cam.compare import MethodEquivalences
from cam.methods import display_name, method_title
from cam.network import GAP_LAYER, layer_channels
from explorer.maps import Settings, paint, photo_of

TILE_SIDE = 320  # eight tiles at once

WHY_AT_GAP = {
    "gradcam": "Grad-CAM averages that constant gradient over the pixels: "
    "α<sub>k</sub> = w<sup>c</sup><sub>k</sub>/(H·W).",
    "hirescam": "HiResCAM multiplies every activation by the gradient pixel by pixel: "
    "Σ<sub>k</sub> w<sup>c</sup><sub>k</sub> A<sup>k</sup>/(H·W).",
    "xgradcam": "XGrad-CAM weights each channel by Σ g·A / Σ A, which for a constant gradient g is "
    "w<sup>c</sup><sub>k</sub>/(H·W) again.",
    "gradcam++": "Grad-CAM++ keeps only positive gradients (it drops channels with w<sup>c</sup><sub>k</sub> < 0) "
    "and reweights each channel by 1/(2 + S<sub>k</sub> w<sup>c</sup><sub>k</sub>/(H·W)), S<sub>k</sub> the "
    "channel's sum: channels count differently than in CAM.",
    "layercam": "LayerCAM keeps only positive gradients: Σ<sub>k</sub> ReLU(w<sup>c</sup><sub>k</sub>) "
    "A<sup>k</sup>/(H·W), CAM without the channels that speak against the class; it equals CAM only when no "
    "active channel has a negative weight.",
    "eigencam": "Eigen-CAM ignores the class: it projects the activations on their first principal component.",
    "scorecam": "Score-CAM weights channels by how much masking the photo with each channel raises the class "
    "score (a softmax over channels), not by w<sup>c</sup><sub>k</sub>.",
}


def map_label(method: str, layer: str) -> str:
    """A short name for tables and legends; CAM says where it was computed when that is not ``layer``."""
    name = display_name(method)
    return f"{name} ({GAP_LAYER})" if method == "cam" and layer != GAP_LAYER else name


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class MethodsView:
    tiles: list[tuple[np.ndarray, str]]  # (picture, caption) in METHODS order
    eq: MethodEquivalences
    matrix_html: str
    statement_md: str


def method_tiles(r: Explanation, layer: str, s: Settings) -> list[tuple[np.ndarray, str]]:
    """One picture per method over the photo (ReLU + min-max scaled), or the photo greyed with a note."""
    photo = photo_of(r).copy()
    photo.thumbnail((TILE_SIDE, TILE_SIDE), Image.Resampling.BILINEAR)
    note_size = max(16, photo.width // 11)  # tiles are shown at ~200 px: notes need big letters
    tiles = []
    for m in METHODS:
        caption = method_title(m)
        if m not in r.class_maps:
            img = render.muted(
                photo, f"Press “Compute Score-CAM” ({layer_channels(layer)} passes)", font_size=note_size
            )
            caption += ", not computed yet"
        elif m == "cam" and layer != GAP_LAYER:
            img = render.muted(photo, f"CAM exists only at {GAP_LAYER}", font_size=note_size)
            caption += f", only at {GAP_LAYER}"
        else:
            caption += f", {r.layers[m]}" + ("" if METHODS[m].class_specific else ", any class")
            if r.has_positive_evidence(m):
                img = paint(photo, render.scale_map(r.maps[m]), s)
            else:
                img = render.muted(photo, f"No positive evidence for {r.target}", font_size=note_size)
                caption += ", no evidence"
        tiles.append((img, caption))
    return tiles


def correlation_color(v: float) -> tuple[str, str]:
    """(background, text) CSS colours for a correlation: red for +1, white for 0, blue for -1."""
    if not np.isfinite(v):
        return "#eeeeee", "#555555"
    t = min(abs(v), 1.0)
    end = (214, 96, 77) if v >= 0 else (67, 147, 195)
    rgb = tuple(round(255 + (e - 255) * t) for e in end)
    return "#{:02x}{:02x}{:02x}".format(*rgb), ("#ffffff" if t > 0.65 else "#1e1e1e")


def correlation_table_html(eq: MethodEquivalences, layer: str, class_name: str) -> str:
    """The correlation matrix as a coloured HTML table with its numbers; ≡ marks pairs equal up to a
    positive scale."""
    names = list(eq.names)
    equal = {("cam", m) for m in eq.equal_to_cam} | set(eq.equal_pairs)
    cell = "padding:4px 6px;text-align:center;border:1px solid #ddd;font-variant-numeric:tabular-nums"
    head = "".join(f'<th style="{cell}">{html.escape(map_label(m, layer))}</th>' for m in names)
    rows = [f"<tr><th></th>{head}</tr>"]
    for i, a in enumerate(names):
        tds = []
        for j, b in enumerate(names):
            v = float(eq.correlations[i, j])
            bg, fg = correlation_color(v)
            mark = " ≡" if (a, b) in equal or (b, a) in equal else ""
            text = f"{v:.3f}" if np.isfinite(v) else "n/a"
            tds.append(f'<td style="{cell};background:{bg};color:{fg}">{text}{mark}</td>')
        label = html.escape(map_label(a, layer))
        rows.append(f'<tr><th style="{cell};text-align:right">{label}</th>{"".join(tds)}</tr>')
    caption = (
        f"Pearson correlation of the raw maps (before ReLU) for class <b>{html.escape(class_name)}</b>. "
        "≡: equal up to a positive scale (map = s × other map, s > 0, relative error ≤ 10<sup>-4</sup>). "
        "n/a: a constant map has nothing to correlate."
    )
    return (
        '<div id="methods-matrix-table" class="cam-scroll">'
        f'<table style="border-collapse:collapse;font-size:13px">{"".join(rows)}</table>'
        f'<p style="font-size:13px;margin-top:4px">{caption}</p></div>'
    )


def methods_statement(r: Explanation, layer: str, eq: MethodEquivalences) -> str:
    """Which methods equal CAM up to a positive scale here, from the numbers, and why."""
    names = list(eq.names)
    cam_row = dict(zip(names, eq.correlations[names.index("cam")], strict=True))
    others = [m for m in names if m != "cam"]
    hw = r.maps["cam"].size

    def r_of(m: str) -> str:
        v = float(cam_row[m])
        return f"r = {v:.3f}" if np.isfinite(v) else "r undefined"

    if layer == GAP_LAYER:
        same = [m for m in others if m in eq.equal_to_cam]
        differ = [m for m in others if m not in eq.equal_to_cam]
        lines = []
        if same:
            scales = ", ".join(f"{display_name(m)} × {eq.equal_to_cam[m]:,.1f}" for m in same)
            lines.append(
                f"**At {GAP_LAYER}, {_join([display_name(m) for m in same])} equal CAM up to a positive scale** "
                f"for class *{r.target}* (checked on the maps: {scales} give CAM; H·W = {hw:,}).\n\n"
                f"**Why:** {GAP_LAYER} is the layer global average pooling averages and only the linear layer "
                "follows, so ∂y<sub>c</sub>/∂A<sup>k</sup>(x, y) = w<sup>c</sup><sub>k</sub>/(H·W) is the same "
                "at every pixel."
            )
            lines += [f"- {WHY_AT_GAP[m]}" for m in same if m in WHY_AT_GAP]
        else:
            lines.append(f"**At {GAP_LAYER}, no method equals CAM up to a positive scale for class *{r.target}*.**")
        if differ:
            lines.append(f"\n**Not equal to CAM here:** {', '.join(f'{display_name(m)} ({r_of(m)})' for m in differ)}.")
            lines += [f"- {WHY_AT_GAP[m]}" for m in differ if m in WHY_AT_GAP]
    else:
        near = [m for m in others if m in eq.equal_to_cam]
        verdict = (
            f"and, checked on the maps, none of the methods at {layer} equals it up to a positive scale"
            if not near
            else f"yet {_join([display_name(m) for m in near])} equal it up to a positive scale here"
        )
        lines = [
            f"**At {layer} the methods part ways.** CAM exists only at {GAP_LAYER} (its tile is greyed; the "
            f"matrix keeps CAM at {GAP_LAYER} as a reference), {verdict}: correlation with CAM "
            f"{', '.join(f'{display_name(m)} {r_of(m)}' for m in others)}.",
            f"\n**Why:** below {GAP_LAYER} the gradient ∂y<sub>c</sub>/∂A<sup>k</sup>(x, y) flows back through "
            "later convolutions and ReLUs, so it changes from pixel to pixel. Averaging it (Grad-CAM), using it "
            "pixel by pixel (HiResCAM), weighting it by the activations (XGrad-CAM) or keeping its positive part "
            "(Grad-CAM++, LayerCAM) now give different maps.",
        ]
    if eq.equal_pairs:
        pairs = "; ".join(f"{display_name(a)} ≡ {display_name(b)}" for a, b in eq.equal_pairs)
        lines.append(f"\nOther pairs equal up to a positive scale here: {pairs}.")
    elif layer != GAP_LAYER:
        lines.append(f"\nNo two methods at {layer} are equal up to a positive scale for this class.")
    return "\n".join(lines)


def methods_references() -> str:
    return "**Papers.** " + "; ".join(f"{display_name(m)}: {METHODS[m].reference}" for m in METHODS) + "."
