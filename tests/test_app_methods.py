"""The Methods and Faithfulness tabs, handler by handler (no server): the identities they state are
checked against the library, the network runs only when asked, results are cached per session."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from cam import explain
from cam.faithfulness import evaluate_maps
from cam.methods import METHODS, equal_up_to_positive_scale, method_correlations
from tests.test_app import DEFAULTS, load_app, save_images

CHEAP = [m for m in METHODS if m != "scorecam"]
STEPS = 4  # faithfulness curves in the tests: 3 + 7 passes per map instead of 63


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return load_app(tmp_path_factory)


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory, images: list[np.ndarray]) -> list[Path]:
    return save_images(tmp_path_factory.mktemp("methods-imgs"), images)


@pytest.fixture
def calls(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """Every network run: app.explain (maps) and app.evaluate_maps (faithfulness curves)."""
    seen: list[tuple[str, Any]] = []
    real_explain, real_evaluate = app.explain, app.evaluate_maps

    def explain_spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(("explain", tuple(kwargs.get("methods", ()))))
        return real_explain(*args, **kwargs)

    def evaluate_spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(("evaluate", (tuple(args[2]), kwargs.get("random_seed"))))
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(app, "explain", explain_spy)
    monkeypatch.setattr(app, "evaluate_maps", evaluate_spy)
    monkeypatch.setattr(app, "FAITHFULNESS_STEPS", STEPS)
    yield seen


def session(app: ModuleType, path: Path, layer: str = "conv3") -> Any:
    return app.on_explain(str(path), DEFAULTS[0], layer, *DEFAULTS[2:], None)[-1]


def methods(
    app: ModuleType, path: Path, state: Any, target: str = "Predicted class", layer: str = "conv3", opened: bool = True
) -> tuple[Any, ...]:
    return app.on_methods_view(str(path), target, layer, 0.5, "jet", opened, state)


def every_method(app: ModuleType, path: Path, layer: str) -> Any:
    """The library's own answer: every method in one call (CAM at conv3), every class."""
    return explain(
        app.MODEL,
        path,
        methods=list(METHODS),
        layer={m: "conv3" if m == "cam" else layer for m in METHODS},
        all_classes=True,
    )


# ------------------------------------------------------------------------------------------------ Methods


def test_methods_at_the_gap_layer_equal_cam_as_stated(app: ModuleType, paths: list[Path]) -> None:
    state = session(app, paths[1])
    gallery, matrix, statement, state = methods(app, paths[1], state)
    shown = app.render_methods(app.methods_explanation(state, "conv3").for_target("predicted"), "conv3", 0.5, "jet")
    captions = [c for _, c in shown.tiles]
    assert [c.split(" (")[0] for c in captions] == [app.METHOD_NAMES[m] for m in METHODS]
    for file, (tile, caption), m in zip(gallery, shown.tiles, METHODS, strict=True):
        year = re.search(r"\d{4}", METHODS[m].reference).group()  # type: ignore[union-attr]
        assert f"({year})" in caption
        with Image.open(file) as im:  # a JPEG of the tile with its title drawn above it
            assert im.format == "JPEG" and im.width == tile.shape[1] and im.height > tile.shape[0]
    assert captions[list(METHODS).index("scorecam")] == "Score-CAM (2020), not computed yet"

    ref = every_method(app, paths[1], "conv3")
    for name in app.MODEL.class_names:
        view = app.render_methods(app.methods_explanation(state, "conv3").for_target(name), "conv3", 0.5, "jet")
        r = ref.for_target(name)
        # What the tab says equals CAM is exactly what the library's check says, and the GAP maths holds.
        truth = {m for m in CHEAP if m != "cam" and equal_up_to_positive_scale(r.maps[m], r.maps["cam"])}
        assert set(view.equal_to_cam) == truth and {"gradcam", "hirescam", "xgradcam"} <= truth
        for m in view.equal_to_cam:
            assert view.equal_to_cam[m] == pytest.approx(256 * 256, rel=1e-3)  # CAM = (H W) x map
        names, corr = method_correlations(r, CHEAP)
        assert view.names == tuple(names)
        np.testing.assert_allclose(view.correlations, corr, atol=1e-6)
        for m in ("gradcam++", "layercam"):  # differ from CAM in general: the text says which way, here
            stated = m in view.equal_to_cam
            assert stated == equal_up_to_positive_scale(r.maps[m], r.maps["cam"])
            assert (app.METHOD_NAMES[m] in view.statement_md.split("Not equal to CAM here")[-1]) != stated
    # The page shows the predicted class's numbers.
    view = app.render_methods(app.methods_explanation(state, "conv3").for_target("predicted"), "conv3", 0.5, "jet")
    assert statement == view.statement_md and matrix == view.matrix_html
    assert "equal CAM up to a positive scale" in statement and "w<sup>c</sup><sub>k</sub>/(H·W)" in statement
    for v in view.correlations[0]:
        assert f"{v:.3f}" in matrix
    assert matrix.count(" ≡</td>") == 2 * (len(view.equal_to_cam) + len(view.equal_pairs))


