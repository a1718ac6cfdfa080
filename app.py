"""Pot Plant CAM Explorer: the Gradio app (a Hugging Face Space) over `explorer` and `cam`.

Run it with ``python app.py`` (``CAM_MODEL`` picks the checkpoint: ``auto`` by default, or
``bundled``, ``hub`` or a path). This file is Gradio only: the page's layout, short handlers that
call `explorer` and return ``{component: value}``, and the Gradio work-arounds in one place.
View-model fields (`explorer.explorer`) and components share their names, held in one dict ``c``.
"""

from __future__ import annotations

import os

# Before gradio/huggingface_hub are imported: both read these at import time. Analytics with a
# hanging network keep the process from exiting; telemetry costs seconds per client.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import gradio as gr
import gradio.processing_utils
import gradio.route_utils
import pydantic
from gradio.data_classes import ImageData
from gradio.exceptions import InvalidPathError
from pydantic import ConfigDict

from cam import METHODS, CamError, load_model, render
from cam.methods import display_name
from cam.network import GAP_LAYER
from cam.synthetic import POT_STYLES
from explorer import guard, links, page
from explorer.api import Api
from explorer.banner import banner_html
from explorer.explorer import FAITHFULNESS_DEFAULT, LAYERS, Explorer, Settings, Who
from explorer.methods import methods_references
from explorer.outputs import remove_empty_folders
from explorer.text import prose
from explorer.trusted import UNTRUSTED_PATH_MESSAGE, decode_data_url, trusted_image_path
from explorer.views import ChannelsTab, FaithTab, HideTab, MainView, MethodsTab, PotTab, SanityTab

TITLE = "Pot Plant CAM Explorer"
ROOT = Path(__file__).resolve().parent
MAX_UPLOAD_MB = 10
# Queue: every event that runs the network shares one concurrency group. Measured on 2 vCPUs with
# 8 clients x 6 /explain calls: limit 1 / 2 / 4 gave 2.8-3.2 / 3.8 / 3.6 requests/s, so 2 workers.
CONCURRENCY_ID, CONCURRENCY_LIMIT, QUEUE_MAX_SIZE = "cam-model", 2, 64
DELETE_CACHE = (600, 3600)  # every 10 min delete uploads and outputs older than 1 h
PROGRESS = gr.Progress()  # the default Gradio replaces by each request's own tracker
MODEL: dict[str, Any] = {"concurrency_id": CONCURRENCY_ID, "api_visibility": "private"}
QUICK: dict[str, Any] = {"queue": False, "api_visibility": "private"}  # no network: off the queue
LAST: dict[str, Any] = {"trigger_mode": "always_last", "show_progress": "minimal"}  # sliders, typing
OUT: dict[str, Any] = {"interactive": False}
log = logging.getLogger("cam.app")

# ------------------------------------------------------------------------------------------------
# Gradio 6.31 work-arounds, all here. Drop each once the Gradio version it names is left behind.


def _delete_files_created_by_app(blocks: gr.Blocks, age: int | None) -> None:
    """`gradio.route_utils.delete_files_created_by_app` (6.31) iterates the live sets that request
    threads add to: under load it raises "Set changed size during iteration" and the cleanup task
    dies for good. Same rule over snapshots, and then the emptied output folders go too."""
    keep: set[str] = set()
    for component in blocks.blocks.values():
        keep.update(getattr(component, "keep_in_cache", set()))
    for temp_set in blocks.temp_file_sets:
        removed = set()
        for file in list(temp_set):
            try:
                if file not in keep and (age is None or time.time() - Path(file).lstat().st_ctime > age):
                    os.remove(file)
                    removed.add(file)
            except FileNotFoundError:
                removed.add(file)
        temp_set -= removed
    remove_empty_folders(Path(gr.utils.get_upload_folder()), min_age_s=0 if age is None else 60)


gradio.route_utils.delete_files_created_by_app = _delete_files_created_by_app


# ------------------------------------------------------------------------------------------------
# Gradio 6.31: refusals that Gradio raises itself, before any code of ours runs (issue 10, points 1
# and 8). With show_error=False they reached API clients as {"error": null}, and the queue printed
# each one with traceback.print_exc(), whole inputs included (a 5 MB value made a 5 MB log line).

