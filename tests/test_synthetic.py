"""The scene generator: determinism, exact masks, pot choice and species looks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cam.network import CLASS_NAMES
from cam.synthetic import (
    PLAIN_BACKGROUND,
    POT_STYLES,
    SceneSpec,
    choose_pot,
    draw_scene,
    make_dataset,
    redraw_original,
    redraw_with_pot,
    resolve_pot,
    swap_pot,
)

SPECIES = range(len(CLASS_NAMES))
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CAPTIONS: dict[str, dict[str, object]] = json.loads((EXAMPLES / "captions.json").read_text())


@pytest.mark.parametrize("species", SPECIES)
def test_same_seed_gives_identical_scene(species: int) -> None:
    a = draw_scene(1234, species)
    b = draw_scene(1234, species)
    assert a.image.shape == (256, 256, 3) and a.image.dtype == np.uint8
    assert a.plant_mask.dtype == bool and a.pot_mask.shape == (256, 256)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.plant_mask, b.plant_mask)
    assert np.array_equal(a.pot_mask, b.pot_mask)
    assert a.pot_species == b.pot_species
    c = draw_scene(1235, species)
    assert not np.array_equal(a.image, c.image)


def test_generator_seed_is_deterministic_and_advances() -> None:
    a = draw_scene(np.random.default_rng(7), 2)
    b = draw_scene(np.random.default_rng(7), 2)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.plant_mask, b.plant_mask)
    rng = np.random.default_rng(7)
    first, second = draw_scene(rng, 2), draw_scene(rng, 2)
    assert not np.array_equal(first.image, second.image)


@pytest.mark.parametrize("size", [256, 512])
@pytest.mark.parametrize("species", SPECIES)
def test_masks_are_exactly_the_drawn_pixels(species: int, size: int) -> None:
    """On a flat magenta background with no camera effects, every pixel that is not magenta must be
    plant or pot, and every plant or pot pixel must differ from magenta."""
    for seed in (3, 40, 500):
        scene = draw_scene(seed, species, size=size, plain=True)
        drawn = np.any(scene.image != np.array(PLAIN_BACKGROUND, np.uint8), axis=-1)
        assert np.array_equal(drawn, scene.plant_mask | scene.pot_mask)
        assert not (scene.plant_mask & scene.pot_mask).any()
        assert scene.plant_mask.sum() > 0.01 * size * size
        assert scene.pot_mask.sum() > 0.01 * size * size


@pytest.mark.parametrize("species", SPECIES)
def test_full_scene_has_the_plain_scene_masks(species: int) -> None:
    """Background, distractors and camera effects never move or cover the plant and pot: the masks of
    the full scene equal those of the plain scene, which the test above checks pixel by pixel."""
    for seed in range(10):
        full = draw_scene(seed, species)
        plain = draw_scene(seed, species, plain=True)
        assert np.array_equal(full.plant_mask, plain.plant_mask)
        assert np.array_equal(full.pot_mask, plain.pot_mask)
        assert full.pot_species == plain.pot_species
        # The full scene really is different: a background was drawn.
        assert not np.array_equal(full.image, plain.image)


def test_background_is_not_the_plain_colour() -> None:
    scene = draw_scene(11, 0)
    magenta = np.all(scene.image == np.array(PLAIN_BACKGROUND, np.uint8), axis=-1)
    assert magenta[scene.background_mask].mean() < 0.01


def test_pot_choice_probabilities() -> None:
    rng = np.random.default_rng(0)
    assert all(choose_pot(rng, 2, 1.0) == 2 for _ in range(200))
    assert all(choose_pot(rng, 2, 0.0) != 2 for _ in range(200))
    counts = np.bincount([choose_pot(rng, 1, 0.25) for _ in range(8000)], minlength=4) / 8000
    assert np.allclose(counts, 0.25, atol=0.025), counts
    counts = np.bincount([choose_pot(rng, 3, 0.8) for _ in range(8000)], minlength=4) / 8000
    assert abs(counts[3] - 0.8) < 0.02 and np.allclose(counts[:3], 0.2 / 3, atol=0.015), counts


def test_unbiased_split_keeps_the_scene_and_only_changes_pot_style() -> None:
    changed = 0
    for seed in range(12):
        a = draw_scene(seed, seed % 4, pot_match_prob=0.8)
        b = draw_scene(seed, seed % 4, pot_match_prob=0.25)
        assert np.array_equal(a.plant_mask, b.plant_mask) and np.array_equal(a.pot_mask, b.pot_mask)
        if a.pot_species == b.pot_species:
            assert np.array_equal(a.image, b.image)
        else:
            changed += 1
            assert not np.array_equal(a.image[a.pot_mask], b.image[b.pot_mask])
    assert changed > 0


@pytest.mark.parametrize("pot", SPECIES)
def test_forced_pot_style_has_its_colour(pot: int) -> None:
    scene = draw_scene(21, (pot + 1) % 4, pot_species=pot, plain=True)
    assert scene.pot_species == pot
    rgb = scene.image[scene.pot_mask].astype(float).mean(axis=0)
    r, g, b = rgb
    if pot == 0:  # terracotta: red-orange
        assert r > g > b
    elif pot == 1:  # white ceramic: bright and grey
        assert min(r, g, b) > 150 and max(r, g, b) - min(r, g, b) < 40
    elif pot == 2:  # blue glaze
        assert b > r + 60
    else:  # charcoal concrete: dark
        assert max(r, g, b) < 110


def test_species_have_their_local_colours() -> None:
    """Each species' distinguishing colour is present on its leaves and absent from the others'."""

    def share(species: int, test: object, marked_share: float = 1.0) -> float:
        values = []
        for seed in range(6):
            scene = draw_scene(seed, species, plain=True, marked_share=marked_share)
            px = scene.image[scene.plant_mask].astype(int)
            values.append(float(test(px[:, 0], px[:, 1], px[:, 2]).mean()))  # type: ignore[operator]
        return float(np.mean(values))

    def yellow(r, g, b):
        return (r > 150) & (g > 140) & (b < 110)

    def pink(r, g, b):
        return (r > 150) & (r > g + 60) & (b > 70)

    def cream(r, g, b):
        return (r > 190) & (g > 190) & (b > 120) & (b < 225) & (g - b > 15)

    def silver(r, g, b):
        return (r > 190) & (g > 200) & (b > 195) & (np.abs(g - b) < 25)

    for species, looks in ((0, yellow), (2, pink), (1, cream), (3, silver)):
        own = share(species, looks)
        others = [share(s, looks) for s in SPECIES if s != species]
        assert own > 0.05, (species, own)
        assert max(others) < own / 3, (species, own, others)
        # With most leaves plain green the marks thin out, but never vanish: one leaf always shows them.
        sparse = share(species, looks, marked_share=0.0)
        assert 0 < sparse < own, (species, sparse, own)


def test_marked_share_changes_only_leaf_colours() -> None:
    for seed in range(4):
        a = draw_scene(seed, seed % 4, marked_share=1.0, plain=True)
        b = draw_scene(seed, seed % 4, marked_share=0.0, plain=True)
        assert np.array_equal(a.plant_mask, b.plant_mask) and np.array_equal(a.pot_mask, b.pot_mask)
        assert np.array_equal(a.image[a.pot_mask], b.image[b.pot_mask])
        assert not np.array_equal(a.image[a.plant_mask], b.image[b.plant_mask])


def test_make_dataset_is_balanced_and_seeded() -> None:
    data = make_dataset(8, seed=5, size=64)
    assert data.images.shape == (8, 64, 64, 3) and data.images.dtype == np.uint8
    assert data.plant_masks.shape == (8, 64, 64) and data.pot_masks.dtype == bool
    assert list(data.labels) == [0, 1, 2, 3, 0, 1, 2, 3]
    again = make_dataset(8, seed=5, size=64)
    assert np.array_equal(data.images, again.images)
    other = make_dataset(8, seed=6, size=64)
    assert not np.array_equal(data.images, other.images)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match=r"species must be 0\.\.3"):
        draw_scene(0, 4)
    with pytest.raises(ValueError, match=r"pot_match_prob must be in \[0, 1\]"):
        draw_scene(0, 0, pot_match_prob=1.5)
    with pytest.raises(ValueError, match=r"marked_share must be in \[0, 1\]"):
        draw_scene(0, 0, marked_share=-0.1)
    with pytest.raises(ValueError, match="pot_species must be"):
        draw_scene(0, 0, pot_species=7)
    with pytest.raises(ValueError, match="size must be at least 32"):
        draw_scene(0, 0, size=8)
    with pytest.raises(ValueError, match="Seed -1 is negative"):
        draw_scene(-1, 0)
    with pytest.raises(ValueError, match="n must be at least 1"):
        make_dataset(0, 0)


# ---------------------------------------------------------------------------------------------
# Redrawing scenes: the examples and the pot shortcut.


@pytest.fixture(scope="module")
def originals() -> dict[str, np.ndarray]:
    return {name: redraw_original(entry) for name, entry in CAPTIONS.items()}


def test_captions_carry_a_full_scene_spec_for_every_example(originals: dict[str, np.ndarray]) -> None:
    assert sorted(CAPTIONS) == sorted(p.name for p in EXAMPLES.glob("*.jpg"))
    for name, entry in CAPTIONS.items():
        spec = SceneSpec.from_dict(entry)
        assert spec.to_dict() == {k: entry[k] for k in spec.to_dict()}  # every field recorded
        assert spec.species == entry["class_index"] == CLASS_NAMES.index(str(entry["class"]))
        assert spec.pot_species is not None and POT_STYLES[spec.pot_species] == entry["pot_style"]
        # The JPEG on disk is this array at quality 92: decoding it comes back within JPEG error
        # (0.2 to 4.3 levels on average for these noisy scenes), while the next seed's scene is 27+ away.
        decoded = np.asarray(Image.open(EXAMPLES / name).convert("RGB"), dtype=np.float64)
        assert decoded.shape == originals[name].shape == (512, 512, 3)
        assert np.abs(decoded - originals[name]).mean() < 6.0, name
        neighbour = SceneSpec.from_dict({**entry, "seed": spec.seed + 1}).draw().image  # type: ignore[operator]
        assert np.abs(decoded - neighbour).mean() > 15.0, name


@pytest.mark.parametrize("name", sorted(CAPTIONS))
def test_redrawn_pot_differs_only_inside_the_pot_mask(name: str, originals: dict[str, np.ndarray]) -> None:
    entry = CAPTIONS[name]
    spec = SceneSpec.from_dict(entry)
    original = originals[name]
    for pot in SPECIES:
        if pot == spec.pot_species:
            continue
        image, mask = redraw_with_pot(entry, pot)
        assert image.shape == original.shape and image.dtype == np.uint8 and mask.dtype == bool
        assert np.array_equal(image[~mask], original[~mask]), (name, pot)  # exactly equal outside
        inside = np.abs(image[mask].astype(int) - original[mask]).max(axis=1)
        assert (inside > 0).mean() > 0.5, (name, pot)  # and really another pot inside
        assert np.array_equal(mask, spec.draw().pot_mask)
        fresh = spec.with_pot(pot).draw()  # inside the mask: the other style drawn from the same seed
        assert np.array_equal(image[mask], fresh.image[mask])


def test_swapping_to_the_same_pot_is_the_original() -> None:
    entry = CAPTIONS["greg_1.jpg"]
    scene = swap_pot(entry, "greg")
    assert np.array_equal(scene.image, redraw_original(entry)) and scene.pot_species == 2


def test_spec_round_trip_and_dataset_scenes() -> None:
    data = make_dataset(5, seed=9, size=64)
    spec = SceneSpec(seed=(9, 3), species=3, size=64)  # scene 3 of make_dataset(5, 9)
    assert np.array_equal(spec.draw().image, data.images[3])
    again = SceneSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and np.array_equal(again.draw().image, data.images[3])
    image, mask = redraw_with_pot(spec, "blue glazed")
    assert np.array_equal(image[~mask], data.images[3][~mask])
    with pytest.raises(ValueError, match="'seed' is missing"):
        SceneSpec.from_dict({"species": 1})
    with pytest.raises(ValueError, match="must be an integer"):
        SceneSpec.from_dict({"seed": "7", "species": 1})


def test_pots_by_index_class_or_style() -> None:
    assert [resolve_pot(p) for p in (0, "baya", "Blue Glazed", " charcoal concrete ")] == [0, 1, 2, 3]
    for bad in (4, -1, "cactus", True, 1.0):
        with pytest.raises(ValueError, match="Unknown pot"):
            resolve_pot(bad)  # type: ignore[arg-type]
