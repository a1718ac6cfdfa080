"""Pot Plant CAM Explorer, the Gradio app (a Hugging Face Space): ``python app.py`` (``CAM_MODEL``: ``auto``,
``bundled``, ``hub`` or a path). It builds the page `explorer.page` describes, components named in one
dict ``c`` as the view-models' fields are; short handlers call `explorer` and return ``{component: value}``."""

from __future__ import annotations

import os

# Before gradio/huggingface_hub are imported: both read these at import time. Analytics with a
# hanging network keep the process from exiting; telemetry costs seconds per client.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Gradio 6.31 rebuilds a pandas summary of the last 10,000 events after every event (10-21 ms of CPU).
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000000")

import copy
import functools
import logging
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import gradio as gr
import gradio.processing_utils
import gradio.route_utils
import pydantic
from gradio.data_classes import ImageData
from gradio.exceptions import InvalidPathError

from cam import CamError, load_model
from explorer import guard, links, maps, memory, page, views
from explorer.api import Api
from explorer.explorer import Explorer, Settings, Who
from explorer.outputs import delete_old_files
from explorer.trusted import IMAGE_NOT_A_FILE, UNTRUSTED_PATH_MESSAGE, save_data_url, trusted_image_path

TITLE = "Pot Plant CAM Explorer"
ROOT = Path(__file__).resolve().parent
MAX_UPLOAD_MB = 10
# Queue: every event that runs the network shares one concurrency group. Measured on 2 vCPUs with
# 8 clients x 6 /explain calls: limit 1 / 2 / 4 gave 2.8-3.2 / 3.8 / 3.6 requests/s, so 2 workers.
CONCURRENCY_ID, CONCURRENCY_LIMIT, QUEUE_MAX_SIZE = "cam-model", 2, 64
DELETE_CACHE = (600, 3600)  # every 10 min delete uploads and outputs older than 1 h
STATE_SESSIONS = 100  # Gradio's copy of the page's config per session: 0.26 MB, 10,000 kept, closed or not
PROGRESS = gr.Progress()  # the default Gradio replaces by each request's own tracker
MODEL: dict[str, Any] = {"concurrency_id": CONCURRENCY_ID, "api_visibility": "private"}
QUICK: dict[str, Any] = {"queue": False, "api_visibility": "private"}  # no network: off the queue
PUBLIC: dict[str, Any] = {"concurrency_id": CONCURRENCY_ID}  # the API endpoints (and MCP tools)
LAST: dict[str, Any] = {"trigger_mode": "always_last", "show_progress": "minimal"}  # sliders, typing
CSS = (ROOT / "explorer" / "text" / "page.css").read_text(encoding="utf-8")
log = logging.getLogger("cam.app")

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


# Gradio 6.31 work-arounds, all here. Drop each once the Gradio version it names is left behind.


def _delete_files_created_by_app(blocks: gr.Blocks, age: int | None) -> None:
    """`gradio.route_utils.delete_files_created_by_app` (6.31) iterates the live sets that request
    threads add to: under load it raises "Set changed size during iteration" and the cleanup task
    dies for good. Same rule over snapshots (`explorer.outputs`), then the emptied folders go too."""
    keep = {f for component in blocks.blocks.values() for f in getattr(component, "keep_in_cache", ())}
    delete_old_files(blocks.temp_file_sets, keep, age, Path(gr.utils.get_upload_folder()))


# Refusals Gradio 6.31 raises itself, before any code of ours runs (issue 10, points 1 and 8): with
# show_error=False they reached API clients as {"error": null}, and the queue printed each one with
# traceback.print_exc(), whole inputs included (a 5 MB value made a 5 MB log line).
_gradio_check_allowed = gradio.processing_utils._check_allowed
_gradio_validate_inputs = gr.Blocks.validate_inputs
_gradio_postprocess_data = gr.Blocks.postprocess_data
SKIP = gr.skip()


