"""The Methods and Trust (faithfulness) tabs as the reader sees them: the correlation matrix read back
out of its HTML, the statements read out of their Markdown, the faithfulness table and curves,
each against an independent computation (np.corrcoef, an own least-squares scale test, and
`cam.faithfulness.evaluate_maps` run directly). The maps themselves come from `cam.explain`, whose
CAM and Grad-CAM are checked against a hand-written forward pass in test_explorer.py."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cam import explain, load_image
from cam.faithfulness import evaluate_maps
from cam.model import CamModel
from explorer.explorer import Explorer, Settings, Who

WHO = Who("methods-session", "127.0.0.1")
CLASSES = ("rudo", "baya", "greg", "yuki")
# What the page calls each method (written out here: a renamed method must be noticed).
NAMES = {
    "cam": "CAM",
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "hirescam": "HiResCAM",
    "xgradcam": "XGrad-CAM",
    "layercam": "LayerCAM",
    "scorecam": "Score-CAM",
    "eigencam": "Eigen-CAM",
}
CHEAP = [m for m in NAMES if m != "scorecam"]
BY_NAME = {v: k for k, v in NAMES.items()}


# ------------------------------------------------------------------------------------------------ helpers


class _Table(HTMLParser):
    """Rows of <th>/<td> texts of the first table in a page fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def matrix_cells(html_text: str) -> tuple[list[str], dict[tuple[str, str], str]]:
    """(column labels, {(row label, column label): cell text}) of the correlation matrix."""
    parser = _Table()
    parser.feed(html_text)
    header, *body = parser.rows
    assert header[0] == "", header
    labels = header[1:]
    cells = {}
    for row in body:
        assert len(row) == len(labels) + 1, row
        for label, text in zip(labels, row[1:], strict=True):
            cells[(row[0], label)] = text
    return labels, cells


def flat(m: np.ndarray) -> np.ndarray:
    return np.asarray(m, dtype=np.float64).ravel()


def scale_and_residual(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Least-squares s with a ≈ s b, and ||a - s b|| / ||a||: written out here, not the library's."""
    x, y = flat(a), flat(b)
    s = float(x @ y / (y @ y))
    return s, float(np.linalg.norm(x - s * y) / np.linalg.norm(x))


def truly_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """a = s b with s > 0, far from the page's 1e-4 threshold on either side (or the test says so)."""
    s, res = scale_and_residual(a, b)
    assert not 1e-5 < res < 1e-3, f"residual {res:.1e} is too near the threshold to judge"
    return s > 0 and res <= 1e-4


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(flat(a), flat(b))[0, 1])


def every_map(model: CamModel, path: Path, layer: str, methods: list[str]) -> Any:
    """The maps from cam.explain: CAM at conv3, the others at ``layer``, every class."""
    return explain(
        model, path, methods=methods, layer={m: "conv3" if m == "cam" else layer for m in methods}, all_classes=True
    )


def check_matrix(html_text: str, maps: dict[str, np.ndarray], layer: str) -> None:
    """Every cell is np.corrcoef of the two raw maps to 3 decimals; ≡ exactly where they are equal."""
    labels, cells = matrix_cells(html_text)
    cam_label = "CAM" if layer == "conv3" else "CAM (conv3)"
    methods = [BY_NAME["CAM" if label == cam_label else label] for label in labels]
    assert set(methods) == set(maps) and labels[0] == cam_label
    for a, la in zip(methods, labels, strict=True):
        for b, lb in zip(methods, labels, strict=True):
            text = cells[(la, lb)]
            m = re.fullmatch(r"(-?\d\.\d{3})( ≡)?", text)
            assert m, text
            assert float(m.group(1)) == pytest.approx(corr(maps[a], maps[b]), abs=6e-4), (a, b, text)
            assert bool(m.group(2)) == (a != b and truly_equal(maps[a], maps[b])), (a, b, text)