IMAGE_NOT_A_FILE = (
    'The image must be a file object ({"path": ...} from /gradio_api/upload), not a bare value. '
    "In Python: gradio_client.handle_file(path)."
)
_gradio_check_allowed = gradio.processing_utils._check_allowed
_gradio_validate_inputs = gr.Blocks.validate_inputs


def _check_allowed(path: str | Path, check_in_upload_folder: bool) -> None:
    """A marked payload ({"path": ..., "meta": {"_type": "gradio.FileData"}}) naming a file that was
    not uploaded gets the refusal a bare path gets, word for word (explorer.trusted)."""
    try:
        _gradio_check_allowed(path, check_in_upload_folder)
    except InvalidPathError:
        if not check_in_upload_folder:
            raise  # an output outside the cache is our bug: keep Gradio's message for the log
        raise gr.Error(UNTRUSTED_PATH_MESSAGE, print_exception=False) from None


def _no_download(url: str, cache_dir: str) -> str:
    """A marked payload whose path is an http(s) URL made the server download it: whole, into
    memory (safehttpx reads the body at once, no size cap; huggingface.co skips the IP check). This
    app reads uploads only."""
    raise gr.Error(UNTRUSTED_PATH_MESSAGE, print_exception=False)


async def _no_download_async(url: str, cache_dir: str) -> str:
    return _no_download(url, cache_dir)


def _validate_inputs(self: gr.Blocks, block_fn: Any, inputs: list[Any]) -> None:
    """Too few inputs: Gradio's ValueError quotes every input it got."""
    if len(inputs) < len(block_fn.inputs):
        names = ", ".join(str(getattr(b, "label", None) or type(b).__name__) for b in block_fn.inputs)
        raise gr.Error(
            f"This endpoint takes {len(block_fn.inputs)} inputs ({names}); the request sent "
            f"{len(inputs)}. The API page lists them in order.",
            print_exception=False,
        )
    _gradio_validate_inputs(self, block_fn, inputs)


def _bounded_choices(cls: Any) -> None:
    """A value that is not one of the choices: Gradio quotes it whole, to the client and the log."""
    original = cls.preprocess

    @functools.wraps(original)
    def preprocess(self: Any, payload: Any) -> Any:
        try:
            return original(self, payload)
        except gr.Error:
            shown = str(payload)
            shown = shown if len(shown) <= 40 else shown[:40] + "…"
            raise gr.Error(
                f"{self.label or 'A control'}: {shown!r} is not one of its choices.", print_exception=False
            ) from None

    cls.preprocess = preprocess


gradio.processing_utils._check_allowed = _check_allowed
gradio.processing_utils.ssrf_protected_download = _no_download
gradio.processing_utils.async_ssrf_protected_download = _no_download_async
gr.Blocks.validate_inputs = _validate_inputs  # type: ignore[method-assign]
for _choice in (gr.Dropdown, gr.Radio, gr.CheckboxGroup):
    _bounded_choices(_choice)


class _ImagePayload(ImageData):
    """`ImageData` that says what is wrong when the image is not a file object (a bare string, say):
    Gradio validates the payload before `ImageInput.preprocess` runs."""

    model_config = ConfigDict(title="ImageData")  # the API page and gradio_client read the title

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> _ImagePayload:
        try:
            return super().model_validate(obj, *args, **kwargs)
        except pydantic.ValidationError:
            raise gr.Error(IMAGE_NOT_A_FILE, print_exception=False) from None


class ImageInput(gr.Image):
    """`gr.Image(type="filepath")` that never decodes the image and reads only trusted files.

    Gradio 6.31 checks that a payload's path was uploaded only when it carries the `meta` marker, so
    ``{"path": "/etc/passwd"}`` reached the loader: every path is checked here against the upload and
    example folders. Its own preprocessing also decodes the whole image (no pixel cap) and ``data:``
    URLs fully; here a ``data:`` URL is only base64-decoded, with a size cap, into a file.
    """

    is_template = True  # the front end renders it as the built-in Image component
    data_model = _ImagePayload
    roots: tuple[Path, ...] = ()  # the folders it may read from: set on each instance

    def preprocess(self, payload: ImageData | None) -> str | None:
        try:  # raised here, outside the handlers' user_errors, a CamError reaches clients as null
            return self._preprocess(payload)
        except CamError as exc:
            raise gr.Error(str(exc)[:400], print_exception=False) from None

    def _preprocess(self, payload: ImageData | None) -> str | None:
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):
            data = decode_data_url(payload.url, MAX_UPLOAD_MB * 1024 * 1024)
            target = Path(gr.utils.get_upload_folder()) / f"cam-upload-{os.urandom(8).hex()}"
            target.write_bytes(data)
            self.temp_files.add(str(target))  # delete_cache removes it like an ordinary upload
            return str(target)
        return str(trusted_image_path(str(payload.path or ""), self.roots))