def _check_allowed(path: str | Path, check_in_upload_folder: bool) -> None:
    """A marked payload ({"path", "meta"}) naming a file not uploaded: a bare path's refusal, word for word."""
    try:
        _gradio_check_allowed(path, check_in_upload_folder)
    except InvalidPathError:
        if not check_in_upload_folder:
            raise  # an output outside the cache is our bug: keep Gradio's message for the log
        raise gr.Error(UNTRUSTED_PATH_MESSAGE, print_exception=False) from None


def _no_download(url: str, cache_dir: str) -> str:
    """A marked payload whose path is an http(s) URL made the server download it, whole, into memory
    (safehttpx has no size cap; huggingface.co skips the IP check). This app reads uploads only."""
    raise gr.Error(UNTRUSTED_PATH_MESSAGE, print_exception=False)


async def _no_download_async(url: str, cache_dir: str) -> str:
    return _no_download(url, cache_dir)


def _validate_inputs(self: gr.Blocks, block_fn: Any, inputs: list[Any]) -> None:
    """Too few inputs: Gradio's ValueError quotes every input it got."""
    if len(inputs) < len(block_fn.inputs):
        names = ", ".join(str(getattr(b, "label", None) or type(b).__name__) for b in block_fn.inputs)
        message = f"This endpoint takes {len(block_fn.inputs)} inputs ({names}); the request sent {len(inputs)}."
        raise gr.Error(message + " The API page lists them in order.", print_exception=False)
    _gradio_validate_inputs(self, block_fn, inputs)


def _bounded_choices(cls: Any) -> None:
    """A value that is not one of the choices: Gradio quotes it whole, to the client and the log."""
    original = cls.preprocess

    @functools.wraps(original)
    def preprocess(self: Any, payload: Any) -> Any:
        try:
            return original(self, payload)
        except gr.Error:
            shown = str(payload) if len(str(payload)) <= 40 else str(payload)[:40] + "…"
            message = f"{self.label or 'A control'}: {shown!r} is not one of its choices."
            raise gr.Error(message, print_exception=False) from None

    cls.preprocess = preprocess


async def _postprocess_data(self: gr.Blocks, block_fn: Any, predictions: Any, state: Any) -> list[Any]:
    """Gradio rebuilt every output left unchanged (gr.skip(), or missing from a returned dict) from its
    constructor arguments and kept the copy in the session state (~100 components a session, and CPU on
    every event). Unchanged outputs now pass by; a handler of several outputs returns ``{}`` to leave them
    all as they are (for one output, ``{}`` stays a value: a JSON component's empty dict)."""
    outputs, preds = list(block_fn.outputs), predictions
    if isinstance(preds, dict) and (preds or len(outputs) > 1) and all(isinstance(k, gr.blocks.Block) for k in preds):
        by_id = {k._id: v for k, v in preds.items()}
        preds = [by_id.get(o._id, SKIP) for o in outputs]
    elif len(outputs) == 1:
        preds = [preds]
    listed = isinstance(preds, list | tuple) and len(preds) == len(outputs) and not block_fn.batch
    same = {i for i, p in enumerate(preds) if isinstance(p, dict) and p == SKIP} if listed else set()
    if not same:
        return await _gradio_postprocess_data(self, block_fn, predictions, state)
    reduced = copy.copy(block_fn)
    reduced.outputs = [o for i, o in enumerate(outputs) if i not in same]
    kept = [p for i, p in enumerate(preds) if i not in same]
    done = iter(
        await _gradio_postprocess_data(self, reduced, kept[0] if len(kept) == 1 else kept, state) if kept else []
    )
    return [dict(SKIP) if i in same else next(done) for i in range(len(outputs))]


gradio.route_utils.delete_files_created_by_app = _delete_files_created_by_app
gr.Blocks.postprocess_data = _postprocess_data  # type: ignore[method-assign]
gradio.processing_utils._check_allowed = _check_allowed
gradio.processing_utils.ssrf_protected_download = _no_download
gradio.processing_utils.async_ssrf_protected_download = _no_download_async
gr.Blocks.validate_inputs = _validate_inputs  # type: ignore[method-assign]
for _choice in (gr.Dropdown, gr.Radio, gr.CheckboxGroup):
    _bounded_choices(_choice)