# ------------------------------------------------------------------------------------------------ Methods


def test_methods_at_conv3_state_the_true_equivalences(
    explorer: Explorer, fixture_model: CamModel, photos: dict[str, Path]
) -> None:
    r = every_map(fixture_model, photos["teal"], "conv3", CHEAP)
    for c, name in enumerate(CLASSES):
        tab = explorer.methods_tab(WHO, str(photos["teal"]), Settings(target=name))
        maps = r.for_target(c).maps
        check_matrix(tab.methods_matrix, maps, "conv3")
        assert f"class <b>{name}</b>" in tab.methods_matrix
        md = tab.methods_md
        same = {m for m in CHEAP if m != "cam" and truly_equal(maps["cam"], maps[m])}
        assert {"gradcam", "hirescam", "xgradcam"} <= same, "the GAP-layer identities"
        head = re.search(r"\*\*At conv3, (.*?) equal CAM up to a positive scale\*\* for class \*(\w+)\*", md)
        assert head, md
        assert head.group(2) == name
        assert {BY_NAME[n] for n in re.split(r", | and ", head.group(1))} == same
        # The scales it states turn each map into CAM: s = <CAM, map> / <map, map> (here H·W).
        for label, s in re.findall(r"([\w+-]+) × ([\d,]+\.\d)", md.split("give CAM")[0]):
            want, _ = scale_and_residual(maps["cam"], maps[BY_NAME[label]])
            assert float(s.replace(",", "")) == pytest.approx(want, abs=0.051), label
            assert want == pytest.approx(256 * 256, rel=1e-4)
        differ = re.search(r"\*\*Not equal to CAM here:\*\* (.*)\.\n", md)
        assert differ, md
        listed = dict(re.findall(r"([\w+-]+) \(r = (-?\d\.\d{3})\)", differ.group(1)))
        assert {BY_NAME[n] for n in listed} == set(CHEAP) - same - {"cam"}
        for label, v in listed.items():
            assert float(v) == pytest.approx(corr(maps["cam"], maps[BY_NAME[label]]), abs=6e-4)
        pairs = [(a, b) for i, a in enumerate(CHEAP[1:]) for b in CHEAP[i + 2 :] if truly_equal(maps[a], maps[b])]
        stated = re.findall(r"([\w+-]+) ≡ ([\w+-]+)", md)
        assert sorted(tuple(sorted((BY_NAME[a], BY_NAME[b]))) for a, b in stated) == sorted(
            tuple(sorted(p)) for p in pairs
        )
        assert ("gradcam", "hirescam") in pairs  # equal to CAM, so to each other


@pytest.mark.slow
def test_methods_at_conv1_part_ways_as_stated_with_scorecam(
    make_explorer: Callable[..., Explorer], fixture_model: CamModel, photos: dict[str, Path]
) -> None:
    ex = make_explorer()
    path = str(photos["olive"])
    before = ex.methods_tab(WHO, path, Settings(target="greg", layer="conv1"))
    captions = [caption for _, caption in before.methods_gallery]  # type: ignore[union-attr]
    assert len(captions) == len(NAMES)
    assert [c.split(" (")[0].split(",")[0] for c in captions] == list(NAMES.values())
    assert captions[0].endswith(", only at conv3") and captions[6].endswith(", not computed yet")
    ticks: list[tuple[int, int]] = []
    tab = ex.methods_tab(
        WHO,
        path,
        Settings(target="greg", layer="conv1"),
        with_scorecam=True,
        progress=lambda done, total: ticks.append((done, total)),
    )
    assert ticks and ticks[-1][0] == ticks[-1][1] == 16, "Score-CAM at conv1: one masked pass per channel"
    captions = [caption for _, caption in tab.methods_gallery]  # type: ignore[union-attr]
    assert "not computed" not in captions[6] and captions[6].endswith(", conv1")
    maps = every_map(fixture_model, photos["olive"], "conv1", list(NAMES)).for_target("greg").maps
    check_matrix(tab.methods_matrix, maps, "conv1")
    md = tab.methods_md
    assert md.startswith("**At conv1 the methods part ways.**")
    near = [m for m in NAMES if m != "cam" and truly_equal(maps["cam"], maps[m])]
    assert near == [] and "none of the methods at conv1 equals it up to a positive scale" in md
    listed = dict(re.findall(r"([\w+-]+) r = (-?\d\.\d{3})", md.split("correlation with CAM")[1].split("\n")[0]))
    assert {BY_NAME[n] for n in listed} == set(NAMES) - {"cam"}
    for label, v in listed.items():
        assert float(v) == pytest.approx(corr(maps["cam"], maps[BY_NAME[label]]), abs=6e-4)
    pairs = [
        (a, b) for i, a in enumerate(list(NAMES)[1:]) for b in list(NAMES)[i + 2 :] if truly_equal(maps[a], maps[b])
    ]
    if not pairs:
        assert "No two methods at conv1 are equal up to a positive scale" in md