def test_methods_part_ways_at_conv1(app: ModuleType, paths: list[Path]) -> None:
    state = session(app, paths[3], "conv1")
    gallery, matrix, statement, state = methods(app, paths[3], state, layer="conv1")
    tiles = app.render_methods(
        app.methods_explanation(state, "conv1").for_target("predicted"), "conv1", 0.5, "jet"
    ).tiles
    assert tiles[0][1] == "CAM (2016), only at conv3" and "CAM (conv3)" in matrix and len(gallery) == len(METHODS)
    ref = every_method(app, paths[3], "conv1").for_target("predicted")
    equal = [m for m in CHEAP if m != "cam" and equal_up_to_positive_scale(ref.maps[m], ref.maps["cam"])]
    assert equal == []  # the reason for this view: below the GAP layer the gradient varies
    assert statement.startswith("**At conv1 the methods part ways.**") and "none of the methods" in statement
    for m in ("gradcam", "hirescam"):
        assert tiles[list(METHODS).index(m)][1] == f"{app.method_title(m)}, conv1"
    assert np.array_equal(
        app.methods_explanation(state, "conv1").for_target("predicted").maps["hirescam"], ref.maps["hirescam"]
    )


def test_methods_run_only_when_the_tab_is_open_and_then_only_re_render(
    app: ModuleType, paths: list[Path], calls: list[tuple[str, Any]]
) -> None:
    state = session(app, paths[0])
    assert len(calls) == 1
    closed = methods(app, paths[0], state, opened=False)
    assert closed[:3] == app.empty_methods() and closed[3] == gr.skip() and len(calls) == 1
    gallery, _, _, state = methods(app, paths[0], state)
    assert calls[-1] == ("explain", app.EXTRA_METHODS) and len(calls) == 2
    for name in app.MODEL.class_names:  # class switches, open or closed tab: re-render only
        g, _, text, state = methods(app, paths[0], state, target=name, opened=name == "baya")
        assert f"class *{name}*" in text and g[0] != gallery[0]
    assert len(calls) == 2
    state = app.on_settings(str(paths[0]), "greg", "conv2", 0.5, "jet", False, state)[-1]
    assert methods(app, paths[0], state, layer="conv2", opened=False)[0] is None  # closed: no conv3 leftovers
    state = methods(app, paths[0], state, layer="conv2")[-1]
    assert len(calls) == 4 and set(state.methods) == {"conv2", "conv3"}
    methods(app, paths[0], state, layer="conv3", opened=False)
    assert len(calls) == 4
    # Another photo with the tab closed: the old photo's maps disappear, nothing runs.
    other = methods(app, paths[2], state, opened=False)
    assert other[0] is None and other[2] == app.METHODS_HINT and len(calls) == 4


def test_scorecam_on_request_with_progress(app: ModuleType, paths: list[Path], calls: list[tuple[str, Any]]) -> None:
    state = session(app, paths[2], "conv1")
    ticks: list[tuple[int, int]] = []

    def progress(value: tuple[int, int], desc: str | None = None, unit: str = "steps") -> None:
        ticks.append(value)

    gallery, _, statement, state = app.on_scorecam(str(paths[2]), "baya", "conv1", 0.5, "jet", state, progress)
    assert ticks[-1] == (16, 16) and len(ticks) == 16 // METHODS["scorecam"].fn.__globals__["SCORECAM_BATCH_SIZE"]
    assert calls[-1] == ("explain", ("scorecam",))
    got = app.methods_explanation(state, "conv1")
    tiles = app.render_methods(got.for_target("baya"), "conv1", 0.5, "jet").tiles
    assert tiles[list(METHODS).index("scorecam")][1] == "Score-CAM (2020), conv1" and "Score-CAM" in statement
    assert len(gallery) == len(METHODS)
    ref = explain(app.MODEL, paths[2], methods=("scorecam",), layer="conv1", all_classes=True)
    assert np.array_equal(got.for_target("baya").maps["scorecam"], ref.for_target("baya").maps["scorecam"])
    n = len(calls)
    app.on_scorecam(str(paths[2]), "yuki", "conv1", 0.5, "jet", state, progress)  # cached: every class
    methods(app, paths[2], state, target="greg", layer="conv1", opened=False)
    assert len(calls) == n


