"""The Gradio layer, built with `app.build_demo` on an Explorer over the fixture model (no server):
the page's element ids, which endpoints are public, the queue groups, the handlers' wiring (every
declared output gets the view-model's value), lesson links on load, the trusted image input and the
error wrapper. What the views *say* is tested in test_explorer.py and test_app_methods.py."""

from __future__ import annotations

import asyncio
import base64
import inspect
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pytest
from gradio.data_classes import ImageData

import app
from cam import CamError
from cam.model import CamModel
from explorer.explorer import Explorer, Settings, Who
from explorer.trusted import UNTRUSTED_PATH_MESSAGE
from tests.conftest import EXAMPLES

# docs/DESIGN-NOTES.md: the stable ids that browser tests and benchmarks use.
DOCUMENTED_IDS = (
    "input-image",
    "target",
    "layer",
    "colormap",
    "opacity",
    "explain",
    "explained-class",
    "caveat",
    "prediction",
    "provenance",
    "tabs",
    "cam-slider",
    "cam-heatmap",
    "gradcam-slider",
    "gradcam-heatmap",
    "compare-image",
    "compare-numbers",
    "all-classes",
    "methods-gallery",
    "methods-statement",
    "methods-matrix",
    "faith-plot-deletion",
    "faith-plot-insertion",
    "faith-table",
    "channels-grid",
    "channels-sum-k",
    "channels-sum-image",
    "channels-sum-numbers",
    "channels-proof-plot",
    "channels-pixel-plot",
    "channels-pixel-image",
    "link-to-view",
    "url-note",
    "echo-in",
    "echo-out",
    "echo-btn",
)


@pytest.fixture(scope="module")
def demo(explorer: Explorer) -> gr.Blocks:
    return app.build_demo(explorer)


DISPLAY = (Settings().opacity, Settings().colormap)  # the page's default opacity and colour map


def request(session: str = "s-app", host: str = "127.0.0.1", **kw: Any) -> gr.Request:
    """A request as Gradio hands it to a handler (headers, client, session hash, query)."""
    kw.setdefault("headers", {"host": "127.0.0.1:7860"})
    kw.setdefault("query_params", {})
    return gr.Request(client={"host": host}, session_hash=session, **kw)


def handler(demo: gr.Blocks, name: str) -> Any:
    """The first event of ``demo`` whose function is called ``name``."""
    for fn in demo.fns.values():
        if getattr(fn.fn, "__name__", None) == name:
            return fn
    raise LookupError(name)


def triggered(demo: gr.Blocks, elem_id: str | None, event: str) -> Any:
    """The server function ``demo`` runs first when the component ``elem_id`` (None: the page) fires
    ``event``: directly, or after the page's own functions (``js`` only) it triggers."""
    block = demo if elem_id is None else by_id(demo, elem_id)
    chain = [fn for fn in demo.fns.values() if (block._id, event) in [tuple(t) for t in fn.targets]]
    while chain:
        fn = chain.pop(0)
        if fn.fn is not None:
            return fn
        chain += [f for f in demo.fns.values() if f.trigger_after == fn._id]
    raise LookupError(f"{elem_id}.{event}")


def by_id(demo: gr.Blocks, elem_id: str) -> Any:
    return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def default(component: Any) -> Any:
    return getattr(component, "value", None)


def value(v: Any) -> Any:
    return v.get("value") if isinstance(v, dict) and "__type__" in v else v


# ------------------------------------------------------------------------------------------------ structure


def test_the_page_has_the_documented_element_ids(demo: gr.Blocks) -> None:
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert set(DOCUMENTED_IDS) <= ids, sorted(set(DOCUMENTED_IDS) - ids)
    assert any(i and i.startswith("trust-") for i in ids)
    assert {f"class-{n}" for n in ("rudo", "baya", "greg", "yuki")} <= ids