# ------------------------------------------------------------------------------------------------ Trust


def table_rows(md: str) -> dict[str, list[str]]:
    """Map label -> cells of the faithfulness table (bold markers kept)."""
    rows = {}
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("| Map (") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def plain(cell: str) -> float:
    return float(cell.strip("*"))


@pytest.fixture
def evaluations(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, ...]]]:
    """The maps each faithfulness run of the Explorer evaluates (its evaluate_maps, wrapped)."""
    import explorer.explorer as module

    seen: list[tuple[str, ...]] = []
    real = module.evaluate_maps

    def spy(model: CamModel, image: Any, maps: dict[str, np.ndarray], *args: Any, **kwargs: Any) -> Any:
        seen.append(tuple(maps))
        return real(model, image, maps, *args, **kwargs)

    monkeypatch.setattr(module, "evaluate_maps", spy)
    yield seen


@pytest.mark.slow
def test_faithfulness_table_and_curves_are_the_library_s(
    make_explorer: Callable[..., Explorer],
    fixture_model: CamModel,
    photos: dict[str, Path],
    evaluations: list[tuple[str, ...]],
) -> None:
    ex = make_explorer()
    path = str(photos["blue"])
    target, chosen = "greg", ["layercam", "cam", "gradcam"]
    images: list[int] = []
    handle = fixture_model.module.register_forward_hook(lambda _m, inputs, _o: images.append(int(inputs[0].shape[0])))
    try:
        ex.explanation(WHO, path, "conv3")  # the maps the run starts from (not part of its cost)
        ex.all_methods(WHO, path, "conv3")
        images.clear()
        tab = ex.faith_tab(WHO, path, Settings(target=target), chosen, compute=True)
    finally:
        handle.remove()
    # What a run costs, as the page announces it: forward passes (images) per map, plus three shared.
    assert sum(images) == 3 + 4 * (ex.faithfulness_passes(1) - 3)  # three maps and the random one
    maps = every_map(fixture_model, photos["blue"], "conv3", ["cam", "gradcam", "layercam"]).for_target(target).maps
    f = evaluate_maps(
        fixture_model,
        load_image(photos["blue"]),
        {m: maps[m] for m in ("cam", "gradcam", "layercam")},
        target,
        n_steps=4,
        random_seed=0,
    )
    rows = table_rows(tab.faith_table)
    labels = {"cam": "CAM", "gradcam": "Grad-CAM", "layercam": "LayerCAM", "random": "random map"}
    assert list(rows) == [labels[m] for m in ("cam", "gradcam", "layercam", "random")]  # page order, random last
    shown_del, shown_ins, shown_drop = {}, {}, {}
    for m, label in labels.items():
        dele, ins, drop, up, p_li = rows[label]
        s = f.scores[m]
        assert plain(dele) == pytest.approx(s.deletion.auc, abs=5.1e-4), (label, dele)
        assert plain(ins) == pytest.approx(s.insertion.auc, abs=5.1e-4), (label, ins)
        assert plain(drop) == pytest.approx(f.average_drop(m), abs=0.051), (label, drop)
        assert up == ("yes" if s.explanation_probability > f.probability else "no")
        assert plain(p_li) == pytest.approx(s.explanation_probability, abs=5.1e-4)
        shown_del[m], shown_ins[m], shown_drop[m] = dele, ins, drop
    # Bold: the best shown value among the methods (the random map never), and every cell showing it.
    for shown, best in ((shown_del, min), (shown_ins, max), (shown_drop, min)):
        top = best(plain(shown[m]) for m in ("cam", "gradcam", "layercam"))
        for m, cell in shown.items():
            assert cell.startswith("**") == (m != "random" and plain(cell) == top), (m, cell, top)
    assert f"p({target}) on the unchanged photo: **{f.probability:.3f}**" in tab.faith_table
    assert f"The random map scores {f.scores['random'].deletion.auc:.3f} (deletion)" in tab.faith_table
    beat = [
        labels[m]
        for m in ("cam", "gradcam", "layercam")
        if f.scores[m].deletion.auc < f.scores["random"].deletion.auc
        and f.scores[m].insertion.auc > f.scores["random"].insertion.auc
    ]
    if beat:
        said = re.search(r"Better than random on both curves here: (.*)\.", tab.faith_table)
        assert said and set(re.split(r", | and ", said.group(1))) == set(beat)
    else:
        assert "No method beats the random map on both curves" in tab.faith_table
    # The line plots: one series per map, named with its AUC, holding the library's curve.
    for kind, frame in (("deletion", tab.faith_deletion), ("insertion", tab.faith_insertion)):
        assert list(frame.columns) == ["fraction", "probability", "map"]
        for m, label in labels.items():
            curve = getattr(f.scores[m], kind)
            series = frame[frame["map"] == f"{label} (AUC {curve.auc:.3f})"]
            assert len(series) == len(curve.fractions), (kind, label, set(frame["map"]))
            np.testing.assert_allclose(series["fraction"], curve.fractions)
            np.testing.assert_allclose(series["probability"], curve.probabilities, atol=1e-6)
            p = series["probability"].to_numpy()
            auc = float(np.sum(np.diff(series["fraction"].to_numpy()) * (p[1:] + p[:-1]) / 2))
            legend = re.search(r"AUC (\d\.\d{3})", series["map"].iloc[0])
            assert legend and float(legend.group(1)) == pytest.approx(auc, abs=5.1e-4)
    assert tab.faith_note == f"Class **{target}**, maps at **conv3**, 4 steps of 16,384 pixels."
    # Cached per photo, class and layer: asking again computes nothing; one more map costs only its own.
    assert evaluations == [("cam", "gradcam", "layercam")]
    again = ex.faith_tab(WHO, path, Settings(target=target), ["cam", "gradcam", "layercam"], compute=True)
    assert again.faith_table == tab.faith_table and len(evaluations) == 1
    more = ex.faith_tab(WHO, path, Settings(target=target), [*chosen, "eigencam"], compute=True)
    assert evaluations[1] == ("eigencam",) and "Eigen-CAM" in more.faith_table
    assert table_rows(more.faith_table)["CAM"] == rows["CAM"], "the earlier numbers are kept"
    # Shown without computing: the cached class comes back; another class says how to get it.
    assert ex.faith_tab(WHO, path, Settings(target=target), chosen, compute=False).faith_table == tab.faith_table
    other = ex.faith_tab(WHO, path, Settings(target="rudo"), chosen, compute=False)
    assert other.faith_table == "" and other.faith_deletion is None
    assert "Not computed yet for class **rudo** at **conv3**" in other.faith_note
    assert f"about {ex.faithfulness_passes(1):,} forward passes per map" in other.faith_note
    assert len(evaluations) == 2