class MaskEditor(gr.ImageEditor):
    """`gr.ImageEditor` with the same path check (the same 6.31 hole); it hands the handler the painted
    layer's file undecoded (`explorer.trust` reads it with a size cap)."""

    is_template = True
    roots: tuple[Path, ...] = ()

    def preprocess(self, payload: Any) -> str | None:  # type: ignore[override]
        layers = [f for f in (payload.layers if payload is not None else []) if f is not None and f.path]
        try:
            return str(trusted_image_path(str(layers[0].path), self.roots)) if layers else None
        except CamError as exc:
            raise gr.Error(str(exc)[:400], print_exception=False) from None


# Gradio 6.31 writes a type stub (app.pyi) beside any module that subclasses a component; type checkers
# then read that stale stub instead of this file. Remove it.
Path(__file__).with_suffix(".pyi").unlink(missing_ok=True)


def trusted(component: Any, ex: Explorer) -> Any:
    component.roots = ex.allowed_roots
    return component


# ------------------------------------------------------------------------------------------------
# Errors: users see our messages, never a traceback.

P = ParamSpec("P")
R = TypeVar("R")
GENERIC_ERROR = "Something went wrong while explaining this image. It has been logged; try again or another photo."


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """`cam` refusals become gr.Error with their own message (cut to 400 characters); anything
    else is logged (bounded: no 20 MB log lines) and becomes a generic gr.Error."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except CamError as exc:
            raise gr.Error(str(exc)[:400], print_exception=False) from None
        except Exception as exc:
            log.error("Unexpected error in %s: %s: %.300s", fn.__name__, type(exc).__name__, exc)
            raise gr.Error(GENERIC_ERROR, print_exception=False) from None

    return wrapper


def who(request: gr.Request) -> Who:
    """The session, and the client address its memory share is charged to: behind the Spaces proxy,
    the X-Forwarded-For hop the proxy appended (the last; a client can forge the ones before it)."""
    forwarded = request.headers.get("x-forwarded-for", "") if os.environ.get("SYSTEM") == "spaces" else ""
    client = forwarded.split(",")[-1].strip() or (request.client.host if request.client else "unknown")
    return Who(session=request.session_hash or "no-session", client=client)


def skip(outputs: list[Any]) -> dict[Any, Any]:
    """Leave every output as it is (nothing to show yet, or another tab is open)."""
    return {o: gr.skip() for o in outputs}


def keep_on_error(outputs: list[Any], fn: Callable[..., dict[Any, Any]]) -> Callable[..., dict[Any, Any]]:
    """A page event whose refusal leaves the last good result on screen and says why in a toast
    (a raised gr.Error would replace every output with an "Error" pill)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> dict[Any, Any]:
        try:
            return fn(*args, **kwargs)
        except gr.Error as exc:
            gr.Warning(str(exc.message), duration=10)
            return skip(outputs)

    return run


# ------------------------------------------------------------------------------------------------
# The page: one function per part, components registered in ``c`` by view-model field name.


def controls(c: dict[str, Any], ex: Explorer) -> None:
    kw: dict[str, Any] = {"label": "Photo of a pot plant", "sources": ["upload", "clipboard", "webcam"], "height": 300}
    c["image"] = trusted(ImageInput(type="filepath", image_mode=None, format="jpeg", elem_id="input-image", **kw), ex)
    c["examples_slot"] = gr.Column()
    classes = [("Predicted class", "predicted"), *[(n, n) for n in ex.class_names]]
    c["target"] = gr.Dropdown(classes, value="predicted", label="Class to explain", elem_id="target")
    info = "conv3 feeds global average pooling: the CAM layer."
    c["layer"] = gr.Radio(list(LAYERS), value=GAP_LAYER, label="Grad-CAM layer", elem_id="layer", info=info)
    cmaps = [(render.COLORMAP_LABELS[k], k) for k in render.COLORMAPS]
    c["colormap"] = gr.Dropdown(cmaps, value=render.DEFAULT_COLORMAP, label="Colour map", elem_id="colormap")
    c["opacity"] = gr.Slider(0, 1, value=Settings().opacity, step=0.05, label="Overlay opacity", elem_id="opacity")
    c["explain"] = gr.Button("Explain", variant="primary", elem_id="explain")
    with gr.Row(elem_id="link-row"):
        c["link"] = gr.Textbox(label="Link to this view", elem_id="link-to-view", buttons=["copy"], **OUT)
        gr.Markdown(links.UPLOAD_NOTE, elem_id="link-note")


