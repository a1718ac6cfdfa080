"""The Compare tab: CAM and Grad-CAM side by side, and the proof in numbers that they are one map."""

from __future__ import annotations

import numpy as np

from cam import Explanation, render
from cam.compare import CompareNumbers
from cam.network import GAP_LAYER, receptive_field


def compare_markdown(r: Explanation, n: CompareNumbers, layer: str) -> str:
    """Why the maps agree (or not) and the table of checks; every number comes from ``n``."""
    hw = r.maps["cam"].size
    corr = f"{n.correlation:.6f}" if np.isfinite(n.correlation) else "undefined (a map is constant)"
    lines = [
        f"| Check for class **{r.target}** | Value |",
        "|---|---|",
        f"| Largest \\|CAM − Grad-CAM\\| after ReLU and min-max scaling | `{n.max_abs_diff_scaled:.2e}` |",
        f"| Correlation of the raw maps | `{corr}` |",
        f"| mean(CAM) + b<sub>c</sub> | `{n.mean_cam_plus_bias:.6f}` |",
        f"| logit y<sub>c</sub> from the network | `{n.logit:.6f}` "
        f"(difference `{abs(n.mean_cam_plus_bias - n.logit):.1e}`) |",
    ]
    if layer == GAP_LAYER and n.gradcam_times_hw_residual is not None:
        lines.append(f"| max \\|Grad-CAM × {hw:,} − CAM\\| (raw) | `{n.gradcam_times_hw_residual:.2e}` |")
        why = (
            f"**At {GAP_LAYER} the two maps are the same map.** {GAP_LAYER} is the layer that global average "
            "pooling averages, so ∂y<sub>c</sub>/∂A<sup>k</sup>(x, y) = w<sup>c</sup><sub>k</sub> / (H·W) at every "
            f"pixel: Grad-CAM's weights are CAM's weights divided by H·W = {hw:,}. After ReLU and min-max scaling "
            "the factor disappears; what is left is float rounding. The logit check holds because "
            "y<sub>c</sub> = Σ<sub>k</sub> w<sup>c</sup><sub>k</sub> mean(A<sup>k</sup>) + b<sub>c</sub> "
            "= mean(CAM) + b<sub>c</sub>."
        )
    else:
        rf = receptive_field(layer)
        why = (
            f"**At {layer} the maps differ, as they should.** CAM exists only at {GAP_LAYER} (the layer GAP "
            f"averages), so it stays there. Grad-CAM at {layer} weights {layer}'s channels by the mean of "
            f"∂y<sub>c</sub>/∂A<sup>k</sup>, and below {GAP_LAYER} that gradient passes through later "
            "convolutions and ReLUs: it changes from pixel to pixel and is no longer w<sup>c</sup>/(H·W). "
            f"Earlier layers also see smaller regions (receptive field {rf}×{rf} pixels), so the map is finer "
            f"and noisier. Switch back to {GAP_LAYER} to see the two coincide."
        )
    return "\n".join([why, "", *lines])


def compare_figure(r: Explanation, layer: str, colormap: str) -> np.ndarray:
    """Photo (as the model sees it) | CAM | Grad-CAM | |difference|, 256x256 each, one colour scale.

    Two rows of two panels, so the figure stays legible on a phone (it is shown at the page's width)."""
    assert r.image is not None
    photo = r.image.model_input
    cam01, gc01 = render.scale_map(r.maps["cam"]), render.scale_map(r.maps["gradcam"])
    diff = np.abs(cam01 - gc01)

    def panel(m01: np.ndarray, method: str) -> np.ndarray:
        if not r.has_positive_evidence(method):
            return render.muted(photo, "No positive evidence", font_size=18)
        return render.colorize(m01, colormap)

    size = 18  # px in a 256-px panel: >= 12 px on screen even when the figure is shown at half size
    top = render.hstack(
        [
            render.titled(photo, "Photo, as the model sees it (256×256)", font_size=size),
            render.titled(panel(cam01, "cam"), f"CAM ({GAP_LAYER}), ReLU + scaled", font_size=size),
        ]
    )
    bottom = render.hstack(
        [
            render.titled(panel(gc01, "gradcam"), f"Grad-CAM ({layer}), ReLU + scaled", font_size=size),
            render.titled(
                render.colorize(diff, colormap),
                f"|difference| (black = identical), max {float(diff.max()):.1e}",
                font_size=size,
            ),
        ]
    )
    width = max(top.shape[1], bottom.shape[1])
    grid = np.full((top.shape[0] + bottom.shape[0] + 10, width, 3), 255, np.uint8)
    grid[: top.shape[0], : top.shape[1]] = top
    grid[top.shape[0] + 10 :, : bottom.shape[1]] = bottom
    bar = render.labelled_colorbar(0.0, 1.0, colormap, height=grid.shape[0] - 40)
    body = render.hstack([grid, np.pad(bar, ((40, 0), (0, 0), (0, 0)), constant_values=255)])
    return render.pad(render.titled(body, f"Class {r.target}: CAM vs Grad-CAM at {layer}", font_size=20))
