"""The heading, and the CAM and Grad-CAM tabs: photo-vs-overlay pictures and the raw signed map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from cam import Explanation, render
from cam.network import GAP_LAYER

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