KINDS: dict[str, Callable[..., Any]] = {
    "markdown": gr.Markdown, "html": gr.HTML, "label": gr.Label, "image": gr.Image, "image_slider": gr.ImageSlider,
    "gallery": gr.Gallery, "download": gr.DownloadButton, "line_plot": gr.LinePlot, "scatter_plot": gr.ScatterPlot,
    "bar_plot": gr.BarPlot,
}  # fmt: skip


def put(c: dict[str, Any], *names: str) -> None:
    """The output components ``names``, as `explorer.page` describes them, registered in ``c``."""
    for name in names:
        kind, kw = page.spec(name)
        c[name] = KINDS[kind](**kw)


def map_tab(c: dict[str, Any], ex: Explorer, method: str) -> None:
    """The CAM and Grad-CAM tabs: photo-vs-overlay slider with its legend, and the raw signed map."""
    gr.Markdown(prose(f"{method}_tab"), elem_classes="tab-intro")
    put(c, f"{method}_note", f"{method}_slider", f"{method}_legend", f"{method}_heatmap")


def inside_tab(c: dict[str, Any], ex: Explorer) -> None:
    gr.Markdown(prose("inside_tab"), elem_classes="tab-intro")
    with gr.Row():
        shown = [("Top N", "top"), ("Bottom N (against the class)", "bottom"), ("All", "all")]
        c["show"] = gr.Radio(shown, value="top", label="Channels", elem_id="channels-show")
        c["n"] = gr.Slider(1, 64, value=12, step=1, label="N", elem_id="channels-n")
    put(c, "channels_grid")
    c["k"] = gr.Slider(1, 64, value=8, step=1, label="Use the top k channels", elem_id="channels-sum-k")
    with gr.Row():
        put(c, "channels_sum_image", "channels_sum_numbers")
    put(c, "channels_proof_plot", "channels_proof_md")
    with gr.Row():
        put(c, "channels_pixel_image")
        with gr.Column(min_width=260):
            put(c, "channels_pixel_md", "channels_pixel_plot")


def compare_tab(c: dict[str, Any], ex: Explorer) -> None:
    put(c, "compare_image", "compare_md")
    with gr.Row():
        put(c, "compare_png", "cam_npy", "gradcam_npy")


def classes_tab(c: dict[str, Any], ex: Explorer) -> None:
    gr.Markdown(prose("all_classes_tab"), elem_classes="tab-intro")
    c["shared"] = gr.Checkbox(label="One colour scale for all four classes", elem_id="shared-scale")
    with gr.Column(elem_id="all-classes"):
        for row in range(0, len(ex.class_names), 2):  # two by two, at every width
            with gr.Row():
                for i, n in list(enumerate(ex.class_names))[row : row + 2]:
                    c[f"class_{i}"] = gr.Image(label=n, format="jpeg", elem_id=f"class-{n}", min_width=120, **OUT)


def methods_tab(c: dict[str, Any], ex: Explorer) -> None:
    gr.Markdown(prose("methods_tab", gap_layer=GAP_LAYER, channels="16, 32 or 64 passes"), elem_classes="tab-intro")
    put(c, "methods_gallery")
    c["scorecam"] = gr.Button("Compute Score-CAM", elem_id="compute-scorecam", size="sm")
    put(c, "methods_md", "methods_matrix")
    gr.Markdown(methods_references())


