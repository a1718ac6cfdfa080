"""The overlays the page redraws itself (class, opacity, colour map): the maps it is sent, what it is
told, and the server's side of the bargain (it leaves those overlays alone). The page's arithmetic is
checked against the server's pixels in a real browser (tests/test_browser.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import app
from cam import render
from explorer import maps
from explorer.explorer import Explorer, Settings, Who
from tests.conftest import References, scaled
from tests.test_app import by_id, request, triggered


def decode(path: str, methods: int, classes: int) -> np.ndarray:
    """`overlay_maps`' PNG -> (methods, classes, H, W) floats, as redraw.js reads it."""
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    assert (rgb[..., 2] == 0).all(), "B carries nothing"
    v = (rgb[..., 0] * 256 + rgb[..., 1]) / 65535
    return v.reshape(methods, classes, v.shape[0] // (methods * classes), v.shape[1])


@pytest.fixture(scope="module")
def demo(explorer: Explorer) -> gr.Blocks:
    return app.build_demo(explorer)


def test_the_page_gets_every_class_s_scaled_maps_losslessly(
    explorer: Explorer, photos: dict[str, Path], refs: References
) -> None:
    """Checked against the independent float64 forward (tests/conftest.py): 16 bits per value."""
    view = explorer.main_view(Who("s-redraw", "127.0.0.1"), str(photos["teal"]), Settings("baya", "conv2"))
    got = decode(view.overlay_maps, 2, 4)
    ref = refs["teal"]
    for c in range(4):
        np.testing.assert_allclose(got[0, c], scaled(ref.cam(c)), atol=2e-5)  # CAM: conv3, always
        np.testing.assert_allclose(got[1, c], scaled(ref.gradcam(c, "conv2")), atol=2e-5)  # Grad-CAM: the layer
    meta = view.overlay_meta
    assert meta["classes"] == ["rudo", "baya", "greg", "yuki"] and meta["methods"] == ["cam", "gradcam"]
    assert meta["predicted"] == int(np.argmax(ref.logits)) and meta["map_size"] == [256, 256]
    assert meta["positive"]["cam"] == [bool((ref.cam(c) > 0).any()) for c in range(4)]
    assert meta["drawn"] == {"target": "baya", "opacity": Settings().opacity, "colormap": Settings().colormap}


def test_a_map_with_no_positive_evidence_is_left_to_the_server() -> None:
    meta = {"classes": ["a", "b"], "predicted": 1, "methods": ["cam", "gradcam"],
            "positive": {"cam": [True, False], "gradcam": [False, True]}}  # fmt: skip
    assert maps.redrawn_in_page(meta, "a") == ("cam",)
    assert maps.redrawn_in_page(meta, "b") == ("gradcam",)
    assert maps.redrawn_in_page(meta, maps.PREDICTED) == ("gradcam",)  # the predicted class is b


def test_a_constant_map_is_sent_as_zeros_never_nan(explorer: Explorer, tmp_path: Path) -> None:
    flat = tmp_path / "flat.png"
    Image.new("RGB", (256, 256), (90, 120, 60)).save(flat)
    view = explorer.main_view(Who("s-redraw-flat", "127.0.0.1"), str(flat), Settings())
    got = decode(view.overlay_maps, 2, 4)
    assert np.isfinite(got).all() and got.min() >= 0 and got.max() <= 1


def test_the_script_gets_the_server_s_constants_and_colour_tables() -> None:
    """Defined once per page (the events call it): ~19 KB, where each of the 8 events carried a copy."""
    from explorer import page

    defined = maps.redraw_definition()
    assert defined.startswith("window.camRedraw = async (method, target,") and defined in page.load_js()
    assert not re.search(r"__[A-Z]+__", defined), "a placeholder left unfilled"
    assert f"Math.pow(i / 65536, {maps.GAMMA})" in defined and f"{maps.DESATURATE} * grey" in defined
    luts = re.search(r"S\.luts \?\?= Object\.fromEntries\(Object\.entries\((\{.*?\})\)", defined)
    assert luts is not None
    tables = json.loads(luts.group(1))
    assert set(tables) == set(render.COLORMAPS)
    for name, hexed in tables.items():
        assert bytes.fromhex(hexed) == render.colormap_lut(name).tobytes()
    for method in maps.REDRAWN:
        for moved_on in (False, True):
            js = maps.redraw_js(method, moved_on)
            assert f'window.camRedraw("{method}", ...a)' in js and len(js) < 300
            assert ("drawn" in js) == moved_on


def test_the_page_redraws_the_overlays_then_the_server_sends_the_rest(
    demo: gr.Blocks, explorer: Explorer, photos: dict[str, Path]
) -> None:
    """A class, opacity or colour-map change: page-side functions first, then the server leaves the
    overlays the page drew (and the maps it drew them from) as they are, and fills everything else."""
    image = str(photos["blue"])
    looks = {"target": ("change", {"explained-class", "cam-heatmap", "compare-image"}, {"class-greg"}),
             "colormap": ("change", {"compare-image", "class-greg", "cam-legend"}, {"cam-heatmap"}),
             "opacity": ("input", {"class-greg"}, {"compare-image", "cam-heatmap"})}  # fmt: skip
    for elem_id, (event, sent, left) in looks.items():
        first = [f for f in demo.fns.values() if (by_id(demo, elem_id)._id, event) in map(tuple, f.targets)]
        assert [f.fn for f in first] == [None, None] and all(f.js for f in first), "both overlays, in the page"
        assert [f.outputs for f in first] == [[by_id(demo, "cam-slider")], [by_id(demo, "gradcam-slider")]]
        server = triggered(demo, elem_id, event)
        assert server.trigger_after == first[-1]._id, "the server's work starts after the page's redraw"
        out = server.fn(request(session="s-look"), image, "greg", "conv3", 0.35, "viridis", "cam", False)
        shown = {getattr(k, "elem_id", None): v for k, v in out.items()}
        view = explorer.main_view(Who("s-look", "127.0.0.1"), image, Settings("greg", "conv3", 0.35, "viridis"))
        drawn = maps.redrawn_in_page(view.overlay_meta, "greg")
        assert drawn == ("cam", "gradcam")  # this photo has positive evidence for greg in both maps
        assert not {"cam-slider", "gradcam-slider", "overlay-maps", "overlay-meta"} & set(shown)
        assert sent <= set(shown) and not left & set(shown), (elem_id, sorted(shown))
        values = [v.get("value") if isinstance(v, dict) else v for v in shown.values()]  # tiles: gr.update
        files = [v for v in values if isinstance(v, str) and Path(v).is_file()]
        written = sorted(p.name for p in Path(files[0]).parent.iterdir())  # this response's folder
        assert written and not [n for n in written if "overlay" in n], written


def test_the_server_sends_the_muted_overlay_the_page_leaves(
    demo: gr.Blocks, photos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = maps.overlay_meta

    def no_cam_evidence(r: object, s: Settings) -> dict[str, object]:
        meta = real(r, s)  # type: ignore[arg-type]
        return {**meta, "positive": {**meta["positive"], "cam": [False] * 4}}

    monkeypatch.setattr(maps, "overlay_meta", no_cam_evidence)
    server = triggered(demo, "target", "change")
    out = server.fn(request(session="s-muted"), str(photos["olive"]), "rudo", "conv3", 0.5, "jet", "cam", False)
    shown = {getattr(k, "elem_id", None): v for k, v in out.items()}
    assert "cam-slider" in shown and "gradcam-slider" not in shown
    assert all(Path(p).is_file() for p in shown["cam-slider"])


def test_a_new_explanation_sends_the_maps_and_the_overlays(demo: gr.Blocks, photos: dict[str, Path]) -> None:
    """Explain, and a layer change: the server draws the overlays and sends what the page redraws from."""
    for elem_id, event, args in (("explain", "click", ("cam", False)), ("layer", "input", ("cam", False))):
        server = triggered(demo, elem_id, event)
        out = server.fn(request(session="s-new"), str(photos["teal"]), "predicted", "conv1", 0.8, "inferno", *args)
        shown = {getattr(k, "elem_id", None): v for k, v in out.items()}
        assert {"cam-slider", "gradcam-slider", "overlay-maps", "overlay-meta"} <= set(shown)
        assert Path(shown["overlay-maps"]).is_file() and shown["overlay-meta"]["drawn"]["target"] == "predicted"


def content(value: object) -> object:
    """A field's content: a written file's bytes (each response writes to a fresh folder), recursively."""
    if isinstance(value, str) and Path(value).is_file():
        return Path(value).read_bytes()
    if isinstance(value, tuple | list):
        return tuple(content(v) for v in value)
    return value


@pytest.mark.parametrize(("changed", "to"), [("target", "rudo"), ("opacity", 0.8), ("colormap", "jet")])
def test_a_look_change_sends_what_it_alters_and_nothing_else_changes(
    explorer: Explorer, photos: dict[str, Path], changed: str, to: object
) -> None:
    """`maps.LOOK` checked by rendering both sides: every field it leaves out has the same content after
    the change, and `Explorer.look_update` sends the rest (less the overlays the page drew) as the full
    view would show them."""
    image, who = str(photos["blue"]), Who(f"s-look-{changed}", "127.0.0.1")
    before = Settings("greg", "conv3", 0.35, "viridis")
    after = Settings(**{**vars(before), changed: to})
    old, new = (vars(explorer.main_view(who, image, s)) for s in (before, after))
    differ = {name for name in old if content(old[name]) != content(new[name])}
    # The meta records the settings the overlays were drawn with; the page keeps its own, and the rest is equal.
    assert {**old["overlay_meta"], "drawn": None} == {**new["overlay_meta"], "drawn": None}
    differ.discard("overlay_meta")
    assert differ <= maps.LOOK[changed], f"changed but not sent: {differ - maps.LOOK[changed]}"
    assert "cam_slider" in differ and "gradcam_slider" in differ  # the page's redraw is needed at all
    sent = explorer.look_update(who, image, after, changed)
    drawn = {f"{m}_slider" for m in maps.redrawn_in_page(new["overlay_meta"], str(after.target))}
    assert drawn == {"cam_slider", "gradcam_slider"} and set(sent) == maps.LOOK[changed] - drawn
    assert {name: content(v) for name, v in sent.items()} == {name: content(new[name]) for name in sent}
