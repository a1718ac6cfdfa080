"""The Trust tab: can you trust this map? A sanity check, hide-and-see, and the pot shortcut.

* the model-parameter randomisation test (Adebayo et al. 2018): maps per randomisation step, their
  similarity to the trained model's map as a line plot, and which methods fail;
* hide and see: the reader paints a region, the model sees it replaced by a blur of the photo, and the
  page sets the change of the score beside the share of the map's evidence that was inside;
* the pot shortcut: an example scene redrawn in another species' pot (same plant, same background).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from cam import Explanation, render
from cam.methods import display_name
from cam.sanity import SanityResult
from explorer.maps import Settings, paint, percent

TILE = 160  # px per map in the sanity figure
MAX_MASK_SIDE = 4096  # a painted layer is at most the displayed photo's size (<= 1024 px)


def _step_label(randomized: tuple[str, ...]) -> str:
    return "trained" if not randomized else "+" + randomized[-1]


def sanity_frame(res: SanityResult) -> pd.DataFrame:
    """Long format for a line plot: similarity to the trained map, per step, method and measure."""
    rows = []
    for i, step in enumerate(res.steps):
        for m in res.methods:
            rho = step.spearman[m]
            rows.append(
                {
                    "step": i,
                    "randomised": _step_label(step.randomized),
                    "similarity": float(rho) if np.isfinite(rho) else None,
                    "series": f"{display_name(m)} Spearman",
                }
            )
            rows.append(
                {
                    "step": i,
                    "randomised": _step_label(step.randomized),
                    "similarity": float(step.ssim[m]),
                    "series": f"{display_name(m)} SSIM",
                }
            )
    return pd.DataFrame(rows, columns=["step", "randomised", "similarity", "series"])


def sanity_figure(res: SanityResult, photo256: np.ndarray, colormap: str) -> np.ndarray:
    """Rows: methods; columns: the trained network, then each randomisation step."""
    rows = []
    for m in res.methods:
        panels = [
            render.titled(np.asarray(Image.fromarray(photo256).resize((TILE, TILE))), display_name(m), font_size=14)
        ]
        for step in res.steps:
            m01 = render.scale_map(step.maps[m])
            tile = np.asarray(Image.fromarray(render.colorize(m01, colormap)).resize((TILE, TILE)))
            rho = step.spearman[m]
            rho_text = f"ρ {rho:.2f}" if np.isfinite(rho) else "ρ n/a"
            panels.append(render.titled(tile, f"{_step_label(step.randomized)}: {rho_text}", font_size=14))
        rows.append(render.hstack(panels, gap=6))
    width = max(r.shape[1] for r in rows)
    out = np.full((sum(r.shape[0] for r in rows) + 8 * len(rows), width, 3), 255, np.uint8)
    y = 0
    for r in rows:
        out[y : y + r.shape[0], : r.shape[1]] = r
        y += r.shape[0] + 8
    return render.pad(out, 6)


def sanity_markdown(res: SanityResult) -> str:
    """The verdicts, one per method, and the data-independence comparison."""
    lines = [
        f"**Cascading randomisation for class *{res.target}*** (seed {res.seed}; layers randomised top-down, "
        "weights drawn like each layer's default initialisation, on a copy of the model)."
    ]
    for m in res.methods:
        v = res.verdict(m)
        mark = "✓" if v.passed else ("?" if v.passed is None else "✗")
        lines.append(f"- {mark} {v.sentence.replace(m, display_name(m), 1)}")
    other = ", ".join(
        f"{display_name(m)} Spearman {res.other_spearman[m]:.2f}"
        if np.isfinite(res.other_spearman[m])
        else f"{display_name(m)} n/a"
        for m in res.methods
    )
    lines.append(
        "\nThe verdict reads the Spearman rank correlation of the raw maps: SSIM of the scaled maps stays high "
        "even for unrelated maps, because regions that are zero in both count as identical."
    )
    lines.append(
        f"\n**Data independence:** the map for *{res.target}* against the map for *{res.other_class}* "
        f"(another class, chosen by the seed) on the trained model: {other}. Class-specific maps should differ."
    )
    return "\n".join(lines)


def other_class_figure(res: SanityResult, colormap: str) -> np.ndarray:
    panels = []
    for m in res.methods:
        for name, raw in ((res.target, res.steps[0].maps[m]), (res.other_class, res.other_maps[m])):
            tile = np.asarray(Image.fromarray(render.colorize(render.scale_map(raw), colormap)).resize((TILE, TILE)))
            panels.append(render.titled(tile, f"{display_name(m)}, {name}", font_size=14))
    return render.pad(render.hstack(panels, gap=6), 6)


def mask_from_layer(path: str | None, size: tuple[int, int]) -> np.ndarray:
    """The painted layer of the editor (RGBA, painted where alpha > 0) -> bool mask at ``size`` (w, h).
    The header is read first, so a huge layer is refused before any pixel is decoded."""
    if not path:
        return np.zeros((size[1], size[0]), bool)
    with Image.open(path) as img:
        if max(img.size) > MAX_MASK_SIDE:
            raise ValueError(
                f"The painted layer is {img.size[0]}x{img.size[1]} pixels; at most {MAX_MASK_SIDE} a side."
            )
        alpha = np.asarray(img.convert("RGBA"))[..., 3]
    mask = Image.fromarray((alpha > 0).astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)
    return np.asarray(mask) > 127


def hide_sentence(
    target: str,
    energy: float,
    logit_before: float,
    logit_after: float,
    p_before: float,
    p_after: float,
    method_name: str = "CAM",
) -> str:
    change = logit_after - logit_before
    verb = "cut" if change < 0 else "raised"
    return (
        f"The {method_name} put **{energy:.0%}** of its positive evidence for *{target}* in the painted region; "
        f"hiding it {verb} the logit by **{abs(change):.2f}** ({logit_before:.2f} → {logit_after:.2f}) and the "
        f"probability from {percent(p_before)} to {percent(p_after)}. The region is replaced by a blur of the "
        "photo, with a softened edge, so no sharp mask edge is introduced."
    )


def pot_view(
    r0: Explanation, r1: Explanation, pot_mask: np.ndarray, own_pot: str, new_pot: str, s: Settings
) -> tuple[np.ndarray, str]:
    """The scene and its redraw in another pot, each with the CAM of the same class, and what moved."""
    from cam.synthetic import POT_STYLES, resolve_pot

    mask256 = (
        np.asarray(Image.fromarray(pot_mask.astype(np.uint8) * 255).resize((256, 256), Image.Resampling.BOX)) > 127
    )
    name = r0.target
    panels, shares = [], []
    for r, title in ((r0, f"Original ({own_pot} pot)"), (r1, f"Redrawn: {POT_STYLES[resolve_pot(new_pot)]} pot")):
        assert r.image is not None
        cam = r.maps["cam"]
        pos = np.maximum(cam, 0)
        shares.append(float(pos[mask256].sum() / pos.sum()) if pos.sum() > 0 else 0.0)
        pic = (
            paint(r.image.model_input, render.scale_map(cam), s)
            if r.has_positive_evidence("cam")
            else render.muted(r.image.model_input, f"No positive evidence for {name}")
        )
        panels.append(render.titled(pic, f"{title}: p({name}) {percent(r.probabilities[name])}", font_size=15))
    md = (
        f"**Same plant, same background, another pot.** CAM of *{name}*: the pot held **{shares[0]:.0%}** of its "
        f"positive evidence before and **{shares[1]:.0%}** after; p({name}) went from "
        f"{percent(r0.probabilities[name])} to {percent(r1.probabilities[name])}, and the model now predicts "
        f"**{r1.predicted}** (it predicted **{r0.predicted}**). If the prediction follows the pot, the model leans "
        "on the pot, as the course found."
    )
    return render.pad(render.hstack(panels), 6), md