# ------------------------------------------------------------------------------------------------ Faithfulness


def test_faithfulness_numbers_are_the_library_s(
    app: ModuleType, paths: list[Path], calls: list[tuple[str, Any]]
) -> None:
    state = session(app, paths[1])
    ticks: list[tuple[int, int]] = []

    def progress(value: tuple[int, int], desc: str | None = None, unit: str = "steps") -> None:
        ticks.append(value)

    plot, table, note, state = app.on_faithfulness(str(paths[1]), "rudo", "conv3", ["gradcam", "cam"], state, progress)
    assert ticks[-1] == (app.faithfulness_passes(3), app.faithfulness_passes(3))  # cam, gradcam, random
    ref = explain(app.MODEL, paths[1], methods=("cam", "gradcam"), target="rudo")
    f = evaluate_maps(app.MODEL, paths[1], ref.maps, "rudo", n_steps=STEPS, random_seed=0)
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    for name, label in (("cam", "CAM"), ("gradcam", "Grad-CAM"), ("random", "random map")):
        s = f.scores[name]
        for v in (s.deletion.auc, s.insertion.auc, f.average_drop(name), s.explanation_probability):
            assert f"{v:.3f}"[:-1] in rows[label]  # the table rounds what the library computes
        assert f"{label} {s.deletion.auc:.3f}" in plot and f"{label} {s.insertion.auc:.3f}" in plot  # legends
    assert plot.count("<svg") == 2 and "polyline" in plot
    assert f"p(rudo) on the unchanged photo: **{f.probability:.3f}**" in table
    assert note.startswith("Class **rudo**, maps at **conv3**")

    # Cached per photo, class and layer; a new method costs only its own curves.
    n = len(calls)
    again = app.on_faithfulness(str(paths[1]), "rudo", "conv3", ["cam", "gradcam"], state, progress)
    assert again[:3] == (plot, table, note) and len(calls) == n
    state = app.on_faithfulness(str(paths[1]), "rudo", "conv3", ["cam", "layercam"], state, progress)[-1]
    assert calls[-1] == ("evaluate", (("layercam",), None)) and len(calls) == n + 1  # maps: cached already
    # The view never computes: another class says how to get it, the cached class comes back.
    shown = app.on_faithfulness_view(str(paths[1]), "greg", "conv3", ["cam"], state)
    assert shown[:2] == ("", "") and "Not computed yet for class **greg**" in shown[2]
    shown = app.on_faithfulness_view(str(paths[1]), "rudo", "conv3", ["cam", "gradcam", "layercam"], state)
    assert shown[0].count("<svg") == 2 and "LayerCAM" in shown[1]
    assert len(calls) == n + 1


def test_tab_errors_are_clear(app: ModuleType, paths: list[Path]) -> None:
    state = session(app, paths[0])
    with pytest.raises(gr.Error, match="Tick at least one method"):
        app.on_faithfulness(str(paths[0]), "Predicted class", "conv3", [], state)
    with pytest.raises(gr.Error, match="Unknown method 'gradcam\\+\\+\\+'"):
        app.on_faithfulness(str(paths[0]), "Predicted class", "conv3", ["gradcam+++"], state)
    with pytest.raises(gr.Error, match="Upload a photo"):
        app.on_faithfulness(None, "Predicted class", "conv3", ["cam"], state)
    with pytest.raises(gr.Error, match="Upload a photo"):
        app.on_scorecam(None, "Predicted class", "conv3", 0.5, "jet", state)
    with pytest.raises(gr.Error, match="Unknown layer 'conv9'"):
        app.on_methods_view(str(paths[0]), "Predicted class", "conv9", 0.5, "jet", True, state)
    with pytest.raises(gr.Error, match="Unknown target class 'tulip'"):
        methods(app, paths[0], state, target="tulip")
    assert all(v == gr.skip() for v in app.on_methods_view(None, "baya", "conv3", 0.5, "jet", True, None))
    assert app.on_clear_tabs() == (None, "", "", "", "", "")
