"""Lesson links: the page's state written into a URL and read back; bad values are ignored with one
note each, never an error."""

from __future__ import annotations

import itertools
import math
import random
import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from cam import render
from explorer import links
from explorer.links import LinkState, parse, query_string, view_link

STEMS = ["baya_1", "greg_2", "rudo_2", "yuki_1"]
CLASSES = ["rudo", "baya", "greg", "yuki"]
LAYERS = ["conv1", "conv2", "conv3"]
CMAPS = list(render.COLORMAPS)
TABS = list(links.TAB_IDS)


def read(query: dict[str, str]) -> tuple[LinkState, list[str]]:
    return parse(query, STEMS, CLASSES, LAYERS, CMAPS, TABS)


def test_tab_ids_are_the_documented_ones() -> None:
    assert links.TAB_IDS == (
        "cam",
        "inside-the-cam",
        "grad-cam",
        "compare",
        "all-classes",
        "methods",
        "trust",
        "about",
    )


def test_every_state_survives_the_round_trip() -> None:
    rng = random.Random(0)
    states = [LinkState()] + [
        LinkState(
            example=rng.choice([None, *STEMS]),
            target=rng.choice(["predicted", *CLASSES]),
            layer=rng.choice(LAYERS),
            tab=rng.choice(TABS),
            opacity=rng.choice([0.0, 0.05, 0.35, 0.6, 1.0]),
            colormap=rng.choice(CMAPS),
        )
        for _ in range(300)
    ]
    for state in states:
        url = view_link("http://127.0.0.1:7860/", state)
        query = dict(parse_qsl(urlsplit(url).query))
        back, notes = read(query)
        assert (back, notes) == (state, []), url


def test_links_carry_only_what_differs_from_the_defaults() -> None:
    assert query_string(LinkState()) == ""
    assert query_string(LinkState(example="greg_2")) == "?example=greg_2"
    q = query_string(
        LinkState(example="greg_2", target="baya", layer="conv2", tab="compare", opacity=0.25, colormap="jet")
    )
    assert q == "?example=greg_2&class=baya&layer=conv2&tab=compare&opacity=0.25&cmap=jet"
    assert query_string(LinkState(target="yuki")) == "?class=yuki", "no example for an upload"
    assert "upload" in links.UPLOAD_NOTE.lower() and "never" in links.UPLOAD_NOTE


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("example", "cat_photo"),
        ("example", "../../etc/passwd"),
        ("class", "tulip"),
        ("class", "Predicted Class"),
        ("layer", "conv_layers.5"),
        ("tab", "settings"),
        ("cmap", "rainbow"),
        ("opacity", "2"),
        ("opacity", "-0.1"),
        ("opacity", "nan"),
        ("opacity", "inf"),
        ("opacity", "1e309"),
        ("opacity", "half"),
        ("opacity", ""),
    ],
)
def test_a_bad_value_is_ignored_with_one_note(key: str, value: str) -> None:
    good = {"class": "greg", "layer": "conv1"} if key not in ("class", "layer") else {"tab": "methods"}
    state, notes = read({**good, key: value})
    assert len(notes) == 1, notes
    assert notes[0].startswith("⚠️ Ignored `" + key + "=") and "use " in notes[0]
    assert getattr(state, {"class": "target", "cmap": "colormap"}.get(key, key)) == getattr(
        LinkState(), {"class": "target", "cmap": "colormap"}.get(key, key)
    ), "the default stands"
    for k, v in good.items():  # the good values still apply
        assert getattr(state, {"class": "target"}.get(k, k)) == v


def test_several_bad_values_give_one_note_each() -> None:
    state, notes = read({"example": "x", "class": "y", "layer": "z", "tab": "w", "cmap": "v", "opacity": "u"})
    assert state == LinkState() and len(notes) == 6
    for key, note in zip(("example", "class", "layer", "tab", "cmap", "opacity"), notes, strict=True):
        assert note.startswith(f"⚠️ Ignored `{key}=")
    assert read({"utm_source": "newsletter", "embed": "1"}) == (LinkState(), []), "other keys are not ours"


def test_hostile_values_never_raise_and_stay_short() -> None:
    rng = random.Random(1)
    alphabet = "ab/\\.%`*_[]()<>\"'&#\n\x00é🌱 ="
    values = ["", " ", "x" * 10_000, "0.5" + "0" * 5000, "１", "0x1p-2", "-0", "+.5", "1_0", "\u202e"] + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(300)
    ]
    for key, value in itertools.product(("example", "class", "layer", "tab", "cmap", "opacity"), values):
        state, notes = read({key: value})
        assert len(notes) <= 1
        for note in notes:
            assert len(note) < 250, note
        if key == "opacity" and not notes:
            assert math.isfinite(state.opacity) and 0 <= state.opacity <= 1


def test_a_note_shows_the_value_as_code_and_nothing_more() -> None:
    """The note is Markdown: a value must not close its code span and inject a link or markup."""
    for value in ("`[free plants](https://ev.il)`", "x` **bold** `y", "``", "a`b", "x\n\n# Heading", "a\r\n\r\n[b](c)"):
        _, notes = read({"class": value})
        assert len(notes) == 1
        code_spans = re.findall(r"`[^`]*`", notes[0])
        assert len(code_spans) == 1 and notes[0].count("`") == 2, notes[0]
        assert "](" not in notes[0].replace(code_spans[0], "") and "\n" not in notes[0], notes[0]


def test_base_url_is_where_readers_open_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert links.base_url({"host": "127.0.0.1:7860"}, None) == "http://127.0.0.1:7860/"
    behind_proxy = {"host": "10.0.0.5:7860", "x-forwarded-host": "cam.example.org", "x-forwarded-proto": "https"}
    assert links.base_url(behind_proxy, None) == "https://cam.example.org/"
    assert links.base_url({}, None) == "/"
    monkeypatch.setenv("SPACE_ID", "someone/pot-plant-cam")
    assert links.base_url({"host": "someone-pot-plant-cam.hf.space"}, None) == (
        "https://huggingface.co/spaces/someone/pot-plant-cam"
    )
    assert view_link(links.base_url({}, None), LinkState(example="rudo_2", tab="compare")) == (
        "https://huggingface.co/spaces/someone/pot-plant-cam?example=rudo_2&tab=compare"
    )