def trust_tab(c: dict[str, Any], ex: Explorer) -> None:
    gr.Markdown(prose("trust_tab"), elem_classes="tab-intro")
    with gr.Accordion("1. Sanity check: randomise the model, layer by layer", elem_id="trust-sanity"):
        cheap = [(display_name(m), m) for m, spec in METHODS.items() if not spec.needs_model]
        c["sanity_methods"] = gr.CheckboxGroup(cheap, value=["cam", "gradcam"], label="Methods")
        c["sanity"] = gr.Button("Run the sanity check", elem_id="trust-sanity-run", size="sm")
        put(c, "trust_sanity_md", "trust_sanity_plot", "trust_sanity_image", "trust_other_image")
    with gr.Accordion("2. Hide and see: paint over a region", elem_id="trust-hide"), gr.Row():
        brush = gr.Brush(colors=["#ff00ff"], color_mode="fixed", default_size=24)
        kw: dict[str, Any] = {"sources": [], "transforms": [], "layers": False, "height": 360, "brush": brush}
        c["trust_editor"] = trusted(
            MaskEditor(type="filepath", label="Paint what to hide", elem_id="trust-editor", **kw), ex
        )
        with gr.Column(min_width=220):
            put(c, "trust_hidden_image", "trust_hide_md")
    with gr.Accordion("3. The pot shortcut (example scenes)", elem_id="trust-pot", open=False):
        with gr.Row():
            pots = [(f"{n}'s pot ({style})", n) for n, style in zip(ex.class_names, POT_STYLES, strict=True)]
            c["pot"] = gr.Dropdown(pots, value=ex.class_names[2], label="Redraw in", elem_id="trust-pot-choice")
            c["pot_run"] = gr.Button("Redraw the scene in this pot", elem_id="trust-pot-run", size="sm")
        put(c, "trust_pot_image", "trust_pot_md")
    with gr.Accordion("4. Faithfulness: deletion and insertion", elem_id="trust-faith", open=False):
        gr.Markdown(prose("faithfulness", passes_per_map=ex.faithfulness_passes(1) - 3))
        with gr.Row(equal_height=True):
            label, every = "Maps to evaluate (the random map is always added)", [(display_name(m), m) for m in METHODS]
            c["faith_methods"] = gr.CheckboxGroup(
                every, value=list(FAITHFULNESS_DEFAULT), label=label, elem_id="faith-methods"
            )
            with gr.Column(min_width=160, scale=0):
                c["faith_run"] = gr.Button("Compute faithfulness", variant="primary", elem_id="compute-faith")
                c["faith_cancel"] = gr.Button("Cancel", elem_id="cancel-faith", size="sm")
        put(c, "faith_note")
        with gr.Row():
            put(c, "faith_deletion", "faith_insertion")
        put(c, "faith_table")


TABS: tuple[tuple[str, Callable[[dict[str, Any], Explorer], Any]], ...] = (
    ("CAM", functools.partial(map_tab, method="cam")),
    ("Inside the CAM", inside_tab),
    ("Grad-CAM", functools.partial(map_tab, method="gradcam")),
    ("Compare", compare_tab),
    ("All classes", classes_tab),
    ("Methods", methods_tab),
    ("Trust", trust_tab),
    ("About", lambda c, ex: gr.Markdown(prose("about"), elem_id="about")),
)
assert [links.TAB_IDS[i] for i in range(len(TABS))] == [n.lower().replace(" ", "-") for n, _ in TABS]


def layout(ex: Explorer) -> dict[str, Any]:
    c: dict[str, Any] = {}
    gr.Markdown(prose("intro"), elem_id="intro")
    gr.HTML(banner_html(ex.model.provenance), elem_id="provenance")
    put(c, "url_note")
    c["tab"], c["pixel"] = gr.State("cam"), gr.State(None)  # the open tab; the pixel clicked inside the CAM
    with gr.Row(equal_height=False, elem_id="main-row"):
        with gr.Column(scale=2, min_width=300, elem_id="controls"):
            controls(c, ex)
        with gr.Column(scale=3, min_width=320, elem_id="results"):
            put(c, "heading", "caveat", "prediction")
            with gr.Tabs(elem_id="tabs", overflow_behavior="wrap") as c["tabs"]:
                for (name, build), tab_id in zip(TABS, links.TAB_IDS, strict=True):
                    with gr.Tab(name, id=tab_id) as c[f"tab_{tab_id}"]:
                        build(c, ex)
    with gr.Column(visible=False):  # a trivial event: the browser benchmarks' baseline
        echo_in, echo_out, echo = (
            gr.Textbox(elem_id="echo-in"),
            gr.Textbox(elem_id="echo-out"),
            gr.Button(elem_id="echo-btn"),
        )
    echo.click(lambda s: s, echo_in, echo_out, **QUICK)
    return c