class _ImagePayload(ImageData):
    """`ImageData` that says what is wrong when the image is not a file object (a bare string, say):
    Gradio validates the payload before `ImageInput.preprocess` runs."""

    model_config = pydantic.ConfigDict(title="ImageData")  # the API page and gradio_client read the title

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> _ImagePayload:
        try:
            return super().model_validate(obj, *args, **kwargs)
        except pydantic.ValidationError:
            raise gr.Error(IMAGE_NOT_A_FILE, print_exception=False) from None


class ImageInput(gr.Image):
    """`gr.Image(type="filepath")` that never decodes the image and reads only trusted files.

    Gradio 6.31 checks that a path was uploaded only when the payload carries the `meta` marker, so
    ``{"path": "/etc/passwd"}`` reached the loader; its preprocessing also decodes whole images (no
    pixel cap) and ``data:`` URLs. Here every path is checked against the upload and example folders,
    a ``data:`` URL is saved undecoded (size-capped), and errors go through `user_errors`."""

    is_template = True  # the front end renders it as the built-in Image component
    data_model = _ImagePayload
    # The folders it may read from, set by `build` on the instance and the class: on a prop update (an
    # example clicked, say) Gradio rebuilds the component from its constructor arguments alone.
    roots: tuple[Path, ...] = ()

    @user_errors
    def preprocess(self, payload: ImageData | None) -> str | None:
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):
            target = str(save_data_url(payload.url, Path(gr.utils.get_upload_folder()), MAX_UPLOAD_MB * 1024 * 1024))
            self.temp_files.add(target)  # delete_cache removes it like an ordinary upload
            return target
        return str(trusted_image_path(str(payload.path or ""), self.roots))


class MaskEditor(gr.ImageEditor):
    """`gr.ImageEditor` with the same path check (the same 6.31 hole); it hands the handler the painted
    layer's file undecoded (`explorer.trust` reads it with a size cap)."""

    is_template = True
    roots: tuple[Path, ...] = ()

    @user_errors
    def preprocess(self, payload: Any) -> str | None:  # type: ignore[override]
        layers = [f for f in (payload.layers if payload is not None else []) if f is not None and f.path]
        return str(trusted_image_path(str(layers[0].path), self.roots)) if layers else None


# Gradio 6.31 writes a type stub (app.pyi) beside any module that subclasses a component; type checkers
# then read that stale stub instead of this file. Remove it.
Path(__file__).with_suffix(".pyi").unlink(missing_ok=True)


def launch_kwargs() -> dict[str, Any]:
    """Fresh for each launch: Gradio 6.31 writes its lifespan handler into `app_kwargs`, so a reused dict nests."""
    return {
        "max_file_size": f"{MAX_UPLOAD_MB}mb",
        "show_error": False,  # gr.Error messages still reach users; internal errors stay in the log
        "ssr_mode": False,  # with SSR, Node workers would serve uploads past the body limits
        "theme": gr.themes.Soft(),
        "css": CSS,
        "js": page.load_js(),  # the embed layout, accessible names, the overlays' redraw (explorer/page.py)
        "state_session_capacity": STATE_SESSIONS,
        "mcp_server": True,  # the endpoints as MCP tools at /gradio_api/mcp/ (needs the `mcp` package)
        "app_kwargs": {"middleware": guard.middleware()},  # request-body limits (explorer/guard.py)
    }


# The page: `explorer.page` describes it as data; each part becomes the component of its kind.

CONTAINERS = {"row", "column", "tabs", "tab", "accordion"}
OURS: dict[str, Callable[..., Any]] = {
    "image_input": ImageInput, "mask_editor": lambda brush, **kw: MaskEditor(brush=gr.Brush(**brush), **kw)
}  # fmt: skip