def test_only_the_api_endpoints_are_public(demo: gr.Blocks) -> None:
    info = demo.get_api_info()
    public = {f"/{fn.api_name}" for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert set(info["named_endpoints"]) == public and {"/explain", "/channels"} <= public
    assert not any(name.startswith(("/on_", "/run", "/lambda")) for name in public), public
    params = {e: [p["parameter_name"] for p in info["named_endpoints"][e]["parameters"]] for e in public}
    assert params["/explain"] == ["image", "target", "method", "layer"]
    assert params["/channels"] == ["image", "target", "layer", "x", "y"]


def test_every_queued_event_is_in_the_model_s_concurrency_group(demo: gr.Blocks) -> None:
    queued = [fn for fn in demo.fns.values() if fn.fn is not None and fn.queue is not False]
    assert len(queued) > 10
    assert {fn.concurrency_id for fn in queued} == {app.CONCURRENCY_ID}, "two groups would run the model at once"
    for elem_id, event in (("explain", "click"), ("input-image", "upload"), ("target", "change"), (None, "load")):
        assert triggered(demo, elem_id, event).concurrency_id == app.CONCURRENCY_ID


@pytest.fixture
def cold(
    make_explorer: Callable[..., Explorer], fixture_model: CamModel
) -> Iterator[tuple[Explorer, gr.Blocks, list[int]]]:
    """A demo on a fresh Explorer, and a counter of the fixture network's forward passes."""
    ex = make_explorer()
    seen: list[int] = []
    handle = fixture_model.module.register_forward_hook(lambda *_: seen.append(1))
    yield ex, app.build_demo(ex), seen
    handle.remove()


def test_events_off_the_queue_never_run_the_network(cold: tuple[Explorer, gr.Blocks, list[int]],
                                                    photos: dict[str, Path]) -> None:  # fmt: skip
    """An event with queue=False runs at once in its own thread, outside the model's group and the
    queue's limits, so it must not run the network, even for a photo whose explanation is not cached
    (never computed, or evicted). Every such event that reads the photo is called here, cold."""
    _, demo, forwards = cold
    given = {"input-image": str(photos["teal"]), "target": "predicted", "layer": "conv3",
             "opacity": Settings().opacity, "colormap": Settings().colormap, "faith-methods": ["cam"],
             "open-tab": "trust"}  # fmt: skip
    image = by_id(demo, "input-image")
    called = []
    for fn in demo.fns.values():
        if fn.fn is None or fn.queue is not False or not any(i is image for i in fn.inputs):
            continue
        args = [given.get(getattr(i, "elem_id", None) or "", default(i)) for i in fn.inputs]
        first = next(iter(inspect.signature(fn.fn).parameters.values()), None)
        if first is not None and first.name == "request":
            args.insert(0, request())
        fn.fn(*args)
        called.append(fn.api_name)
    assert called, "at least the link to the view is made off the queue"
    assert forwards == [], f"an off-queue event ran the model: one of {called}"


# ------------------------------------------------------------------------------------------------ handlers


def test_explain_fills_every_output_with_the_view(demo: gr.Blocks, explorer: Explorer,
                                                  photos: dict[str, Path]) -> None:  # fmt: skip
    fn = triggered(demo, "explain", "click")
    out = fn.fn(request(), str(photos["blue"]), "greg", "conv2", 0.4, "jet", "cam", False)
    image = by_id(demo, "input-image")  # an output only to put the last good photo back after a refusal
    assert set(map(id, out)) == {id(o) for o in fn.outputs if o is not image}, "every output gets a value"
    view = explorer.main_view(Who("s-app", "127.0.0.1"), str(photos["blue"]), Settings("greg", "conv2", 0.4, "jet"))
    shown = {getattr(k, "elem_id", None): value(v) for k, v in out.items()}
    assert shown["explained-class"] == view.heading and shown["compare-numbers"] == view.compare_md
    assert shown["prediction"] == view.prediction and shown["caveat"] == view.caveat == ""
    assert np.array_equal(np.load(shown["download-cam"]), np.load(view.cam_npy))
    for i, name in enumerate(("rudo", "baya", "greg", "yuki")):
        tile = out[by_id(demo, f"class-{name}")]
        assert tile["label"] == view.class_tiles[i][1] and Path(tile["value"]).is_file()
    for v in out.values():
        assert not isinstance(v, np.ndarray), "pictures go out as files of their own, never arrays"


def test_settings_without_an_image_change_nothing(demo: gr.Blocks) -> None:
    fn = triggered(demo, "target", "change")
    out = fn.fn(request(), None, "baya", "conv3", *DISPLAY, "cam", False)
    assert out == {}  # app.py's postprocessing sends "unchanged" for every output
    assert asyncio.run(demo.postprocess_data(fn, out, None)) == [gr.skip()] * len(fn.outputs)


def test_a_refused_photo_keeps_the_last_result_and_says_why(
    demo: gr.Blocks, photos: dict[str, Path], tmp_path: Path
) -> None:
    """Issue 12.7: a refusal is a message (a toast), not "Error" pills over the last good result;
    the photo shown goes back to the last one explained."""
    fn = triggered(demo, "explain", "click")
    image = by_id(demo, "input-image")
    notes = tmp_path / "notes.png"
    notes.write_text("these are my notes, not a photo")
    reader = request(session=f"refusals-{tmp_path.name}")
    with pytest.warns(UserWarning, match="Upload a photo of a pot plant first"):  # gr.Warning, off a server
        out = fn.fn(reader, None, "baya", "conv3", *DISPLAY, "cam", False)
    assert all(v == gr.skip() for v in out.values()), "nothing explained yet: nothing changes"
    good = fn.fn(reader, str(photos["olive"]), "baya", "conv3", *DISPLAY, "cam", False)
    assert value(good[by_id(demo, "explained-class")]).startswith("### Explaining **baya**")
    with pytest.warns(UserWarning, match="not an image"):
        out = fn.fn(reader, str(notes), "baya", "conv3", *DISPLAY, "cam", False)
    assert set(map(id, out)) <= set(map(id, fn.outputs))
    assert all(v == gr.skip() for k, v in out.items() if k is not image), "the last result stays"
    assert out.get(image, gr.skip()) in (gr.skip(), str(photos["olive"])), "and its photo"


def test_clear_empties_every_output(demo: gr.Blocks) -> None:
    fn = triggered(demo, "input-image", "clear")
    out = fn.fn()
    assert set(map(id, out)) == set(map(id, fn.outputs))
    assert out[by_id(demo, "link-to-view")] == ""
    assert all(v is None for k, v in out.items() if getattr(k, "elem_id", None) != "link-to-view")


def test_a_lesson_link_opens_its_view(demo: gr.Blocks, explorer: Explorer) -> None:
    fn = triggered(demo, None, "load")
    query = {"example": "greg_2", "class": "baya", "layer": "conv2", "tab": "compare", "cmap": "jet", "opacity": "x"}
    out = fn.fn(request(query_params=query))
    shown = {getattr(k, "elem_id", None): value(v) for k, v in out.items()}
    assert shown["input-image"] == str(EXAMPLES / "greg_2.jpg")
    assert (shown["target"], shown["layer"], shown["colormap"]) == ("baya", "conv2", "jet")
    assert shown["url-note"] == "⚠️ Ignored `opacity=x`: use a number from 0 to 1."
    assert shown["explained-class"].startswith("### Explaining **baya** (your choice")
    assert "`greg_2.jpg`, true class **greg**" in shown["explained-class"]
    assert "Grad-CAM at conv2" in shown["compare-numbers"] or "At conv2" in shown["compare-numbers"]
    # No link at all: the default example, explained on arrival.
    shown = {getattr(k, "elem_id", None): value(v) for k, v in fn.fn(request()).items()}
    assert shown["input-image"] == str(explorer.examples.default.path) and shown["url-note"] == ""  # type: ignore[union-attr]
    assert shown["explained-class"].startswith("### Explaining **")


def test_the_link_names_examples_never_uploads(demo: gr.Blocks, photos: dict[str, Path]) -> None:
    fn = handler(demo, "on_link")
    link = fn.fn(request(), str(EXAMPLES / "yuki_1.jpg"), "rudo", "conv1", *DISPLAY, "methods")
    assert link == "http://127.0.0.1:7860/?example=yuki_1&class=rudo&layer=conv1&tab=methods"
    assert fn.fn(request(), str(photos["teal"]), "predicted", "conv3", *DISPLAY, "cam") == "http://127.0.0.1:7860/"
    link = fn.fn(request(), str(EXAMPLES / "yuki_1.jpg"), "predicted", "conv3", 0.25, "jet", "cam")
    assert link == "http://127.0.0.1:7860/?example=yuki_1&opacity=0.25&cmap=jet"


def test_the_reader_s_address_is_its_memory_share(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind the Spaces proxy the reader is the hop the proxy appended (the last); the ones before
    it are whatever the client sent. Off Spaces the header is not trusted at all."""
    forwarded = request(headers={"x-forwarded-for": "203.0.113.66, 198.51.100.4"}, host="10.0.0.1")
    monkeypatch.delenv("SYSTEM", raising=False)
    assert Who.of(forwarded) == Who("s-app", "10.0.0.1")
    monkeypatch.setenv("SYSTEM", "spaces")
    assert Who.of(forwarded) == Who("s-app", "198.51.100.4")


def test_the_cache_cleaner_never_breaks_a_response_being_written(demo: gr.Blocks, explorer: Explorer) -> None:
    """A response's output folder is empty until its first picture is written; the cleaner (every
    10 min; here called directly) removes empty output folders. A response caught in between must
    still write its files."""
    files = explorer.files()  # what a handler does first, before it computes
    app._delete_files_created_by_app(demo, 3600)
    written = files.png(np.zeros((4, 4, 3), np.uint8), "picture")
    assert Path(written).is_file()


# ------------------------------------------------------------------------------------------------ inputs


@pytest.fixture
def image_input(explorer: Explorer) -> app.ImageInput:
    component = app.ImageInput(type="filepath", image_mode=None)
    component.roots = explorer.allowed_roots
    return component


def test_the_image_input_passes_trusted_paths_undecoded(image_input: app.ImageInput) -> None:
    upload = Path(gr.utils.get_upload_folder()) / f"test-junk-{os.getpid()}.jpg"
    upload.write_bytes(b"not an image at all")
    try:
        assert image_input.preprocess(ImageData(path=str(upload))) == str(upload.resolve())
    finally:
        upload.unlink()
    assert image_input.preprocess(ImageData(path=str(EXAMPLES / "rudo_1.jpg"))) == str(
        (EXAMPLES / "rudo_1.jpg").resolve()
    )
    assert image_input.preprocess(None) is None
    assert image_input.get_block_name() == "image", "the front end draws Gradio's own Image"


@pytest.mark.parametrize("path", ["/etc/passwd", "/nonexistent.png", "", "examples/../app.py", "."])
def test_the_image_input_refuses_every_other_path_alike(image_input: app.ImageInput, path: str) -> None:
    with pytest.raises(gr.Error) as info:  # a gr.Error: anything else reaches clients as Gradio's generic error
        image_input.preprocess(ImageData(path=path))
    assert info.value.message == UNTRUSTED_PATH_MESSAGE


def test_the_image_input_refuses_a_link_out_of_the_upload_folder(image_input: app.ImageInput) -> None:
    link = Path(gr.utils.get_upload_folder()) / f"test-link-{os.getpid()}.png"
    link.symlink_to("/etc/hostname")
    try:
        with pytest.raises(gr.Error, match="only reads images it received as uploads"):
            image_input.preprocess(ImageData(path=str(link)))
    finally:
        link.unlink()


def test_the_image_input_writes_data_urls_to_a_file_without_decoding(image_input: app.ImageInput) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    saved = image_input.preprocess(ImageData(url="data:image/png;base64," + base64.b64encode(data).decode()))
    assert saved is not None and Path(saved).read_bytes() == data and saved in image_input.temp_files
    Path(saved).unlink()
    big = "data:image/png;base64," + "A" * (4 * (app.MAX_UPLOAD_MB * 1024 * 1024 // 3) + 8)
    with pytest.raises(gr.Error, match=f"over this app's {app.MAX_UPLOAD_MB} MB limit"):
        image_input.preprocess(ImageData(url=big))
    with pytest.raises(gr.Error, match="not base64-encoded"):
        image_input.preprocess(ImageData(url="data:image/png,rawbytes"))


# ------------------------------------------------------------------------------------------------ errors


def test_refusals_are_shown_and_surprises_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    @app.user_errors
    def refuses() -> None:
        raise CamError("This photo is 30000x20000 pixels, over the limit. Use a smaller one." + "x" * 1000)

    @app.user_errors
    def breaks() -> None:
        raise RuntimeError("secret internal detail " + "y" * 5000)

    @app.user_errors
    def says() -> None:
        raise gr.Error("already a message")

    with pytest.raises(gr.Error) as info:
        refuses()
    assert info.value.message.startswith("This photo is 30000x20000 pixels") and len(info.value.message) == 400
    with caplog.at_level(logging.ERROR, logger="cam.app"), pytest.raises(gr.Error) as info:
        breaks()
    assert info.value.message == app.GENERIC_ERROR and "secret" not in info.value.message
    assert "secret internal detail" in caplog.text and len(caplog.text) < 1000
    with pytest.raises(gr.Error, match="already a message"):
        says()


def test_a_tab_s_select_runs_only_its_own_view(demo: gr.Blocks) -> None:
    """Every event costs the page a round of status updates on every component (and a queued one, a queue
    slot): a tab's select runs that tab's own view and the link, not the other tabs' views."""
    own = {"methods": "methods-gallery", "inside-the-cam": "channels-grid", "trust": "faith-note", "compare": None}
    views = {v for v in own.values() if v}
    for tab_id, output in own.items():
        tab = next(b for b in demo.blocks.values() if isinstance(b, gr.Tab) and b.id == tab_id)
        (select,) = [f for f in demo.fns.values() if (tab._id, "select") in map(tuple, f.targets)]
        after = [f for f in demo.fns.values() if f.trigger_after == select._id]
        shown = {getattr(o, "elem_id", None) for f in after for o in f.outputs} & views
        assert shown == ({output} if output else set()), (tab_id, shown)
        assert any(by_id(demo, "link-to-view") in f.outputs for f in after), "the link follows every tab"