# ------------------------------------------------------------------------------------------------
# Events: handlers are short adapters from the controls to `Explorer` and back, by name.


def build_demo(ex: Explorer) -> gr.Blocks:
    with gr.Blocks(title=TITLE, delete_cache=DELETE_CACHE) as demo:
        c = layout(ex)
        names = ex.class_names

        def outs(view_model: type) -> list[Any]:
            """The components a view-model fills: its fields, by name (class tiles: one image each)."""
            named = [c[f.name] for f in fields(view_model) if f.name in c]
            return named + [c[f"class_{i}"] for i in range(len(names))] * (view_model is MainView)

        def values(view: Any) -> dict[Any, Any]:
            """A view-model's fields -> {component: value}; its pictures per class get their captions."""
            out = {c[f.name]: getattr(view, f.name) for f in fields(view) if f.name in c}
            for i, (file, caption) in enumerate(getattr(view, "class_tiles", ())):
                out[c[f"class_{i}"]] = gr.update(value=file, label=caption)
            if (proof := getattr(view, "channels_proof_plot", None)) is not None:
                out[c["channels_proof_plot"]] = gr.update(value=proof, x_title=proof.attrs["x_title"])
            return out

        base = [c[k] for k in ("image", "target", "layer", "opacity", "colormap", "tab")]
        main_out, methods_out, faith_out, channels_out = (
            outs(MainView),
            outs(MethodsTab),
            outs(FaithTab),
            outs(ChannelsTab),
        )
        image_out = [*main_out, c["trust_editor"]]  # a new image also clears the hide-and-see painting

        def tab_event(view: Callable[..., Any], outputs: list[Any], tab: str | None = None) -> Callable[..., Any]:
            """(request, *base controls, *extra) -> ``view(who, image, settings, *extra)``, by name. Skipped
            without an image, or when ``tab`` is given and another tab is open."""

            @user_errors
            def run(request: gr.Request, image: str | None, target: str, layer: str, opacity: float, cmap: str,
                    open_tab: str, *extra: Any) -> dict[Any, Any]:  # fmt: skip
                if not image or (tab is not None and open_tab != tab):
                    return skip(outputs)
                return values(view(who(request), image, Settings(target, layer, opacity, cmap), *extra))

            return run

        @user_errors
        def on_explain(request: gr.Request, image: str | None, target: str, layer: str, opacity: float, cmap: str,
                       open_tab: str, shared: bool, new_image: bool = True) -> dict[Any, Any]:  # fmt: skip
            if not image:
                if new_image:
                    raise gr.Error("Upload a photo of a pot plant first (or pick an example).")
                return skip(main_out)
            view = ex.main_view(who(request), image, Settings(target, layer, opacity, cmap, shared))
            editor: dict[Any, Any] = {c["trust_editor"]: {"background": view.photo, "layers": [], "composite": None}}
            return values(view) | (editor if new_image else {})

        def on_settings(request: gr.Request, *args: Any) -> dict[Any, Any]:
            return on_explain(request, *args, new_image=False)  # type: ignore[misc]  # the painting stays

        def with_progress(view: Callable[..., Any], outputs: list[Any], what: str) -> Callable[..., Any]:
            """`view` with a progress bar; the Cancel button stops it between forward passes."""

            def run(request: gr.Request, progress: gr.Progress = PROGRESS, *args: Any) -> dict[Any, Any]:
                def report(done: int, total: int) -> None:
                    progress((done, total), desc=what, unit="forward passes")

                return tab_event(functools.partial(view, progress=report), outputs)(request, *args)

            return run

        def on_link(request: gr.Request, image: str | None, target: str, layer: str, opacity: float, cmap: str,
                    tab: str) -> str:  # fmt: skip
            state = links.LinkState(ex.example_of(image) if image else None, target, layer, tab, opacity, cmap)
            return links.view_link(links.base_url(request.headers, getattr(request.request, "url", None)), state)

        def on_cancel(request: gr.Request) -> None:
            ex.cancel(who(request))

        def on_pixel(evt: gr.SelectData) -> tuple[int, int]:
            return int(evt.index[0]) // 2, int(evt.index[1]) // 2  # pixels of the 2x picture -> model input

        def on_clear() -> dict[Any, Any]:
            return {o: None for o in [*main_out, *methods_out, *faith_out, *channels_out]} | {c["link"]: ""}

        methods = tab_event(ex.methods_tab, methods_out, "methods")
        channels = tab_event(ex.channels_tab, channels_out, "inside-the-cam")
        channels_in = [*base, c["show"], c["n"], c["k"], c["pixel"]]
        faith_view = tab_event(functools.partial(ex.faith_tab, compute=False), faith_out)
        faith_in = [*base, c["faith_methods"]]

        def follow(event: Any) -> None:
            """After the main outputs: the open tab's extra views and the link follow."""
            event.success(methods, base, methods_out, show_progress="minimal", **MODEL)
            event.success(channels, channels_in, channels_out, show_progress="minimal", **MODEL)
            event.success(faith_view, faith_in, faith_out, show_progress="hidden", **QUICK)
            link = event.success(on_link, base, c["link"], **QUICK)
            link.then(None, c["link"], None, js=links.POST_TO_PARENT_JS, **QUICK)  # a Space's address bar too

        def on_image(request: gr.Request, *args: Any) -> dict[Any, Any]:
            """A refused upload keeps the last good result and photo on screen, and says why in a toast."""
            reader = who(request)
            try:
                out = on_explain(request, *args)
            except gr.Error as exc:
                gr.Warning(str(exc.message), duration=10)
                last = ex.store.get(reader.session, "last-image")
                return skip(image_out) | ({c["image"]: last} if last else {})
            ex.store.put(reader.session, reader.client, "last-image", args[0])
            return out

        explain_in = [*base, c["shared"]]
        follow(c["explain"].click(on_image, explain_in, [*image_out, c["image"]], **MODEL))
        follow(c["image"].upload(on_image, explain_in, [*image_out, c["image"]], **MODEL))
        for control in (c["target"], c["layer"], c["colormap"], c["shared"], c["opacity"]):
            follow(control.input(keep_on_error(main_out, on_settings), explain_in, main_out, **LAST, **MODEL))
        c["image"].clear(on_clear, None, [*main_out, *methods_out, *faith_out, *channels_out, c["link"]], **QUICK)
        for control in (c["show"], c["n"], c["k"]):
            control.input(channels, channels_in, channels_out, **LAST, **MODEL)
        pixel = c["channels_pixel_image"].select(on_pixel, None, c["pixel"], **QUICK)
        pixel.then(channels, channels_in, channels_out, **MODEL)
        for tab_id in links.TAB_IDS:
            opened = c[f"tab_{tab_id}"].select(lambda t=tab_id: t, None, c["tab"], **QUICK)
            follow(opened)
        scorecam = with_progress(functools.partial(ex.methods_tab, with_scorecam=True), methods_out, "Score-CAM")
        c["scorecam"].click(scorecam, base, methods_out, show_progress_on=c["methods_gallery"], **MODEL)
        faith = with_progress(functools.partial(ex.faith_tab, compute=True), faith_out, "Faithfulness curves")
        running = c["faith_run"].click(faith, faith_in, faith_out, show_progress_on=c["faith_note"], **MODEL)
        c["faith_cancel"].click(on_cancel, None, None, cancels=[running], **QUICK)
        c["faith_methods"].change(faith_view, faith_in, faith_out, show_progress="hidden", **QUICK)
        sanity_out, hide_out, pot_out = outs(SanityTab), outs(HideTab), outs(PotTab)
        c["sanity"].click(tab_event(ex.sanity_tab, sanity_out), [*base, c["sanity_methods"]], sanity_out, **MODEL)
        c["trust_editor"].input(tab_event(ex.hide_tab, hide_out), [*base, c["trust_editor"]], hide_out, **LAST, **MODEL)
        c["pot_run"].click(tab_event(ex.pot_tab, pot_out), [*base, c["pot"]], pot_out, **MODEL)

        if len(ex.examples):
            with c["examples_slot"]:
                label = "Examples: synthetic pot plants drawn by cam.synthetic (click one)"
                shown = gr.Examples([[str(e.path)] for e in ex.examples], inputs=[c["image"]], label=label,
                                    examples_per_page=12, api_visibility="private")  # fmt: skip
            follow(shown.load_input_event.then(on_explain, explain_in, image_out, **MODEL))

        @user_errors
        def on_load(request: gr.Request) -> dict[Any, Any]:
            """Lesson links: the page's state from the URL; the default example when there is none."""
            query = dict(request.query_params)
            state, notes = links.parse(query, ex.examples.stems, names, LAYERS, list(render.COLORMAPS), links.TAB_IDS)
            example = ex.examples.by_stem(state.example or "") or ex.examples.default
            out: dict[Any, Any] = {c["url_note"]: "\n\n".join(notes), c["tab"]: state.tab}
            if example is None:
                return out
            path, s = str(example.path), Settings(state.target, state.layer, state.opacity, state.colormap)
            out |= {c["image"]: path, c["target"]: s.target, c["layer"]: s.layer, c["opacity"]: s.opacity,
                    c["colormap"]: s.colormap, c["tabs"]: gr.Tabs(selected=state.tab)}  # fmt: skip
            return out | on_explain(request, path, s.target, s.layer, s.opacity, s.colormap, state.tab, False)

        load_out = [c[k] for k in ("url_note", "tab", "image", "target", "layer", "opacity", "colormap", "tabs")]
        follow(demo.load(on_load, None, [*load_out, *image_out], **MODEL))
        api(ex)
    return demo


