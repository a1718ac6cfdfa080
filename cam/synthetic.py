"""Procedurally drawn pot plants: the training and test data of the bundled demo model.

The course's Pot Plant Dataset cannot be reached from here, so `cam.train` trains the course network
on scenes drawn by this module. A scene is one potted plant of one of four species in front of a
random background, with exact masks of the visible plant and pot pixels:

    scene = draw_scene(seed, species)          # species: index into CLASS_NAMES
    scene.image       # (S, S, 3) uint8 RGB
    scene.plant_mask  # (S, S) bool, exactly the pixels where the plant is visible
    scene.pot_mask    # (S, S) bool, exactly the pixels where the pot (rim and soil included) is visible

The course network sees 7x7 input pixels per feature-map pixel, so the species differ in *local*
colour and texture, not only in leaf shape:

    rudo  upright strap leaves, dark green with pale zig-zag cross bands and a yellow margin
    baya  oval lime-green leaves with cream variegation blotches and a pale midrib
    greg  ovate dark-green leaves covered in small pink spots, red midrib
    yuki  arching silver-green leaves with fine white stripes along the leaf and a purple margin

Only a share of the leaves (``marked_share``, default `MARKED_SHARE`) shows the species' colours and
marks; the other leaves are a plain green that every species shares, as real plants show their
variegation on some leaves more than others. Each species also has its own pot style (terracotta,
white ceramic, banded blue glaze, speckled charcoal concrete). The pot matches the species with
probability ``pot_match_prob`` (otherwise one of the three other styles, uniformly), so a model
trained at 0.8 can learn to lean on the pot, as the course's model did on its photos; at 0.25 the
pot carries no information about the class.

Everything scales with ``size`` (geometry and texture periods are defined on a 256-pixel canvas),
so a scene drawn at 512 looks like the 256 scene at twice the resolution. The same seed always
gives identical images and masks: the layout, plant, background, distractors and camera effects
each draw from their own child stream of one `numpy.random.SeedSequence`, so switching the
background or the effects off (``plain=True``) leaves the plant and pot geometry unchanged.

A scene is also data: `SceneSpec` holds every argument of `draw_scene` (``examples/captions.json``
stores one per example), so the pot-shortcut test can redraw it exactly or in another pot:

    redraw_original(entry)                # (S, S, 3) uint8, the example as drawn (before its JPEG)
    image, pot_mask = redraw_with_pot(entry, "greg")   # same plant and background, greg's pot;
                                                       # equal to the original outside pot_mask
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from cam import synthetic_parts as parts
from cam.network import CLASS_NAMES

SeedLike = int | np.random.Generator | np.random.SeedSequence

POT_STYLES: tuple[str, ...] = ("terracotta", "white ceramic", "blue glazed", "charcoal concrete")
SPECIES_LOOKS: tuple[str, ...] = (
    "upright strap leaves, dark green with pale zig-zag cross bands and a yellow margin",
    "oval lime-green leaves with cream variegation blotches",
    "ovate dark-green leaves covered in small pink spots",
    "arching silver-green leaves with fine white stripes along the leaf and a purple margin",
)
MARKED_SHARE = 0.35  # share of leaves that show the species' colours and marks
PLAIN_BACKGROUND = (255, 0, 255)  # magenta: no plant, pot or soil texture can produce it


@dataclass(frozen=True)
class Scene:
    """One drawn scene."""

    image: np.ndarray  # (S, S, 3) uint8 RGB
    plant_mask: np.ndarray  # (S, S) bool: visible plant pixels (leaves and stems)
    pot_mask: np.ndarray  # (S, S) bool: visible pot pixels (body, rim and soil)
    species: int  # class index of the plant
    pot_species: int  # class index whose pot style was drawn

    @property
    def species_name(self) -> str:
        return CLASS_NAMES[self.species]

    @property
    def pot_style(self) -> str:
        return POT_STYLES[self.pot_species]

    @property
    def background_mask(self) -> np.ndarray:
        return ~(self.plant_mask | self.pot_mask)


def _seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(0, 2**63 - 1)))
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"Seed {seed} is negative; use a non-negative integer.")
        return np.random.SeedSequence(int(seed))
    raise TypeError(f"seed must be an int, a numpy Generator or a SeedSequence, not {type(seed).__name__}")


def choose_pot(rng: np.random.Generator, species: int, pot_match_prob: float) -> int:
    """The species' own pot with probability ``pot_match_prob``, else one of the three others.

    At ``pot_match_prob = 0.25`` every pot style has probability 1/4 whatever the species.
    """
    if rng.random() < pot_match_prob:
        return species
    others = [k for k in range(len(CLASS_NAMES)) if k != species]
    return int(others[int(rng.integers(0, len(others)))])


# ---------------------------------------------------------------------------------------------
# Public API.


def draw_scene(
    seed: SeedLike,
    species: int,
    *,
    pot_match_prob: float = 0.8,
    size: int = 256,
    pot_species: int | None = None,
    plain: bool = False,
    marked_share: float = MARKED_SHARE,
) -> Scene:
    """Draw one scene of a potted plant of class ``species`` (index into CLASS_NAMES).

    Args:
        seed: an int, a numpy Generator (one number is drawn from it) or a SeedSequence.
        species: 0 rudo, 1 baya, 2 greg, 3 yuki.
        pot_match_prob: probability that the pot is the species' own style.
        size: side of the square image; everything scales with it.
        pot_species: force this pot style (ignores ``pot_match_prob``).
        marked_share: probability that a leaf shows its species' colours and marks (one leaf
            always does); the other leaves are a plain green shared by all species.
        plain: draw on the flat `PLAIN_BACKGROUND` colour with no distractors, lighting, noise or
            JPEG. The plant and pot are identical to the full scene of the same seed.
    """
    if not 0 <= int(species) < len(CLASS_NAMES):
        raise ValueError(f"species must be 0..{len(CLASS_NAMES) - 1} ({', '.join(CLASS_NAMES)}); got {species}.")
    if not 0.0 <= marked_share <= 1.0:
        raise ValueError(f"marked_share must be in [0, 1]; got {marked_share}.")
    if not 0.0 <= pot_match_prob <= 1.0:
        raise ValueError(f"pot_match_prob must be in [0, 1]; got {pot_match_prob}.")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels; got {size}.")
    species = int(species)
    # One child stream per part: the pot choice has its own, so the same seed at another
    # pot_match_prob draws the same plant, pot shape and background, only (maybe) another pot style.
    streams = _seed_sequence(seed).spawn(8)
    choice_ss, layout_ss, plant_ss, pot_ss, bg_ss, distract_ss, camera_ss, marks_ss = streams
    layout_rng = np.random.default_rng(layout_ss)
    chosen_pot = choose_pot(np.random.default_rng(choice_ss), species, pot_match_prob)
    if pot_species is not None:
        if not 0 <= int(pot_species) < len(CLASS_NAMES):
            raise ValueError(f"pot_species must be 0..{len(CLASS_NAMES) - 1}; got {pot_species}.")
        chosen_pot = int(pot_species)
    layout = parts.layout(layout_rng, species, size)
    marks_rng = np.random.default_rng(marks_ss)
    marked = marks_rng.random(len(layout.leaves)) < marked_share
    marked[int(marks_rng.integers(0, len(marked)))] = True  # at least one leaf shows the species
    plant_rgb, plant = parts.render_plant(np.random.default_rng(plant_ss), species, layout, size, marked, marks_rng)
    pot_rgb, pot = parts.render_pot(np.random.default_rng(pot_ss), chosen_pot, layout, size)
    pot &= ~plant  # leaves in front of the rim hide it
    if plain:
        img = np.empty((size, size, 3), np.float32)
        img[:] = np.asarray(PLAIN_BACKGROUND, np.float32) / 255.0
    else:
        img = parts.background(np.random.default_rng(bg_ss), layout, size)
        keep_out = cv2.dilate((plant | pot).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        parts.distractors(np.random.default_rng(distract_ss), img, keep_out, size)
    img[pot] = pot_rgb[pot]
    img[plant] = plant_rgb[plant]
    if plain:
        image = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    else:
        image = parts.camera(np.random.default_rng(camera_ss), img.clip(0.0, 1.0), size)
    return Scene(image=image, plant_mask=plant, pot_mask=pot, species=species, pot_species=chosen_pot)


@dataclass(frozen=True)
class Dataset:
    """``n`` scenes stacked: images (N, S, S, 3) uint8, masks (N, S, S) bool, labels (N,) int64."""

    images: np.ndarray
    plant_masks: np.ndarray
    pot_masks: np.ndarray
    labels: np.ndarray
    pot_labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def make_dataset(
    n: int, seed: int, *, pot_match_prob: float = 0.8, size: int = 256, marked_share: float = MARKED_SHARE
) -> Dataset:
    """``n`` scenes with balanced species (cycling 0, 1, 2, 3, ...), scene i drawn from (seed, i)."""
    if n < 1:
        raise ValueError(f"n must be at least 1; got {n}.")
    images = np.empty((n, size, size, 3), np.uint8)
    plant = np.empty((n, size, size), bool)
    pot = np.empty((n, size, size), bool)
    labels = np.arange(n, dtype=np.int64) % len(CLASS_NAMES)
    pots = np.empty(n, np.int64)
    for i in range(n):
        sc = draw_scene(
            np.random.SeedSequence((seed, i)),
            int(labels[i]),
            pot_match_prob=pot_match_prob,
            size=size,
            marked_share=marked_share,
        )
        images[i], plant[i], pot[i], pots[i] = sc.image, sc.plant_mask, sc.pot_mask, sc.pot_species
    return Dataset(images=images, plant_masks=plant, pot_masks=pot, labels=labels, pot_labels=pots)


# ---------------------------------------------------------------------------------------------
# Scenes as data: redraw a scene exactly, or the same scene in another species' pot.


@dataclass(frozen=True)
class SceneSpec:
    """Everything `draw_scene` needs to draw one scene again, bit for bit (JSON-friendly).

    ``seed`` is an int, or a tuple of ints for a `make_dataset` scene (scene i of ``make_dataset(n,
    seed)`` is ``SceneSpec(seed=(seed, i), species=i % 4)``).
    """

    seed: int | tuple[int, ...]
    species: int
    pot_species: int | None = None  # None: chosen from the seed with `pot_match_prob`
    size: int = 256
    pot_match_prob: float = 0.8
    marked_share: float = MARKED_SHARE
    plain: bool = False

    def draw(self) -> Scene:
        """The scene, exactly as `draw_scene` draws it."""
        seed: SeedLike = np.random.SeedSequence(list(self.seed)) if isinstance(self.seed, tuple) else self.seed
        return draw_scene(
            seed,
            self.species,
            pot_match_prob=self.pot_match_prob,
            size=self.size,
            pot_species=self.pot_species,
            plain=self.plain,
            marked_share=self.marked_share,
        )

    def with_pot(self, pot: int | str) -> SceneSpec:
        """The same scene with the pot style of class ``pot`` (see `resolve_pot`)."""
        return SceneSpec(
            seed=self.seed,
            species=self.species,
            pot_species=resolve_pot(pot),
            size=self.size,
            pot_match_prob=self.pot_match_prob,
            marked_share=self.marked_share,
            plain=self.plain,
        )

    def to_dict(self) -> dict[str, object]:
        """{"seed", "species", "pot_species", "size", "pot_match_prob", "marked_share", "plain"}."""
        return {
            "seed": list(self.seed) if isinstance(self.seed, tuple) else self.seed,
            "species": self.species,
            "pot_species": self.pot_species,
            "size": self.size,
            "pot_match_prob": self.pot_match_prob,
            "marked_share": self.marked_share,
            "plain": self.plain,
        }

    @classmethod
    def from_dict(cls, entry: Mapping[str, object]) -> SceneSpec:
        """A spec from `to_dict` output or an ``examples/captions.json`` entry (other keys are ignored;
        ``class_index`` stands in for a missing ``species``). Missing drawing options take their
        defaults, so an entry written by an older generator redraws only if it recorded them all."""
        try:
            raw_seed = entry["seed"]
            species = entry["species"] if "species" in entry else entry["class_index"]
        except KeyError as exc:
            raise ValueError(f"A scene entry needs 'seed' and 'species'; {exc.args[0]!r} is missing.") from None
        seed: int | tuple[int, ...]
        if isinstance(raw_seed, (list, tuple)):
            seed = tuple(_as_int(v, "seed") for v in raw_seed)
        else:
            seed = _as_int(raw_seed, "seed")
        pot = entry.get("pot_species")
        return cls(
            seed=seed,
            species=_as_int(species, "species"),
            pot_species=None if pot is None else _as_int(pot, "pot_species"),
            size=_as_int(entry.get("size", 256), "size"),
            pot_match_prob=_as_float(entry.get("pot_match_prob", 0.8), "pot_match_prob"),
            marked_share=_as_float(entry.get("marked_share", MARKED_SHARE), "marked_share"),
            plain=bool(entry.get("plain", False)),
        )


def _as_int(v: object, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"Scene field {name!r} must be an integer, not {v!r}.")
    return int(v)


def _as_float(v: object, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"Scene field {name!r} must be a number, not {v!r}.")
    return float(v)


def resolve_pot(pot: int | str) -> int:
    """A pot given as a class index (0..3), a class name ("greg": greg's pot) or a style name
    ("blue glazed"), case-insensitive -> class index of the pot style."""
    if isinstance(pot, (int, np.integer)) and not isinstance(pot, bool) and 0 <= int(pot) < len(POT_STYLES):
        return int(pot)
    if isinstance(pot, str):
        key = pot.strip().lower()
        for names in (CLASS_NAMES, POT_STYLES):
            if key in names:
                return names.index(key)
    choices = ", ".join(f"{c} ({s})" for c, s in zip(CLASS_NAMES, POT_STYLES, strict=True))
    raise ValueError(f"Unknown pot {pot!r}: give a class index 0..3, a class name or a pot style: {choices}.")


def _spec(spec: SceneSpec | Mapping[str, object]) -> SceneSpec:
    return spec if isinstance(spec, SceneSpec) else SceneSpec.from_dict(spec)


def redraw_original(spec: SceneSpec | Mapping[str, object]) -> np.ndarray:
    """The scene's image, (S, S, 3) uint8, as drawn (an example's JPEG is this array saved at
    quality 92: compare redraws with this array, not with the decoded JPEG)."""
    return _spec(spec).draw().image


def swap_pot(spec: SceneSpec | Mapping[str, object], pot: int | str) -> Scene:
    """The same scene (same plant, background, pot shape, lighting and noise) in another pot style.

    Only the pot's pixels change: the result is the original image outside ``pot_mask`` and the
    other style's scene, drawn from the same seed, inside it. Camera blur and JPEG act on the whole
    image, so drawing the other style from scratch would also move pixels around the pot (JPEG
    blocks reach up to ~15 pixels at 512); they are kept as in the original, so a faint trace of the
    old pot's colour may stay just outside the pot's outline. Measured on the eight examples with the
    bundled model: the logits of this image and of a from-scratch redraw differ by at most 0.03,
    at most 13 % (typically 2 to 6 %) of how far the pot swap moves them. The masks are the original's.
    """
    s = _spec(spec)
    original = s.draw()
    other = s.with_pot(pot).draw()
    if not (
        np.array_equal(original.pot_mask, other.pot_mask) and np.array_equal(original.plant_mask, other.plant_mask)
    ):
        raise AssertionError("the pot style changed the scene's geometry")  # pragma: no cover - draw_scene bug
    image = np.where(original.pot_mask[..., None], other.image, original.image)
    return Scene(
        image=image,
        plant_mask=original.plant_mask,
        pot_mask=original.pot_mask,
        species=original.species,
        pot_species=other.pot_species,
    )


def redraw_with_pot(spec: SceneSpec | Mapping[str, object], pot: int | str) -> tuple[np.ndarray, np.ndarray]:
    """(image (S, S, 3) uint8, pot_mask (S, S) bool): `swap_pot`'s image and the pixels that changed
    (the pot: body, rim and soil). Outside the mask the image equals `redraw_original` exactly."""
    scene = swap_pot(spec, pot)
    return scene.image, scene.pot_mask