def build(parts: tuple[page.Part, ...], c: dict[str, Any], ex: Explorer) -> dict[str, Any]:
    """Make ``parts`` inside the current Blocks context; named ones are registered in ``c``. A kind is
    one of `OURS`, else the name of a Gradio class in snake case (``image_slider``: gr.ImageSlider)."""
    for part in parts:
        make = OURS.get(part.kind) or getattr(gr, "HTML" if part.kind == "html" else part.kind.title().replace("_", ""))
        if part.kind in CONTAINERS:
            with make(**part.kw) as block:
                build(part.parts, c, ex)
        else:
            block = make(**part.kw)
            if isinstance(block, ImageInput | MaskEditor):  # the class too: Gradio rebuilds copies of it
                block.roots = type(block).roots = ex.allowed_roots
        if part.name:
            c[part.name] = block
    return c


# Events: handlers are short adapters from the controls to `Explorer` and back, by name.


def build_demo(ex: Explorer) -> gr.Blocks:
    with gr.Blocks(title=TITLE, delete_cache=DELETE_CACHE) as demo:
        c = build(page.layout(ex), {}, ex)
        c["echo"].click(lambda s: s, c["echo_in"], c["echo_out"], **QUICK)  # the browser benchmarks' baseline

        def outs(view_model: type) -> list[Any]:
            """The components a view-model fills: its fields, by name (class tiles: one image each)."""
            named = [c[f.name] for f in fields(view_model) if f.name in c]
            return named + [c[f"class_{i}"] for i in range(len(ex.class_names))] * (view_model is views.MainView)

        def values(view: Any) -> dict[Any, Any]:
            """A view-model's fields -> {component: value}, and the properties `views.updates` changes too."""
            named = view if isinstance(view, dict) else vars(view)
            out = {c[name]: value for name, value in named.items() if name in c}
            return out | {c[name]: gr.update(**props) for name, props in views.updates(named).items()}

        base = [c[k] for k in ("image", "target", "layer", "opacity", "colormap", "tab")]
        main_out, methods_out = outs(views.MainView), outs(views.MethodsTab)
        faith_out, channels_out = outs(views.FaithTab), outs(views.ChannelsTab)
        image_out = [*main_out, c["trust_editor"]]  # a new image also clears the hide-and-see painting

        def tab_event(view: Callable[..., Any], tab: str | None = None) -> Callable[..., Any]:
            """``view(who, image, settings, *extra)``; nothing changes without an image or off ``tab``."""

            @user_errors
            def run(request: gr.Request, image: str | None, target: str, layer: str, opacity: float, cmap: str,
                    open_tab: str, *extra: Any) -> dict[Any, Any]:  # fmt: skip
                if not image or (tab is not None and open_tab != tab):
                    return {}
                return values(view(Who.of(request), image, Settings(target, layer, opacity, cmap), *extra))

            return run

        @user_errors
        def on_explain(request: gr.Request, image: str | None, target: str, layer: str, opacity: float, cmap: str,
                       open_tab: str, shared: bool, new_image: bool = True, changed: str | None = None
                       ) -> dict[Any, Any]:  # fmt: skip
            if not image:
                if new_image:
                    raise gr.Error("Upload a photo of a pot plant first (or pick an example).")
                return {}
            reader, settings = Who.of(request), Settings(target, layer, opacity, cmap, shared)
            if changed:  # the page redrew the overlays: only what else this setting alters
                return values(ex.look_update(reader, image, settings, changed))
            view = ex.main_view(reader, image, settings)
            if not new_image:
                return values(view)
            ex.store.put(reader.session, reader.client, "last-image", image)  # what a refused photo goes back to
            return values(view) | {c["trust_editor"]: {"background": view.photo, "layers": [], "composite": None}}

        def on_image(request: gr.Request, *args: Any, **how: Any) -> dict[Any, Any]:
            """A refused photo or setting leaves the last good result (and photo) on screen and says why in
            a toast: a raised gr.Error would put an "Error" pill on every output."""
            reader = Who.of(request)
            try:
                out = on_explain(request, *args, **how)
            except gr.Error as exc:
                gr.Warning(str(exc.message), duration=10)
                last = ex.store.get(reader.session, "last-image") if how.get("new_image", True) else None
                return {c["image"]: last} if last else {}
            return out

        def on_settings(changed: str | None = None) -> Callable[..., dict[Any, Any]]:
            def run(request: gr.Request, *args: Any) -> dict[Any, Any]:  # the painting stays
                return on_image(request, *args, new_image=False, changed=changed)

            return run

        def with_progress(view: Callable[..., Any], what: str) -> Callable[..., Any]:
            """`view` with a progress bar; the Cancel button stops it between forward passes."""

            def run(request: gr.Request, progress: gr.Progress = PROGRESS, *args: Any) -> dict[Any, Any]:
                report = functools.partial(progress, desc=what, unit="forward passes")  # report((done, total))
                return tab_event(functools.partial(view, progress=lambda *done: report(done)))(request, *args)

            return run

        def on_link(request: gr.Request, image: str | None, target: str, layer: str, opacity: float, cmap: str,
                    tab: str) -> str:  # fmt: skip
            return ex.view_link(request, image, target, layer, opacity, cmap, tab)

        def on_cancel(request: gr.Request) -> None:
            ex.cancel(Who.of(request))

        def on_pixel(evt: gr.SelectData) -> list[int]:
            return [int(evt.index[0]) // 2, int(evt.index[1]) // 2]  # pixels of the 2x picture -> model input

        @user_errors
        def on_load(request: gr.Request) -> dict[Any, Any]:
            """Lesson links: the page's state from the URL; the default example when there is none."""
            state, notes, example = ex.lesson(dict(request.query_params))
            out: dict[Any, Any] = {c["url_note"]: "\n\n".join(notes), c["tab"]: state.tab}
            if example is None:
                return out
            path, s = str(example.path), (state.target, state.layer, state.opacity, state.colormap)
            out |= {c["image"]: path, c["tabs"]: gr.Tabs(selected=state.tab)} | dict(zip(base[1:5], s, strict=True))
            return out | on_explain(request, path, *s, state.tab, False)

        channels = tab_event(ex.channels_tab, "inside-the-cam")
        channels_in = [*base, c["show"], c["n"], c["k"], c["pixel"]]
        faith_view = tab_event(functools.partial(ex.faith_tab, compute=False))
        faith_in = [*base, c["faith_methods"]]

        extra = {"methods": (tab_event(ex.methods_tab, "methods"), base, methods_out, "minimal", MODEL),
                 "inside-the-cam": (channels, channels_in, channels_out, "minimal", MODEL),
                 "trust": (faith_view, faith_in, faith_out, "hidden", QUICK)}  # fmt: skip

        def follow(event: Any, tab: str | None = None) -> None:
            """After the main outputs: each tab's own views (on a tab's select, only its own), and the link."""
            for fn, inputs, outputs, shown, how in (v for t, v in extra.items() if tab in (None, t)):
                event.success(fn, inputs, outputs, show_progress=shown, **how)
            link = event.success(on_link, base, c["link"], **QUICK)
            link.then(None, c["link"], None, js=links.POST_TO_PARENT_JS, **QUICK)  # a Space's address bar too

        explain_in = [*base, c["shared"]]
        follow(c["explain"].click(on_image, explain_in, [*image_out, c["image"]], **MODEL))
        follow(c["image"].upload(on_image, explain_in, [*image_out, c["image"]], **MODEL))

        def redraw(trigger: Callable[..., Any], method: str, moved_on: bool = False, **kw: Any) -> Any:
            """`maps.redraw_js`: ``method``'s overlay redrawn in the page, no server round trip."""
            js, inputs = maps.redraw_js(method, moved_on), [c[k] for k in maps.redraw_inputs(method)]
            return trigger(None, inputs, c[f"{method}_slider"], js=js, **kw, **QUICK)

        # The overlays first (the shown tab's first), then the rest. A dropdown's `input` fires twice per click.
        for name, event in (("target", "change"), ("colormap", "change"), ("opacity", "input")):
            drawn = [redraw(getattr(c[name], event), m, **LAST) for m in maps.REDRAWN][-1]
            follow(drawn.then(on_settings(name), explain_in, main_out, **MODEL))
        for method in maps.REDRAWN:
            redraw(c["overlay_meta"].change, method, moved_on=True)
        for control in (c["layer"], c["shared"]):
            follow(control.input(on_settings(), explain_in, main_out, **LAST, **MODEL))
        everything = [*main_out, *methods_out, *faith_out, *channels_out]
        c["image"].clear(lambda: dict.fromkeys(everything) | {c["link"]: ""}, None, [*everything, c["link"]], **QUICK)
        for control in (c["show"], c["n"]):
            control.input(channels, channels_in, channels_out, **LAST, **MODEL)
        inside = functools.partial(tab_event, tab="inside-the-cam")  # the slider and a click: only what they change
        c["k"].input(inside(ex.channels_sum), [*base, c["k"]], outs(views.ChannelsSum), **LAST, **MODEL)
        pixel = c["channels_pixel_image"].select(on_pixel, None, c["pixel"], **QUICK)
        pixel.then(inside(ex.channels_pixel), [*base, c["pixel"]], outs(views.ChannelsPixel), **MODEL)
        for tab_id in links.TAB_IDS:
            follow(c[f"tab_{tab_id}"].select(lambda t=tab_id: t, None, c["tab"], **QUICK), tab_id)
        scorecam = with_progress(functools.partial(ex.methods_tab, with_scorecam=True), "Score-CAM")
        c["scorecam"].click(scorecam, base, methods_out, show_progress_on=c["methods_gallery"], **MODEL)
        faith = with_progress(functools.partial(ex.faith_tab, compute=True), "Faithfulness curves")
        running = c["faith_run"].click(faith, faith_in, faith_out, show_progress_on=c["faith_note"], **MODEL)
        c["faith_cancel"].click(on_cancel, None, None, cancels=[running], **QUICK)
        c["faith_methods"].change(faith_view, faith_in, faith_out, show_progress="hidden", **QUICK)
        sanity_out, hide_out, pot_out = map(outs, (views.SanityTab, views.HideTab, views.PotTab))
        c["sanity"].click(tab_event(ex.sanity_tab), [*base, c["sanity_methods"]], sanity_out, **MODEL)
        c["trust_editor"].input(tab_event(ex.hide_tab), [*base, c["trust_editor"]], hide_out, **LAST, **MODEL)
        c["pot_run"].click(tab_event(ex.pot_tab), [*base, c["pot"]], pot_out, **MODEL)

        if len(ex.examples):
            with c["examples_slot"]:
                label = "Examples: synthetic pot plants drawn by cam.synthetic (click one)"
                shown = gr.Examples([[str(e.path)] for e in ex.examples], inputs=[c["image"]], label=label,
                                    examples_per_page=12, api_visibility="private")  # fmt: skip
            follow(shown.load_input_event.then(on_explain, explain_in, image_out, **MODEL))
        load_out = [c[k] for k in ("url_note", "tab", "image", "target", "layer", "opacity", "colormap", "tabs")]
        follow(demo.load(on_load, None, [*load_out, *image_out], **MODEL))
        api(ex)
    return demo


def api(ex: Explorer) -> None:
    """The public endpoints (also MCP tools) on hidden components (`explorer.page.API`); docstrings in
    `explorer.api`. Their labels are the API's parameter names."""
    endpoints, c = Api(ex), build(page.api_parts(), {}, ex)
    for name, (inputs, outputs) in page.API.items():
        fn = user_errors(getattr(endpoints, name))
        gr.Button(visible=False).click(fn, [c[k] for k in inputs], [c[k] for k in outputs], api_name=name, **PUBLIC)


EXPLORER = Explorer(load_model(), ROOT / "examples", Path(gr.utils.get_upload_folder()))
EXPLORER.warm()  # the first page shows the default example explained, from this cache
memory.start_trimming()  # glibc keeps freed memory: P9's RSS tripled without (explorer/memory.py)
demo = build_demo(EXPLORER)
demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=CONCURRENCY_LIMIT, api_open=False)

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    demo.launch(**launch_kwargs())
