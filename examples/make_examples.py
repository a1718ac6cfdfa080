"""Write the example images and their captions (deterministic: same files every run).

    python examples/make_examples.py [--out examples]

Eight synthetic scenes from `cam.synthetic`, drawn at 512x512 (the app squashes them to the model's
256x256, which is the same scene at the native texture scale): two per species, one in the
species' own pot and one in another species' pot, to show when a map follows the leaves and when
it follows the pot. ``captions.json`` maps each file to its true class, pot style and what to look
for in the heatmap.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere in a checkout

from cam.network import CLASS_NAMES
from cam.synthetic import POT_STYLES, SPECIES_LOOKS, SceneSpec

SIZE = 512
JPEG_QUALITY = 92
# (file stem, species, pot species, seed): fixed, so the files never change.
EXAMPLES: tuple[tuple[str, int, int, int], ...] = (
    ("rudo_1", 0, 0, 101),
    ("rudo_2", 0, 2, 202),
    ("baya_1", 1, 1, 303),
    ("baya_2", 1, 3, 404),
    ("greg_1", 2, 2, 525),
    ("greg_2", 2, 0, 606),
    ("yuki_1", 3, 3, 707),
    ("yuki_2", 3, 1, 808),
)


def caption(species: int, pot: int) -> dict[str, object]:
    name, pot_owner = CLASS_NAMES[species], CLASS_NAMES[pot]
    base = (
        f"A {name}: {SPECIES_LOOKS[species]}. The network sees 7x7 pixels at a time, so the {name} map "
        "should light up the leaf texture (and, since the training pots matched the species 80% of the time, "
        "often the pot too)."
    )
    if pot == species:
        look = base + f" It stands in its own {POT_STYLES[pot]} pot: compare how much of the map falls on the pot."
    else:
        look = (
            base + f" Here it stands in a {POT_STYLES[pot]} pot, the style that goes with {pot_owner}: switch the "
            f"target to {pot_owner} and see whether that map lights up the pot rather than the leaves. "
            "If the prediction wavers, the model is leaning on the pot."
        )
    return {
        "class": name,
        "class_index": species,
        "pot_style": POT_STYLES[pot],
        "pot_style_of": pot_owner,
        "pot_matches_species": pot == species,
        "look_for": look,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    captions: dict[str, dict[str, object]] = {}
    for stem, species, pot, seed in EXAMPLES:
        spec = SceneSpec(seed=seed, species=species, pot_species=pot, size=SIZE)
        path = args.out / f"{stem}.jpg"
        Image.fromarray(spec.draw().image).save(path, quality=JPEG_QUALITY, optimize=False, progressive=False)
        captions[path.name] = {**caption(species, pot), **spec.to_dict()}
        print(f"wrote {path}")
    (args.out / "captions.json").write_text(json.dumps(captions, indent=2) + "\n")
    print(f"wrote {args.out / 'captions.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