def api(ex: Explorer) -> None:
    """The public endpoints (also MCP tools), on hidden components; docstrings in `explorer.api`."""
    endpoints = Api(ex)
    with gr.Column(visible=False):
        image, mask = (trusted(ImageInput(type="filepath", image_mode=None, label=n), ex) for n in ("image", "mask"))
        target, method, layer = (
            gr.Textbox("predicted", label="target"),
            gr.Textbox("cam", label="method"),
            gr.Textbox(GAP_LAYER, label="layer"),
        )
        x, y = gr.Number(-1, precision=0, label="x"), gr.Number(-1, precision=0, label="y")
        picture, numbers, raw = gr.Image(label="picture", format="jpeg"), gr.JSON(label="json"), gr.File(label="map")
        hidden = gr.Image(label="hidden", format="png")
    for fn, inputs, outputs in (
        (endpoints.explain, [image, target, method, layer], [picture, numbers, raw]),
        (endpoints.channels, [image, target, layer, x, y], [numbers]),
        (endpoints.sanity, [image, target, method, layer], [numbers]),
        (endpoints.hide, [image, target, mask], [hidden, numbers]),
    ):
        gr.Button(visible=False).click(
            user_errors(fn), inputs, outputs, api_name=fn.__name__, concurrency_id=CONCURRENCY_ID
        )


