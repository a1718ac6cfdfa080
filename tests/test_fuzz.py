"""A seeded, bounded mutation fuzz of cam.images.load_image: byte flips, truncations, header field
edits, PNG chunk surgery and splices over valid PNG, JPEG, GIF, WebP, BMP and TIFF seeds. The only
allowed outcomes are a LoadedImage and an ImageError; each case runs under a per-case alarm (a hang
guard, not a timing assertion). A longer run: python -m tests.hostile.fuzz --cases 100000."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

import cam.images as images
from tests.hostile.corpus import fuzz_seeds, mutate, run_fuzz

REAL_ENCODER_SEEDS = {"jpeg_lossless", "jpeg_arithmetic", "jpeg_arithmetic_progressive"}

HANG_GUARD_S = 20.0  # per case; the slowest case measured here takes well under 0.5 s


def test_every_seed_is_a_valid_image() -> None:
    seeds = fuzz_seeds()
    assert {k.split("_")[0] for k in seeds} == {"png", "jpeg", "gif", "webp", "bmp", "tiff"}
    for name, data in seeds.items():
        loaded = images.load_image(data)
        assert loaded.model_input.shape == (256, 256, 3), name
        real = name in REAL_ENCODER_SEEDS  # files from other encoders, stored in the corpus: 16x16
        expected = ((16, 16),) if real else ((48, 32), (32, 48))
        assert loaded.original_size in expected, name


def test_mutations_are_deterministic() -> None:
    seeds = fuzz_seeds()
    pool = list(seeds.values())

    def digest(seed: int) -> str:
        rng = np.random.default_rng(seed)
        h = hashlib.sha256()
        for _ in range(200):
            label, data = mutate(seeds["png_rgb"], rng, pool)
            h.update(label.encode() + data)
        return h.hexdigest()

    assert digest(5) == digest(5) != digest(6)
    assert fuzz_seeds() == seeds


@pytest.mark.timeout(300)
def test_fuzz_only_loads_or_refuses() -> None:
    stats = run_fuzz(4000, seed=20240601, time_limit=HANG_GUARD_S)
    print(stats.summary())
    assert stats.cases == 4000
    assert stats.unexpected == [], "\n".join(f"{label}: {exc}" for label, exc in stats.unexpected[:20])
    assert stats.timeouts == []
    # both outcomes occur, so the mutations neither leave files intact nor only destroy them
    assert stats.loaded > 200 and sum(stats.refused.values()) > 2000
    assert {"damaged", "not an image", "megapixels"} <= set(stats.refused)
    assert images.MAX_PIXELS == 50_000_000  # the temporary cap was restored


@pytest.mark.timeout(300)
def test_fuzz_at_the_real_pixel_cap() -> None:
    stats = run_fuzz(600, seed=7, time_limit=HANG_GUARD_S, max_pixels=None)
    print(stats.summary())
    assert stats.unexpected == [] and stats.timeouts == []
    assert stats.loaded > 0


def test_harness_reports_unexpected_exceptions_and_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fuzz can fail: a loader that leaks a KeyError or hangs is caught and reported."""
    calls = {"n": 0}

    def leaky(data: bytes, *, display_max_side: int | None = 1024) -> images.LoadedImage:
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise KeyError("leaked")
        if calls["n"] % 3 == 1:
            time.sleep(5)
        raise images.ImageError("is damaged")

    monkeypatch.setattr(images, "load_image", leaky)
    stats = run_fuzz(6, seed=1, time_limit=0.05)
    assert [exc for _, exc in stats.unexpected] == ["KeyError: 'leaked'"] * 2
    assert len(stats.timeouts) == 2 and stats.refused == {"damaged": 2}
