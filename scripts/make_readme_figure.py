"""Draw docs/heatmaps.png for the README: one example photo explained by the bundled model.

    python scripts/make_readme_figure.py [--image examples/rudo_2.jpg] [--out docs/heatmaps.png]

Row 1: the photo, CAM, Grad-CAM (conv3) and |CAM - Grad-CAM| after ReLU and min-max scaling, for the
predicted class. Row 2: Grad-CAM at conv1 and conv2 (no CAM exists there) and the CAM of the pot's species.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout

from cam import explain, load_model
from cam.render import colorize, hstack, overlay, pad, scale_map, titled

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=ROOT / "examples" / "rudo_2.jpg")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "heatmaps.png")
    args = parser.parse_args()

    model = load_model("bundled")
    caption = json.loads((ROOT / "examples" / "captions.json").read_text()).get(args.image.name, {})
    r = explain(model, args.image, all_classes=True, methods=("cam", "gradcam"))
    photo = r.image.display if r.image is not None else None
    assert photo is not None
    side = 256
    base = np.asarray(photo.resize((side, side), Image.Resampling.BILINEAR))

    def tile(raw: np.ndarray, title: str) -> np.ndarray:
        return titled(overlay(base, scale_map(raw), 0.5), title, width=side)

    cam, gc = r.maps["cam"], r.maps["gradcam"]
    diff = np.abs(scale_map(cam) - scale_map(gc))
    p = r.probabilities[r.target]
    row1 = [
        titled(base, f"{args.image.name} (true: {caption.get('class', '?')})", width=side),
        tile(cam, f"CAM, {r.target} ({p:.0%})"),
        tile(gc, "Grad-CAM at conv3"),
        # on the same [0, 1] scale as the maps: a black square is the point
        titled(colorize(diff, "inferno"), f"|scaled difference|, max {diff.max():.1e}", width=side),
    ]
    row2 = []
    for layer in ("conv1", "conv2"):
        g = explain(model, r.image, target=r.target_index, methods=("gradcam",), layer=layer).maps["gradcam"]
        row2.append(tile(g, f"Grad-CAM at {layer}"))
    pot_species = caption.get("pot_style_of")
    if pot_species and pot_species != r.target:
        other = r.for_target(pot_species)
        row2.append(
            tile(
                other.maps["cam"], f"CAM for the pot's species, {pot_species} ({other.probabilities[pot_species]:.0%})"
            )
        )
    while len(row2) < len(row1):
        row2.append(np.full_like(row1[0], 255))
    figure = pad(np.vstack([hstack(row1), np.full((10, hstack(row1).shape[1], 3), 255, np.uint8), hstack(row2)]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(figure).save(args.out, optimize=True)
    print(f"wrote {args.out} ({figure.shape[1]}x{figure.shape[0]})")


if __name__ == "__main__":
    main()