CSS = (ROOT / "explorer" / "text" / "page.css").read_text(encoding="utf-8")


class LaunchKwargs(Mapping[str, Any]):
    """`demo.launch(**LAUNCH_KWARGS)`. A Mapping, not a dict, so each launch gets fresh `app_kwargs`:
    Gradio 6.31 writes its lifespan handler into that dict, and a second launch would nest the first's."""

    def _fresh(self) -> dict[str, Any]:
        return {
            "max_file_size": f"{MAX_UPLOAD_MB}mb",
            "show_error": False,  # gr.Error messages still reach users; internal errors stay in the log
            "ssr_mode": False,  # with SSR, Node workers would serve uploads past the body limits
            "theme": gr.themes.Soft(),
            "css": CSS,
            "js": links.EMBED_JS,
            "mcp_server": True,  # the endpoints as MCP tools at /gradio_api/mcp/ (needs the `mcp` package)
            "app_kwargs": {"middleware": guard.middleware()},  # request-body limits (explorer/guard.py)
        }

    def __getitem__(self, key: str) -> Any:
        return self._fresh()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fresh())

    def __len__(self) -> int:
        return len(self._fresh())


LAUNCH_KWARGS = LaunchKwargs()


def make_explorer() -> Explorer:
    ex = Explorer(load_model(), ROOT / "examples", Path(gr.utils.get_upload_folder()))
    ex.warm()  # the first page shows the default example explained, from this cache
    return ex


demo = build_demo(make_explorer())
demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=CONCURRENCY_LIMIT, api_open=False)

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    demo.launch(**LAUNCH_KWARGS)
