"""The heading, and the CAM and Grad-CAM tabs: photo-vs-overlay pictures and the raw signed map."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cam import Explanation, render
from cam.network import GAP_LAYER

TEXT = Path(__file__).parent / "text"
PREDICTED = "predicted"  # the class control's value for "follow the model"


@dataclass(frozen=True)
class Settings:
    """What the reader chose on the left: the same for every tab."""

    target: str = PREDICTED  # "predicted" or a class name
    layer: str = GAP_LAYER  # Grad-CAM's layer (CAM is always at conv3)
    opacity: float = 0.8  # at the map's maximum; the photo shows through where the map is low
    colormap: str = render.DEFAULT_COLORMAP
    shared_scale: bool = False  # All classes: one colour scale for the four maps


DESATURATE = 0.5  # grey the photo half-way, so the colours on it are the map's (the plants are green)
GAMMA = 0.35  # opacity = alpha x value^gamma: these maps are thin speckles, so weak evidence must still show


def paint(photo: Image.Image | np.ndarray, m01: np.ndarray, s: Settings) -> np.ndarray:
    """The page's one overlay style: opacity follows the map's value, on a slightly greyed photo."""
    return render.overlay(photo, m01, alpha=s.opacity, colormap=s.colormap, desaturate=DESATURATE, gamma=GAMMA)


def percent(p: float) -> str:
    return "<0.1%" if 0 < p < 0.001 else (">99.9%" if 0.999 < p < 1 else f"{p:.1%}")


def method_label(method: str, layer: str) -> str:
    """'CAM' or 'Grad-CAM at conv2': the map as the page names it."""
    return "CAM" if method == "cam" else f"Grad-CAM at {layer}"


def photo_of(r: Explanation) -> Image.Image:
    assert r.image is not None and r.image.display is not None
    return r.image.display


def heading(r: Explanation, requested: str) -> str:
    """'Explaining rudo (the predicted class), probability 97.1%'."""
    if requested == PREDICTED:
        why = "the predicted class"
    elif r.target == r.predicted:
        why = "your choice; it is also the predicted class"
    else:
        why = f"your choice; the model predicts **{r.predicted}**"
    return f"### Explaining **{r.target}** ({why}), probability {percent(r.probabilities[r.target])}"


def no_evidence_note(r: Explanation, method: str, layer: str) -> str:
    return (
        f"**No positive evidence for {r.target}.** Every value of the {method_label(method, layer)} map "
        f"is ≤ 0: no region of this photo raises the score of *{r.target}*, so after ReLU there is "
        "nothing to highlight. The raw map shows how strongly each region speaks against it."
    )


def overlay_or_note(r: Explanation, method: str, s: Settings) -> tuple[np.ndarray, str]:
    """The overlay (ReLU + min-max scaled map over the photo), or the photo greyed with a note when
    the map has no positive value (after ReLU it would be blank; scaling would divide 0 by 0)."""
    photo = photo_of(r)
    if not r.has_positive_evidence(method):
        return render.muted(photo, f"No positive evidence for {r.target}"), no_evidence_note(r, method, s.layer)
    return paint(photo, render.scale_map(r.maps[method]), s), ""


def raw_map_figure(r: Explanation, method: str, layer: str) -> np.ndarray:
    """The raw map before ReLU on a diverging scale centred on zero, with its colour bar, titled."""
    title = f"Raw {method_label(method, layer)} for {r.target}, before ReLU"
    figure = render.raw_heatmap(r.maps[method], size=384, positive=f"for {r.target}", negative="against")
    return render.pad(render.titled(figure, title, font_size=18), 6)


def legend_html(colormap: str) -> str:
    """The overlay's colour legend: low to high evidence (ReLU'd, scaled to 0-1)."""
    gradient = render.colormap_css_gradient(colormap)
    return (
        '<div class="cam-legend"><span>low</span>'
        f'<span class="cam-legend-bar" style="background:{gradient}"></span>'
        "<span>high evidence (map after ReLU, scaled to 0–1; the photo shows through where it is low)</span></div>"
    )


# -- The overlays redrawn in the browser (explorer/text/redraw.js) -------------------------------------
# A change of class, opacity or colour map redraws the CAM and Grad-CAM overlays in the page, in a
# few milliseconds, from every class's scaled map, sent once per explanation: a server round trip
# re-renders the rest of the page meanwhile. The page's script applies `paint`'s formula.

REDRAWN = ("cam", "gradcam")  # the overlays the page redraws, in the order of `overlay_maps`' blocks


def overlay_maps(r: Explanation) -> np.ndarray:
    """Every class's CAM and Grad-CAM map as the overlays use it (ReLU, then min-max to [0, 1]).

    (len(REDRAWN) * C * H, W, 3) uint8, one (H, W) block per method and class, method-major, in class
    order: a value v is q = round(v * 65535) in 16 bits, R = q >> 8 and G = q & 255 (B = 0), so a
    lossless RGB PNG carries it (8 bits would shift weak evidence, whose opacity v ** GAMMA is steep
    near 0, by up to a tenth of the opacity).
    """
    blocks = [render.scale_map(r.class_maps[m][r.classes.index(c)]) for m in REDRAWN for c in range(len(r.class_names))]
    q = np.rint(np.concatenate(blocks) * 65535.0).astype(np.uint16)
    return np.stack([q >> 8, q & 255, np.zeros_like(q)], axis=-1).astype(np.uint8)


def overlay_meta(r: Explanation, s: Settings) -> dict[str, Any]:
    """What the page's script needs beside `overlay_maps`: the class order, the predicted class, which
    maps have positive evidence (the others are the server's muted photo), and the settings the
    server's own overlays were drawn with (the script redraws when the controls moved on meanwhile)."""
    h, w = r.class_maps["cam"].shape[1:]
    positive = {m: [bool(np.any(r.class_maps[m][r.classes.index(c)] > 0)) for c in range(len(r.class_names))]
                for m in REDRAWN}  # fmt: skip
    return {
        "classes": list(r.class_names),
        "predicted": r.predicted_index,
        "methods": list(REDRAWN),
        "map_size": [int(w), int(h)],
        "positive": positive,
        "drawn": {"target": s.target, "opacity": float(s.opacity), "colormap": s.colormap},
    }


def redraw_definition() -> str:
    """``window.camRedraw = ...``: the page's redraw function (explorer/text/redraw.js) with this module's
    constants and the colour tables filled in, defined once when the page loads (`redraw_js` calls it)."""
    luts = {k: render.colormap_lut(k).tobytes().hex() for k in render.COLORMAPS}
    lines = (TEXT / "redraw.js").read_text(encoding="utf-8").split("\n")
    code = "\n".join(line for line in lines if not line.startswith("//")).strip()  # the header is for readers
    for name, value in {"LUTS": json.dumps(luts), "GAMMA": GAMMA, "DESATURATE": DESATURATE}.items():
        code = code.replace(f"__{name}__", str(value))
    return f"window.camRedraw = {code};"


def redraw_js(method: str, when_moved_on: bool = False) -> str:
    """An event's function: ``method``'s overlay redrawn by `redraw_definition`'s function.

    Its inputs: class, opacity, colour map, the method's slider, `overlay_maps`' file and `overlay_meta`;
    it returns the slider (unchanged before the page has loaded the function). ``when_moved_on``: only
    when the controls differ from the settings the server drew with (when an explanation arrives: the
    reader may have moved a control meanwhile)."""
    moved = (
        "const d = a[5]?.drawn; "
        "if (!d || (d.target === a[0] && Math.abs(d.opacity - a[1]) < 1e-6 && d.colormap === a[2])) return [a[3]]; "
    )
    call = f'return window.camRedraw ? await window.camRedraw("{method}", ...a) : [a[3]];'
    return f"async (...a) => {{ {moved if when_moved_on else ''}{call} }}"


def redraw_inputs(method: str) -> tuple[str, ...]:
    """The page's components `redraw_js` reads, in its order."""
    return ("target", "opacity", "colormap", f"{method}_slider", "overlay_maps", "overlay_meta")


# What a change of each setting whose overlays the page redraws alters (`Explorer.look_update`); the
# photo, prediction and maps stay. tests/test_redraw.py renders both sides of each change to check it.
LOOK: dict[str, frozenset[str]] = {
    setting: frozenset(names.split())
    for setting, names in {
        "target": "heading cam_slider cam_heatmap cam_note gradcam_slider gradcam_heatmap gradcam_note "
        "compare_image compare_md compare_png cam_npy gradcam_npy",
        "opacity": "cam_slider gradcam_slider class_tiles",
        "colormap": "cam_slider cam_legend gradcam_slider gradcam_legend compare_image compare_png class_tiles",
    }.items()
}


def redrawn_in_page(meta: dict[str, Any], target: str) -> tuple[str, ...]:
    """The overlays the page's script draws itself for ``target`` (the maps with positive evidence)."""
    index = meta["predicted"] if target == PREDICTED else meta["classes"].index(target)
    return tuple(m for m in meta["methods"] if meta["positive"][m][index])
