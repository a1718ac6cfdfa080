"""What the pictures promise: zero is neutral on signed maps, overlays leave low evidence alone,
colour maps are matplotlib's, text has every glyph it writes, and bad options fail clearly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from fontTools.ttLib import TTFont
from PIL import Image, ImageFont

from cam import CamError, render
from cam.figures import figure_font, figure_font_size, label_column, titled
from cam.render import RenderError

ROOT = Path(__file__).resolve().parents[1]
RANGES = [(-1.0, 10.0), (-10.0, 1.0), (0.0, 5.0), (-5.0, 0.0), (-3.0, 3.0), (-2e-6, 4.2e-6)]


def signed_map(lo: float, hi: float, n: int = 32) -> np.ndarray:
    """An n x n map whose left half ramps from lo to hi and whose right half is exactly zero."""
    m = np.zeros((n, n), np.float32)
    m[:, : n // 2] = np.linspace(lo, hi, n * (n // 2), dtype=np.float32).reshape(n, n // 2)
    return m


def rgb(a: np.ndarray) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in a)
    return r, g, b


# --- Signed (raw) maps --------------------------------------------------------------------------


@pytest.mark.parametrize(("lo", "hi"), RANGES)
def test_zero_maps_to_the_diverging_centre_colour_whatever_the_range(lo: float, hi: float) -> None:
    raw = signed_map(lo, hi)
    heat = render.signed_heatmap(raw, size=256)
    centre = heat.centre_colour
    # The centre is neutral (grey or white, not a hue), and it is the colour map's own middle.
    assert max(centre) - min(centre) <= 6, centre
    reference = np.array(matplotlib.colormaps["RdBu_r"](0.5)[:3]) * 255
    assert np.abs(np.array(centre) - reference).max() <= 3
    # Right half of the map is zero: after the 32 -> 256 resize its interior is still exactly zero.
    assert np.all(heat.image[8:-8, 160:-8] == centre)
    assert heat.image.shape == (256, 256, 3) and heat.image.dtype == np.uint8
    assert heat.limit == pytest.approx(max(abs(lo), abs(hi)), rel=1e-6)
    # Sign gets the hue: the largest positive value is red-ish, the most negative blue-ish.
    top, bottom = render.diverging_lut()[-1], render.diverging_lut()[0]
    at_hi, at_lo = heat.image[250, 4], heat.image[4, 4]  # ramp: bottom-left is hi, top-left is lo
    if hi > 0:
        assert at_hi[0] > at_hi[2]
    if lo < 0:
        assert at_lo[2] > at_lo[0]
    # The end whose magnitude is the limit reaches the map's extreme colour; the other does not.
    if hi >= abs(lo):
        assert np.array_equal(render.colorize_signed(np.array([[hi]]), heat.limit)[0, 0], top)
    else:
        assert np.array_equal(render.colorize_signed(np.array([[lo]]), heat.limit)[0, 0], bottom)


@pytest.mark.parametrize(("lo", "hi"), RANGES)
def test_colour_bar_labels_are_symmetric_and_drawn(lo: float, hi: float) -> None:
    heat = render.signed_heatmap(signed_map(lo, hi))
    top, mid, bottom = heat.labels
    assert top[0] == "+" and bottom[0] == "−" and mid == "0"
    assert top[1:] == bottom[1:], heat.labels  # same digits, only the sign differs
    shown = float(top[1:].replace("−", "-"))
    assert shown == pytest.approx(heat.limit, rel=5e-3)  # the label is the limit, to 3 digits
    assert heat.words == ("for the class", "against")
    bar = heat.colorbar
    assert bar.shape[0] == 256
    # The bar itself: +limit colour at the top, the centre colour on its zero row, -limit at the bottom.
    lut = render.diverging_lut()
    x = render.COLORBAR_WIDTH // 2
    near = lambda a, b: np.abs(a.astype(int) - b.astype(int)).max() <= 6  # noqa: E731  (row 1, not row 0: frame)
    assert near(bar[1, x], lut[-1]) and near(bar[-2, x], lut[0])
    assert rgb(bar[(256 - 1) // 2, x]) == heat.centre_colour
    # Something is written beside the bar near the top, the middle and the bottom.
    text = bar[:, render.COLORBAR_WIDTH + 8 :]
    for band in (slice(0, 20), slice(118, 138), slice(236, 256)):
        assert (text[band] < 128).any()


def test_constant_and_non_finite_maps_never_give_nan_or_a_false_hue() -> None:
    zero = render.signed_heatmap(np.zeros((16, 16)))
    assert zero.limit == 0 and zero.labels == ("0", "0", "0")
    assert np.all(zero.image == zero.centre_colour)
    const = render.signed_heatmap(np.full((16, 16), 3.0))
    assert np.all(const.image == render.diverging_lut()[-1])  # all of it is +limit
    holes = np.zeros((16, 16), np.float32)
    holes[0, 0], holes[1, 1] = np.nan, 2.0
    heat = render.signed_heatmap(holes, size=16)
    assert heat.limit == 2.0 and rgb(heat.image[0, 0]) == heat.centre_colour


def test_raw_heatmap_is_the_framed_map_beside_its_bar() -> None:
    raw = signed_map(-1, 4)
    fig = render.raw_heatmap(raw, 128)
    heat = render.signed_heatmap(raw, 128)
    assert np.array_equal(fig, heat.figure)
    assert fig.shape[0] == 128 + 2 and fig.shape[1] > 128 + heat.colorbar.shape[1]
    assert np.array_equal(fig[1:-1, 1:129], heat.image)


def test_labels_of_tiny_limits_use_a_real_minus_in_the_exponent() -> None:
    assert render.symmetric_labels(4.2e-6) == ("+4.2e−6", "0", "−4.2e−6")
    assert render.symmetric_labels(275.5) == ("+276", "0", "−276")


# --- Sequential maps and overlays -----------------------------------------------------------


def test_colour_maps_are_matplotlibs_tables_built_once() -> None:
    x = np.linspace(0, 1, 256, dtype=np.float32)[None, :]
    for cid, name in render.COLORMAPS.items():
        expected = np.array(matplotlib.colormaps[name](np.linspace(0, 1, 256)))[:, :3] * 255
        assert np.abs(render.colorize(x, cid)[0].astype(float) - expected).max() <= 1.0, cid
    lut = render.colormap_lut("inferno")
    assert lut is render.colormap_lut("inferno") and not lut.flags.writeable
    assert set(render.COLORMAP_LABELS) == set(render.COLORMAPS)
    assert render.COLORMAP_LABELS["jet"] == "jet, as in the course"
    assert render.DEFAULT_COLORMAP in render.COLORMAPS and render.DEFAULT_COLORMAP != "jet"


def test_colorize_clips_and_treats_nan_as_zero() -> None:
    m = np.array([[-1.0, np.nan, 2.0]], np.float32)
    lut = render.colormap_lut("viridis")
    assert np.array_equal(render.colorize(m, "viridis")[0], lut[[0, 0, 255]])


def test_css_gradient_has_the_maps_colours_low_to_high() -> None:
    css = render.colormap_css_gradient("jet")
    assert css.startswith("linear-gradient(to right, ") and css.endswith(")")
    stops = css[len("linear-gradient(to right, ") : -1].split(", ")
    assert len(stops) == 8
    lut = render.colormap_lut("jet")
    assert stops[0] == "#{:02x}{:02x}{:02x} 0%".format(*lut[0])
    assert stops[-1] == "#{:02x}{:02x}{:02x} 100%".format(*lut[255])
    assert render.colormap_css_gradient("inferno") != css


def photo_and_ramp(h: int = 60, w: int = 100) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    ramp = np.tile(np.linspace(0, 1, w, dtype=np.float32), (h, 1))
    return photo, ramp


def test_overlay_leaves_the_photo_alone_where_the_map_is_zero_and_tints_more_where_higher() -> None:
    photo, ramp = photo_and_ramp()
    out = render.overlay(photo, ramp, alpha=0.8)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.array_equal(out[:, 0], photo[:, 0])  # value 0: the plain photo, untouched
    assert np.array_equal(render.overlay(photo, np.zeros((8, 8)), alpha=1.0), photo)
    # At the maximum the colour has opacity alpha exactly.
    top = render.colormap_lut(render.DEFAULT_COLORMAP)[255].astype(float)
    expected = 0.2 * photo[:, -1].astype(float) + 0.8 * top
    assert np.abs(out[:, -1].astype(float) - expected).max() <= 1.0
    # Opacity follows the value. Over white and over black the results differ by 255 * (1 - opacity).
    white, black = np.full_like(photo, 255), np.zeros_like(photo)
    diff = render.overlay(white, ramp, 0.8).astype(float) - render.overlay(black, ramp, 0.8).astype(float)
    opacity = 1 - diff[0, :, 0] / 255
    assert np.all(np.diff(opacity) >= -1 / 255) and opacity[0] == 0 and opacity[-1] == pytest.approx(0.8, abs=0.01)
    assert opacity[25] == pytest.approx(0.8 * (25 / 99) ** 0.5, abs=0.01)  # gamma 0.5 by default


def test_uniform_blend_is_the_course_formula() -> None:
    photo, ramp = photo_and_ramp()
    out = render.overlay(photo, ramp, 0.5, "jet", blend="uniform")
    expected = 0.5 * photo.astype(float) + 0.5 * render.colorize(ramp, "jet").astype(float)
    assert np.abs(out.astype(float) - expected).max() <= 1.0


def test_top_percent_colours_only_the_strongest_pixels() -> None:
    photo, ramp = photo_and_ramp()
    out = render.overlay(photo, ramp, 0.8, top_percent=10)
    touched = (out != photo).any(axis=2)
    assert not touched[:, :89].any()  # the lowest 90 % of columns keep the photo
    assert touched[:, 91:].all()
    assert np.array_equal(render.overlay(photo, np.zeros((4, 4)), 1.0, top_percent=50), photo)


def test_overlay_treats_nan_as_no_evidence_and_leaves_the_map_alone() -> None:
    photo, ramp = photo_and_ramp()
    holes = ramp.copy()
    holes[:, :50] = np.nan
    before = holes.copy()
    out = render.overlay(photo, holes)
    assert np.array_equal(out[:, :50], photo[:, :50])
    assert np.array_equal(holes, before, equal_nan=True)


def test_overlay_resizes_the_map_and_accepts_pil_images() -> None:
    photo, _ = photo_and_ramp(60, 100)
    m = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    a = render.overlay(photo, m)
    b = render.overlay(Image.fromarray(photo), m)
    assert a.shape == (60, 100, 3) and np.array_equal(a, b)


def test_desaturate_greys_the_photo_under_the_map() -> None:
    photo, _ = photo_and_ramp()
    grey = render.overlay(photo, np.zeros((4, 4)), desaturate=1.0).astype(int)
    assert (grey.max(axis=2) - grey.min(axis=2)).max() <= 1


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: render.colorize(np.zeros((2, 2)), "rainbow"), "inferno"),
        (lambda: render.colormap_css_gradient("nope"), "jet"),
        (lambda: render.signed_heatmap(np.zeros((2, 2)), colormap="jet"), "rdbu"),
        (lambda: render.overlay(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2)), alpha=1.5), "between 0 and 1"),
        (lambda: render.overlay(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2)), top_percent=0), "(0, 100]"),
        (lambda: render.overlay(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2)), blend="max"), "uniform"),  # type: ignore[arg-type]
        (lambda: render.comparison_figure(None, []), "at least one panel"),
    ],
)
def test_bad_options_raise_a_render_error_that_says_what_to_choose(call, needle) -> None:
    with pytest.raises(RenderError) as info:
        call()
    assert isinstance(info.value, CamError) and isinstance(info.value, ValueError)
    assert needle in str(info.value)


def test_unknown_colour_map_message_lists_every_choice() -> None:
    with pytest.raises(RenderError) as info:
        render.overlay(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2)), colormap="Jet")
    assert all(cid in str(info.value) for cid in render.COLORMAPS)


def test_scale_map_never_gives_nan() -> None:
    assert np.array_equal(render.scale_map(np.full((4, 4), -3.0)), np.zeros((4, 4)))
    assert np.array_equal(render.scale_map(np.full((4, 4), 7.0)), np.zeros((4, 4)))
    m = render.scale_map(np.array([[-2.0, 0.0, 1.0, 3.0]]))
    assert np.allclose(m, [[0, 0, 1 / 3, 1]]) and m.dtype == np.float32
    assert render.resize_map(np.zeros((8, 8), np.float32), (20, 10)).shape == (10, 20)


@pytest.mark.slow  # a fresh interpreter importing cam (and torch): ~6 s
def test_rendering_loads_no_pyplot_and_no_gui_backend() -> None:
    code = (
        "import sys, numpy as np\n"
        "from cam import render\n"
        "render.overlay(np.zeros((4, 4, 3), np.uint8), np.ones((4, 4)))\n"
        "render.raw_heatmap(np.eye(4) - 0.5, 64)\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "import matplotlib; assert matplotlib.rcParams._get_backend_or_none() in (None, 'agg'), 'backend set'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# --- Text ------------------------------------------------------------------------------------

GLYPHS = "256×256 − α ≤ β² → µ"


def missing_glyph_mask(font: ImageFont.FreeTypeFont) -> bytes:
    """The bitmap a font draws for a character it does not have (its .notdef box)."""
    absent = "\ue000"  # private use: no glyph in DejaVu Sans, checked against the font's own table
    assert ord(absent) not in TTFont(font.path).getBestCmap()
    return bytes(font.getmask(absent))


def test_figure_text_has_every_glyph_it_writes() -> None:
    font = figure_font(14)
    assert isinstance(font, ImageFont.FreeTypeFont) and font.getname()[0] == "DejaVu Sans"
    cmap = TTFont(font.path).getBestCmap()
    notdef = missing_glyph_mask(font)
    for ch in GLYPHS.replace(" ", ""):
        assert ord(ch) in cmap, f"{ch!r} is not in {font.path!s}"
        assert bytes(font.getmask(ch)) != notdef, f"{ch!r} renders as a missing-glyph box"
    # And the titles really use that font: "×" draws differently from a missing character.
    panel = np.full((10, 200, 3), 255, np.uint8)
    assert not np.array_equal(titled(panel, "256×256"), titled(panel, "256\ue000256"))
    assert not np.array_equal(label_column(30, [(15, "−1")]), label_column(30, [(15, "\ue0001")]))


def test_text_is_large_enough_at_the_size_figures_are_shown() -> None:
    assert figure_font_size(256) >= 14
    for width in range(256, 4000, 97):  # shown in a ~900 px desktop column, never enlarged
        on_screen = figure_font_size(width) * min(1.0, 900 / width)
        assert on_screen >= 12, width
    # A 256-px panel's title: capital letters at least ~10 px tall (a 14 px font).
    head = titled(np.full((4, 256, 3), 255, np.uint8), "HHHH")[:-4]
    rows = np.nonzero((head < 128).any(axis=(1, 2)))[0]
    assert rows.max() - rows.min() + 1 >= 10


def test_titles_in_a_comparison_figure_share_one_size_and_one_baseline() -> None:
    red = np.zeros((256, 256, 3), np.uint8)
    red[..., 0] = 255
    panels: list[tuple[np.ndarray, str]] = [
        (np.full((32, 32), 1.0, np.float32), "short"),
        (red, "a much longer title that wraps onto a second line for sure"),
    ]
    fig = render.comparison_figure(np.zeros((300, 200, 3), np.uint8), panels, colormap="jet", title="Title")
    # The map panel (jet at 1 = dark red) and the red picture start on the same row.
    jet_top = render.colormap_lut("jet")[255]
    col_map = np.nonzero((fig[:, 10 + 256 + 10 + 128] == jet_top).all(axis=1))[0]
    col_red = np.nonzero((fig[:, 10 + 2 * (256 + 10) + 128] == (255, 0, 0)).all(axis=1))[0]
    assert col_map.size and col_red.size and col_map.min() == col_red.min()
    assert fig.shape[1] >= 3 * 256
    grid = render.comparison_figure(np.zeros((300, 200, 3), np.uint8), panels, columns=2)
    assert grid.shape[0] > 2 * 256 > grid.shape[0] - 2 * 256 and 2 * 256 <= grid.shape[1] < 3 * 256  # 2 rows, 2 columns


def test_layout_helpers_keep_their_contracts() -> None:
    a, b = np.zeros((10, 20, 3), np.uint8), np.zeros((30, 5, 3), np.uint8)
    assert render.hstack([a, b], gap=4).shape == (30, 29, 3)
    assert render.vstack([a, b], gap=4).shape == (44, 20, 3)
    assert render.pad(a, 3).shape == (16, 26, 3)
    assert render.titled(a, "x").shape[1] == 20 and render.titled(a, "x").shape[0] > 10
    assert render.muted(np.full((64, 64, 3), 200, np.uint8), "No positive evidence").shape == (64, 64, 3)
    bar = render.labelled_colorbar(-1.0, 2.0, "jet", height=100, words=("high", "low"))
    assert bar.shape[0] == 100 and bar.shape[1] > render.COLORBAR_WIDTH
    assert render.colorbar(0, 1, "jet", height=50, width=7).shape == (50, 7, 3)
