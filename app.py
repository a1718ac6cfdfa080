"""Pot Plant CAM Explorer: the Gradio app (a Hugging Face Space) on top of the `cam` package.

Run it with ``python app.py`` (``CAM_MODEL`` picks the checkpoint: ``auto`` by default, or
``bundled``, ``hub`` or a path). Every handler calls `cam`; this file only lays out the page, keeps
per-session state and turns raw maps into pictures and numbers.

One network pass per image and layer: the first event for an image runs `cam.explain` with
``all_classes=True`` and keeps the `Explanation` in the session (``gr.State``); switching class,
opacity, colour map or the All-classes scale only re-renders. Only the current image's results are
kept: a few MB, up to ~20 MB when the Methods tab was opened at every layer.

The Methods tab (every CAM-family method and their correlations) runs the network only when it is
opened; Score-CAM and the Faithfulness tab (deletion/insertion curves, ~100-300 forward passes) only on
a button press. Their results are cached in the session too, so class switches only re-render.

Every output picture is encoded here into a fresh file per response (`OutputFiles`), never handed
to Gradio as an array: Gradio 6.31 writes arrays to a content-addressed file *in place*, so two
requests producing the same picture rewrite one file while it is being downloaded.
"""

from __future__ import annotations

import os

# Before gradio/huggingface_hub are imported: both read these at import time. Analytics with a
# hanging network keep the process from exiting; telemetry costs seconds per client.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import base64
import binascii
import functools
import hashlib
import html
import io
import json
import logging
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import gradio as gr
import gradio.route_utils
import numpy as np
from gradio.data_classes import ImageData
from PIL import Image
from torch import nn

from cam import (
    CamError,
    Explanation,
    LoadedImage,
    explain,
    load_image,
    load_model,
    render,
)
from cam.faithfulness import DEFAULT_STEPS, RANDOM, ImageFaithfulness, evaluate_maps
from cam.methods import METHODS, equal_up_to_positive_scale, method_correlations
from cam.model import Provenance
from cam.network import GAP_LAYER, INPUT_SIZE, LAYER_ALIASES
from cam.plots import line_plot

# ------------------------------------------------------------------------------------------------
# Constants

TITLE = "Pot Plant CAM Explorer"
ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "examples"
CAPTIONS_FILE = EXAMPLES_DIR / "captions.json"

PREDICTED = "Predicted class"  # the class dropdown's first choice
LAYERS: tuple[str, ...] = tuple(LAYER_ALIASES)  # ("conv1", "conv2", "conv3")
DEFAULT_LAYER = GAP_LAYER
DEFAULT_OPACITY = 0.5
DEFAULT_COLORMAP = render.DEFAULT_COLORMAP
UI_METHODS = ("cam", "gradcam")  # what the tabs show; the API offers every method in METHODS
GALLERY_MAX_SIDE = 512  # All-classes images: four at once, no need for 1024 px
JPEG_QUALITY = 90  # overlays and photos; raw heatmaps and figures with text are PNG (lossless)

# Methods tab: every method in METHODS. The cheap ones are computed when the tab is opened (one forward
# pass and the gradients); Score-CAM runs one forward pass per channel, so only on request.
METHODS_ORDER: tuple[str, ...] = tuple(METHODS)  # cam, gradcam, gradcam++, ... as in cam.methods
EXPENSIVE_METHODS: tuple[str, ...] = tuple(m for m, spec in METHODS.items() if spec.needs_model)  # scorecam
EXTRA_METHODS: tuple[str, ...] = tuple(m for m in METHODS_ORDER if m not in (*UI_METHODS, *EXPENSIVE_METHODS))
METHOD_NAMES = {
    "cam": "CAM",
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "hirescam": "HiResCAM",
    "xgradcam": "XGrad-CAM",
    "layercam": "LayerCAM",
    "scorecam": "Score-CAM",
    "eigencam": "Eigen-CAM",
}
METHOD_TILE_SIDE = 320  # Methods-tab tiles: eight at once
METHODS_TAB = "tab-methods"

# Faithfulness tab: deletion/insertion curves cost 2 (steps - 1) + 1 forward passes per map.
FAITHFULNESS_STEPS = DEFAULT_STEPS  # 32 steps of 2048 pixels, as `python -m cam evaluate`
FAITHFULNESS_DEFAULT = ("cam", "gradcam", "gradcam++")  # + the random map: ~250 forward passes

MAX_UPLOAD_MB = 10
MAX_FILE_SIZE = f"{MAX_UPLOAD_MB}mb"  # launch(max_file_size=...): larger uploads get HTTP 413
MAX_DATA_URL_BYTES = MAX_UPLOAD_MB * 1024 * 1024  # the same limit for API calls that send a data: URL

# Queue: every event that may run the network shares one concurrency group. Measured on 2 vCPUs with
# 8 clients x 6 /explain calls: limit 1 / 2 / 4 gave 2.8-3.2 / 3.8 / 3.6 requests/s, so 2 workers.
# Torch threads are left at torch's default (one per core, 2 here): `python -m benchmarks.run --only P7T`
# measured 3.53 requests/s with 2 threads against 3.17 with OMP_NUM_THREADS=1 under the same load
# (benchmarks/README.md), and 2 threads also halve a lone request's latency (P1: 28.5 vs 52.2 ms).
CONCURRENCY_ID = "cam-model"
CONCURRENCY_LIMIT = 2
QUEUE_MAX_SIZE = 64  # waiting jobs beyond this get Gradio's "Queue is full" at once
STATE_TTL_S = 30 * 60  # a session's Explanation is dropped 30 min after its last update
STATE_SESSIONS = 200  # sessions kept in memory (each a few MB); the oldest is evicted first
DELETE_CACHE = (600, 3600)  # every 10 min delete uploads and outputs older than 1 h

log = logging.getLogger("cam.app")

MODEL = load_model()  # honours CAM_MODEL; loaded once, shared by every request (read-only)

# ------------------------------------------------------------------------------------------------
# Errors: users see our messages, never a traceback.

P = ParamSpec("P")
R = TypeVar("R")

GENERIC_ERROR = (
    "Something went wrong while explaining this image. The problem has been logged. Try again, or try another photo."
)


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """`cam` refusals become gr.Error with their own message; anything else a generic gr.Error."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except CamError as exc:
            # gr.Error renders HTML: escape, since messages may quote a file name the user chose.
            raise gr.Error(html.escape(str(exc), quote=False), print_exception=False) from None
        except Exception:
            log.exception("Unexpected error in %s", fn.__name__)
            raise gr.Error(GENERIC_ERROR, print_exception=False) from None

    return wrapper


# ------------------------------------------------------------------------------------------------
# Image input: Gradio's Image front end, our own loader.


def _cache_dir() -> Path:
    return Path(gr.utils.get_upload_folder())


def save_output(data: bytes, name: str) -> str:
    """Write a download into Gradio's cache folder, so it is served as is and removed by
    ``delete_cache`` like any other output. A fresh folder per call: a file shared between requests
    could be aged out by the cleaner between one request writing it and another serving it."""
    return OutputFiles().write(data, name)


class OutputFiles:
    """One response's output files, in a fresh folder of Gradio's cache.

    Every picture a handler returns goes through here as a file path. Handing Gradio 6.31 an array or
    PIL image instead makes it write ``<cache>/<hash of the bytes>/image.<fmt>`` in place
    (`processing_utils.save_pil_to_cache`): two requests that produce the same picture rewrite the same
    file while it is being served, and a client gets a truncated body. A path inside the cache folder
    is served as is; nothing else ever writes to this folder.
    """

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="cam-", dir=_cache_dir()))

    def write(self, data: bytes, name: str) -> str:
        path = self.folder / name
        if path.exists():
            raise ValueError(f"Output {name!r} was already written for this response; names must be unique.")
        path.write_bytes(data)
        return str(path)

    def jpeg(self, image: Image.Image | np.ndarray, name: str) -> str:
        return self.write(jpeg_bytes(image), f"{name}.jpg")

    def png(self, image: Image.Image | np.ndarray, name: str) -> str:
        return self.write(png_bytes(image), f"{name}.png")


def _delete_files_created_by_app(blocks: gr.Blocks, age: int | None) -> None:
    """`gradio.route_utils.delete_files_created_by_app` (6.31) over snapshots of the file sets.

    The original iterates the live sets that request threads add to; under load it raises
    "Set changed size during iteration" and the scheduled cleanup task dies for good (uploads then
    pile up until restart). Same rule otherwise: delete files whose ctime is older than ``age``.
    """
    dont_delete: set[str] = set()
    for component in blocks.blocks.values():
        dont_delete.update(getattr(component, "keep_in_cache", set()))
    now = time.time()
    for temp_set in blocks.temp_file_sets:
        removed = set()
        for file in list(temp_set):
            if file in dont_delete:
                continue
            try:
                if age is None or now - Path(file).lstat().st_ctime > age:
                    os.remove(file)
                    removed.add(file)
            except FileNotFoundError:
                removed.add(file)
        temp_set -= removed


gradio.route_utils.delete_files_created_by_app = _delete_files_created_by_app


class ImageInput(gr.Image):
    """`gr.Image(type="filepath")` that never decodes the image itself.

    Gradio's own preprocessing opens the file with PIL (and converts it when its mode is not RGB,
    decoding the whole image), and decodes ``data:`` URLs fully before re-encoding them. Here the
    file path is passed on untouched and a ``data:`` URL is only base64-decoded, with a size cap,
    into a file; `cam.load_image` then does the one careful decode (pixel cap before decoding, EXIF,
    every mode).
    """

    is_template = True  # the front end renders it as the built-in Image component
    # No __init__ of its own: Gradio builds the front-end config from the signature of __init__.
    # Construct it with type="filepath", image_mode=None (see `image_input`).

    def preprocess(self, payload: ImageData | None) -> str | None:
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):
            return self._save_data_url(payload.url)
        if payload.path is None:
            raise gr.Error("No image was received. Upload a JPEG or PNG photo (or send a file path).")
        return str(payload.path)

    def _save_data_url(self, url: str) -> str:
        header, _, b64 = url.partition(",")
        if ";base64" not in header:
            raise gr.Error("The data: URL is not base64-encoded. Send the image as data:image/...;base64,...")
        if len(b64) * 3 // 4 > MAX_DATA_URL_BYTES:
            raise gr.Error(
                f"The image is about {len(b64) * 3 / 4 / 1e6:.1f} MB, over the {MAX_UPLOAD_MB} MB limit of "
                "this app. Send a smaller file (a photo of 1-2 MB is plenty: the model sees 256x256 pixels)."
            )
        try:
            data = base64.b64decode(b64, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise gr.Error(f"The data: URL could not be decoded as base64 ({exc}). Check the encoding.") from None
        path = save_output(data, "upload")
        self.temp_files.add(path)  # so delete_cache removes it like an ordinary upload
        return path


def image_input(**kwargs: Any) -> ImageInput:
    """An `ImageInput` that hands the handler a file path and never converts the image."""
    return ImageInput(type="filepath", image_mode=None, format="jpeg", **kwargs)


# ------------------------------------------------------------------------------------------------
# Example photos (produced separately; the app works without them).


@dataclass(frozen=True)
class ExamplePhoto:
    path: Path
    true_class: str | None
    look_for: str | None
    sha256: str


def _caption_fields(entry: Any) -> tuple[str | None, str | None]:
    """(true class, what to look for) from one captions.json entry: {"class": ..., "look_for": ...}."""
    if isinstance(entry, str):
        return None, entry
    if not isinstance(entry, dict):
        return None, None
    true_class = next((str(entry[k]) for k in ("class", "true_class", "label") if entry.get(k)), None)
    look = next((str(entry[k]) for k in ("look_for", "what_to_look_for", "caption", "note") if entry.get(k)), None)
    return true_class, look


def load_examples(folder: Path = EXAMPLES_DIR) -> list[ExamplePhoto]:
    """Every examples/*.jpg (sorted) with its caption from captions.json, when present."""
    if not folder.is_dir():
        return []
    captions: dict[str, Any] = {}
    captions_file = folder / "captions.json"
    if captions_file.is_file():
        try:
            loaded = json.loads(captions_file.read_text(encoding="utf-8"))
            captions = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError) as exc:
            log.warning("Ignoring %s: %s", captions_file, exc)
    out = []
    for path in sorted([*folder.glob("*.jpg"), *folder.glob("*.jpeg"), *folder.glob("*.png")]):
        true_class, look = _caption_fields(captions.get(path.name, captions.get(path.stem)))
        out.append(ExamplePhoto(path, true_class, look, hashlib.sha256(path.read_bytes()).hexdigest()))
    return out


EXAMPLES = load_examples()
_EXAMPLES_BY_SHA = {e.sha256: e for e in EXAMPLES}
RENDER_VERSION = "2"  # bump when the pictures change, so cached example outputs are not reused

# Gradio keeps cached example outputs across restarts, keyed only by position. Key the folder by the
# checkpoint, the example files and the renderer, so a new model never shows an old model's maps.
_examples_key = hashlib.sha256(
    "|".join([MODEL.provenance.sha256, RENDER_VERSION, *(e.sha256 for e in EXAMPLES)]).encode()
).hexdigest()[:16]
os.environ["GRADIO_EXAMPLES_CACHE"] = str(
    Path(os.environ.get("GRADIO_EXAMPLES_CACHE", ".gradio/cached_examples")) / f"cam-{_examples_key}"
)


def example_note(image_sha256: str) -> str:
    """The caption of an example photo (matched by content, so a re-upload of it counts too)."""
    ex = _EXAMPLES_BY_SHA.get(image_sha256)
    if ex is None or (ex.true_class is None and ex.look_for is None):
        return ""
    parts = []
    if ex.true_class:
        parts.append(f"**Example** `{ex.path.name}`, true class **{ex.true_class}**.")
    else:
        parts.append(f"**Example** `{ex.path.name}`.")
    if ex.look_for:
        parts.append(f"What to look for: {ex.look_for}")
    return " ".join(parts)


# ------------------------------------------------------------------------------------------------
# Session state: the current image and its explanations, one per Grad-CAM layer asked for.


@dataclass(frozen=True)
class Session:
    key: str  # identity of the input (path, size, mtime): a new upload gets a new key
    image: LoadedImage
    note: str  # example caption, or ""
    by_layer: dict[str, Explanation]  # Grad-CAM layer -> Explanation(cam at conv3, gradcam at layer)
    # Methods tab: layer -> Explanation of EXTRA_METHODS at that layer (+ Score-CAM once asked for),
    # every class; merged with by_layer[layer] when shown (`methods_explanation`).
    methods: dict[str, Explanation] = field(default_factory=dict)
    # Faithfulness tab: (layer, class index) -> curves of every map evaluated so far, "random" included.
    faithfulness: dict[tuple[str, int], ImageFaithfulness] = field(default_factory=dict)


def image_key(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise gr.Error(f"The uploaded image is no longer on the server ({exc.strerror}). Upload it again.") from None
    return f"{path}|{st.st_size}|{st.st_mtime_ns}"


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_network(image: LoadedImage, layer: str) -> Explanation:
    """The one place the UI runs the model: CAM at conv3 and Grad-CAM at ``layer``, every class."""
    return explain(MODEL, image, methods=UI_METHODS, layer={"cam": GAP_LAYER, "gradcam": layer}, all_classes=True)


def ensure_session(image_path: str, layer: str, state: Session | None) -> Session:
    """The session for this image with the explanation at ``layer``, computing only what is missing."""
    if layer not in LAYERS:
        raise gr.Error(f"Unknown layer {layer!r}; choose one of {', '.join(LAYERS)}.")
    key = image_key(image_path)
    if state is None or state.key != key:
        loaded = load_image(image_path)  # refuses oversized, broken and hostile files with ImageError
        state = Session(key=key, image=loaded, note=example_note(file_sha256(image_path)), by_layer={})
    if layer not in state.by_layer:
        state = replace(state, by_layer={layer: run_network(state.image, layer)} | state.by_layer)
    return state


# ------------------------------------------------------------------------------------------------
# Rendering: pictures and numbers from an Explanation (no network here).


@dataclass(frozen=True)
class View:
    """Everything the page shows for one image, class, layer and display setting."""

    prediction: dict[str, float]
    target_md: str
    cam_slider: tuple[Image.Image, np.ndarray]  # (photo, overlay)
    cam_heatmap: np.ndarray
    cam_note: str
    gradcam_slider: tuple[Image.Image, np.ndarray]
    gradcam_heatmap: np.ndarray
    gradcam_note: str
    compare_image: str  # the PNG file, also offered as a download
    compare_md: str
    compare_png: str
    cam_npy: str
    gradcam_npy: str
    all_classes: list[tuple[np.ndarray, str]]
    target: str = ""  # the explained class and the Grad-CAM layer: for output file names
    layer: str = ""


def _photo(r: Explanation) -> Image.Image:
    assert r.image is not None and r.image.display is not None
    return r.image.display


def method_label(method: str, layer: str) -> str:
    name = {"cam": "CAM", "gradcam": "Grad-CAM"}.get(method, method)
    return name if method == "cam" else f"{name} at {layer}"


def overlay_or_note(
    r: Explanation, method: str, opacity: float, colormap: str, layer: str
) -> tuple[tuple[Image.Image, np.ndarray], str]:
    """(ImageSlider value, note): photo vs overlay, or the photo greyed with a note when the map has
    no positive value (after ReLU it would be blank, and min-max scaling would divide 0 by 0).
    A plain value, not gr.update: Gradio 6.31 fails to cache examples whose outputs update an
    ImageSlider's properties (ImageSlider has no `info`)."""
    photo = _photo(r)
    if not r.has_positive_evidence(method):
        note = (
            f"**No positive evidence for {r.target}.** Every value of the {method_label(method, layer)} map "
            f"is ≤ 0: no region of this photo raises the score of *{r.target}*, so after ReLU there is "
            "nothing to highlight. The raw map below shows how strongly each region speaks against it."
        )
        muted = render.muted(photo, f"No positive evidence for {r.target}")
        return (photo, muted), note
    ov = render.overlay(photo, render.scale_map(r.maps[method]), alpha=opacity, colormap=colormap)
    return (photo, ov), ""


def heatmap_figure(r: Explanation, method: str, layer: str, colormap: str) -> np.ndarray:
    """The raw map (before ReLU) with a colour bar in the map's own values, titled."""
    title = f"Raw {method_label(method, layer)} for {r.target}, before ReLU (colour bar: map values)"
    return top_margin(render.pad(render.titled(render.raw_heatmap(r.maps[method], colormap), title), 6))


def top_margin(figure: np.ndarray, px: int = 34) -> np.ndarray:
    """White space above a figure, where Gradio draws its download/fullscreen buttons."""
    return np.pad(figure, ((px, 0), (0, 0), (0, 0)), constant_values=255)


def percent(p: float) -> str:
    return "<0.1%" if 0 < p < 0.001 else (">99.9%" if 0.999 < p < 1 else f"{p:.1%}")


def compare_numbers(r: Explanation, layer: str) -> tuple[str, dict[str, float]]:
    """The Compare tab's proof: scaled difference, correlation, the logit check, and why."""
    cam_raw = r.maps["cam"].astype(np.float64)
    gc_raw = r.maps["gradcam"].astype(np.float64)
    diff = np.abs(render.scale_map(r.maps["cam"]) - render.scale_map(r.maps["gradcam"]))
    max_diff = float(diff.max())
    constant = cam_raw.std() == 0 or gc_raw.std() == 0  # correlation undefined
    corr = float("nan") if constant else float(np.corrcoef(cam_raw.ravel(), gc_raw.ravel())[0, 1])
    mean_plus_bias, logit = r.logit_check()
    hw = INPUT_SIZE * INPUT_SIZE
    numbers = {
        "max_abs_diff_scaled": max_diff,
        "correlation": corr,
        "mean_cam_plus_bias": mean_plus_bias,
        "logit": logit,
    }
    corr_text = f"{corr:.6f}" if np.isfinite(corr) else "undefined (a map is constant)"
    lines = [
        f"| Check for class **{r.target}** | Value |",
        "|---|---|",
        f"| Largest \\|CAM − Grad-CAM\\| after ReLU and min-max scaling | `{max_diff:.2e}` |",
        f"| Correlation of the raw maps | `{corr_text}` |",
        f"| mean(CAM) + b<sub>c</sub> | `{mean_plus_bias:.6f}` |",
        f"| logit y<sub>c</sub> from the network | `{logit:.6f}` (difference `{abs(mean_plus_bias - logit):.1e}`) |",
    ]
    if layer == GAP_LAYER:
        scale_err = float(np.max(np.abs(gc_raw * hw - cam_raw)))
        lines.append(f"| max \\|Grad-CAM × {hw} − CAM\\| (raw) | `{scale_err:.2e}` |")
        numbers["max_abs_gradcam_times_hw_minus_cam"] = scale_err
        why = (
            f"**At {GAP_LAYER} the two maps are the same map.** {GAP_LAYER} is the layer that global average "
            f"pooling averages, so dy<sub>c</sub>/dA<sup>k</sup>(x, y) = w<sup>c</sup><sub>k</sub> / (H·W) at every "
            f"pixel: Grad-CAM's weights are CAM's weights divided by H·W = {hw}. After ReLU and min-max scaling "
            "the factor disappears; what is left is float rounding. The logit check holds because "
            "y<sub>c</sub> = Σ<sub>k</sub> w<sup>c</sup><sub>k</sub> mean(A<sup>k</sup>) + b<sub>c</sub> "
            "= mean(CAM) + b<sub>c</sub>."
        )
    else:
        why = (
            f"**At {layer} the maps differ, as they should.** CAM exists only at {GAP_LAYER} (the layer GAP "
            f"averages), so it stays there. Grad-CAM at {layer} weights {layer}'s channels by the mean of "
            f"dy<sub>c</sub>/dA<sup>k</sup>, and below {GAP_LAYER} that gradient passes through later "
            "convolutions and ReLUs: it changes from pixel to pixel and is no longer w<sup>c</sup>/(H·W). "
            f"Earlier layers also see smaller regions (receptive field {_receptive_field(layer)}×"
            f"{_receptive_field(layer)} pixels), so the map is finer and noisier. Switch back to {GAP_LAYER} "
            "to see the two coincide."
        )
    return "\n".join([why, "", *lines]), numbers


def _receptive_field(layer: str) -> int:
    return 1 + 2 * (LAYERS.index(layer) + 1)  # 3x3 convolutions, stride 1: 3, 5, 7


def compare_figure(r: Explanation, layer: str, colormap: str) -> np.ndarray:
    """Photo (as the model sees it) | CAM | Grad-CAM | |difference|, all 256x256, one colour scale."""
    photo = r.image.model_input if r.image is not None else np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    cam01 = render.scale_map(r.maps["cam"])
    gc01 = render.scale_map(r.maps["gradcam"])
    diff = np.abs(cam01 - gc01)

    def panel(m01: np.ndarray, method: str) -> np.ndarray:
        if not r.has_positive_evidence(method):
            return render.muted(photo, "No positive evidence")
        return render.colorize(m01, colormap)

    panels = [
        render.titled(photo, "Photo, as the model sees it (256×256)"),
        render.titled(panel(cam01, "cam"), f"CAM ({GAP_LAYER}), ReLU + scaled"),
        render.titled(panel(gc01, "gradcam"), f"Grad-CAM ({layer}), ReLU + scaled"),
        render.titled(render.colorize(diff, colormap), f"|difference|, max {float(diff.max()):.1e}"),
        render.titled(render.labelled_colorbar(0.0, 1.0, colormap, height=INPUT_SIZE), ""),
    ]
    head = render.titled(render.hstack(panels), f"Class {r.target}: CAM vs Grad-CAM at {layer}")
    return top_margin(render.pad(head))


def all_classes_gallery(
    r: Explanation, opacity: float, colormap: str, shared_scale: bool
) -> list[tuple[np.ndarray, str]]:
    """CAM of every class over the photo, captioned with its probability."""
    photo = _photo(r).copy()
    photo.thumbnail((GALLERY_MAX_SIDE, GALLERY_MAX_SIDE), Image.Resampling.BILINEAR)
    probs = r.probabilities
    top = max(float(np.maximum(r.for_target(i).maps["cam"], 0).max()) for i in r.classes)
    items = []
    for i in r.classes:
        ri = r.for_target(i)
        name = ri.target
        tag = " (predicted)" if i == r.predicted_index else ""
        if not ri.has_positive_evidence("cam"):
            img = render.muted(photo, f"No positive evidence for {name}")
            caption = f"{name}: {percent(probs[name])}{tag}, no positive evidence"
        else:
            raw = np.maximum(ri.maps["cam"], 0)
            m01 = (raw / top).astype(np.float32) if shared_scale else render.scale_map(ri.maps["cam"])
            img = render.overlay(photo, m01, alpha=opacity, colormap=colormap)
            caption = f"{name}: {percent(probs[name])}{tag}"
        items.append((img, caption))
    return items


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(a, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def _pil(a: Image.Image | np.ndarray) -> Image.Image:
    return a.convert("RGB") if isinstance(a, Image.Image) else Image.fromarray(np.asarray(a, dtype=np.uint8))


def png_bytes(a: Image.Image | np.ndarray) -> bytes:
    buf = io.BytesIO()
    _pil(a).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def jpeg_bytes(a: Image.Image | np.ndarray) -> bytes:
    buf = io.BytesIO()
    _pil(a).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def target_markdown(r: Explanation, requested: str, note: str) -> str:
    p = r.probabilities[r.target]
    if requested == PREDICTED:
        why = "the predicted class"
    elif r.target == r.predicted:
        why = "your choice; it is also the predicted class"
    else:
        why = f"your choice; the model predicts **{r.predicted}**"
    out = f"### Explaining **{r.target}** ({why}), probability {percent(p)}"
    return out + (f"\n\n{note}" if note else "")


def render_view(session: Session, target: str, layer: str, opacity: float, colormap: str, shared_scale: bool) -> View:
    """Every output for the current settings, from the session's explanation (no network)."""
    if colormap not in render.COLORMAPS:
        raise gr.Error(f"Unknown colour map {colormap!r}; choose one of {', '.join(render.COLORMAPS)}.")
    if not 0.0 <= float(opacity) <= 1.0:
        raise gr.Error(f"Overlay opacity must be between 0 and 1, got {opacity}.")
    r = session.by_layer[layer].for_target("predicted" if target == PREDICTED else target)
    cam_slider, cam_note = overlay_or_note(r, "cam", opacity, colormap, layer)
    gc_slider, gc_note = overlay_or_note(r, "gradcam", opacity, colormap, layer)
    compare_md, _ = compare_numbers(r, layer)
    figure = compare_figure(r, layer, colormap)
    stem = f"{r.target}_{layer}"
    figure_png = save_output(png_bytes(figure), f"compare_{stem}.png")  # shown and downloaded: encode once
    return View(
        prediction=r.probabilities,
        target_md=target_markdown(r, target, session.note),
        cam_slider=cam_slider,
        cam_heatmap=heatmap_figure(r, "cam", layer, colormap),
        cam_note=cam_note,
        gradcam_slider=gc_slider,
        gradcam_heatmap=heatmap_figure(r, "gradcam", layer, colormap),
        gradcam_note=gc_note,
        compare_image=figure_png,
        compare_md=compare_md,
        compare_png=figure_png,
        cam_npy=save_output(npy_bytes(r.maps["cam"]), f"cam_{r.target}_{GAP_LAYER}.npy"),
        gradcam_npy=save_output(npy_bytes(r.maps["gradcam"]), f"gradcam_{stem}.npy"),
        all_classes=all_classes_gallery(r, opacity, colormap, shared_scale),
        target=r.target,
        layer=layer,
    )


# ------------------------------------------------------------------------------------------------
# Methods tab: every CAM-family method for the class and layer, their correlations, and which of
# them equal CAM up to a positive scale (checked on the numbers, then explained).

WHY_AT_GAP = {
    "gradcam": "Grad-CAM averages that constant gradient over the pixels: "
    "α<sub>k</sub> = w<sup>c</sup><sub>k</sub>/(H·W).",
    "hirescam": "HiResCAM multiplies every activation by the gradient pixel by pixel: "
    "Σ<sub>k</sub> w<sup>c</sup><sub>k</sub> A<sup>k</sup>/(H·W).",
    "xgradcam": "XGrad-CAM weights each channel by Σ g·A / Σ A, which for a constant gradient g is "
    "w<sup>c</sup><sub>k</sub>/(H·W) again.",
    "gradcam++": "Grad-CAM++ keeps only positive gradients (it drops channels with w<sup>c</sup><sub>k</sub> < 0) "
    "and reweights each channel by 1/(2 + S<sub>k</sub> w<sup>c</sup><sub>k</sub>/(H·W)), S<sub>k</sub> the "
    "channel's sum: channels count differently than in CAM.",
    "layercam": "LayerCAM keeps only positive gradients: Σ<sub>k</sub> ReLU(w<sup>c</sup><sub>k</sub>) "
    "A<sup>k</sup>/(H·W), CAM without the channels that speak against the class; it equals CAM only when no "
    "active channel has a negative weight.",
    "eigencam": "Eigen-CAM ignores the class: it projects the activations on their first principal component.",
    "scorecam": "Score-CAM weights channels by how much masking the photo with each channel raises the class "
    "score (a softmax over channels), not by w<sup>c</sup><sub>k</sub>.",
}


def method_title(method: str) -> str:
    """'Grad-CAM++ (2018)': the name and the paper's year, from cam.methods.METHODS."""
    year = re.search(r"\b(19|20)\d\d\b", METHODS[method].reference)
    return f"{METHOD_NAMES.get(method, method)} ({year.group() if year else 'n.d.'})"


def method_citation(method: str) -> str:
    """'Chattopadhay et al. 2018, Grad-CAM++: ...': the paper, from cam.methods.METHODS."""
    return METHODS[method].reference


def map_label(method: str, layer: str) -> str:
    """A short name for tables and legends; CAM says where it was computed when that is not ``layer``."""
    if method == RANDOM:
        return "random map"
    name = METHOD_NAMES.get(method, method)
    return f"{name} ({GAP_LAYER})" if method == "cam" and layer != GAP_LAYER else name


def merged(a: Explanation, b: Explanation) -> Explanation:
    """``a`` with ``b``'s maps added: two explanations of the same image and classes."""
    if a.classes != b.classes or not np.array_equal(a.logits, b.logits):
        raise ValueError("Cannot merge explanations of different images or classes.")
    return replace(a, class_maps={**a.class_maps, **b.class_maps}, layers={**a.layers, **b.layers})


def ensure_methods(session: Session, layer: str) -> Session:
    """The session with every cheap method at ``layer`` (one forward pass, every class)."""
    if layer in session.methods:
        return session
    extra = explain(MODEL, session.image, methods=EXTRA_METHODS, layer=layer, all_classes=True)
    return replace(session, methods={**session.methods, layer: extra})


def ensure_scorecam(session: Session, layer: str, progress: Callable[[int, int], None] | None) -> Session:
    """The session with Score-CAM at ``layer`` too: one forward pass per channel (16, 32 or 64)."""
    session = ensure_methods(session, layer)
    have = session.methods[layer]
    if all(m in have.class_maps for m in EXPENSIVE_METHODS):
        return session
    extra = explain(MODEL, session.image, methods=EXPENSIVE_METHODS, layer=layer, all_classes=True, progress=progress)
    return replace(session, methods={**session.methods, layer: merged(have, extra)})


def methods_explanation(session: Session, layer: str) -> Explanation:
    """CAM and Grad-CAM from the main view plus the Methods tab's maps, every class."""
    return merged(session.by_layer[layer], session.methods[layer])


@dataclass(frozen=True)
class MethodsView:
    """What the Methods tab shows for one class and layer, and the numbers behind it."""

    tiles: list[tuple[np.ndarray, str]]  # (overlay or greyed photo, caption), in METHODS_ORDER
    names: tuple[str, ...]  # methods in the correlation matrix
    correlations: np.ndarray  # (M, M) Pearson correlation of the raw maps
    equal_to_cam: dict[str, float]  # method -> s > 0 with CAM = s * map (equal up to a positive scale)
    equal_pairs: tuple[tuple[str, str], ...]  # other pairs equal up to a positive scale
    matrix_html: str
    statement_md: str


def method_tiles(r: Explanation, layer: str, opacity: float, colormap: str) -> list[tuple[np.ndarray, str]]:
    """One picture per method over the photo (ReLU + min-max scaled), or the photo greyed with a note."""
    photo = _photo(r).copy()
    photo.thumbnail((METHOD_TILE_SIDE, METHOD_TILE_SIDE), Image.Resampling.BILINEAR)
    note_size = max(16, photo.width // 11)  # tiles are shown at ~200 px: notes need big letters
    tiles = []
    for m in METHODS_ORDER:
        caption = method_title(m)
        if m not in r.class_maps:
            img = render.muted(
                photo, f"Not computed: press “Compute Score-CAM” ({_channels(layer)} passes)", font_size=note_size
            )
            caption += ", not computed yet"
        elif m == "cam" and layer != GAP_LAYER:
            img = render.muted(photo, f"CAM exists only at {GAP_LAYER}", font_size=note_size)
            caption += f", only at {GAP_LAYER}"
        else:
            caption += f", {r.layers[m]}"
            if not METHODS[m].class_specific:
                caption += ", any class"
            if r.has_positive_evidence(m):
                img = render.overlay(photo, render.scale_map(r.maps[m]), alpha=opacity, colormap=colormap)
            else:
                img = render.muted(photo, f"No positive evidence for {r.target}", font_size=note_size)
                caption += ", no evidence"
        tiles.append((img, caption))
    return tiles


def _channels(layer: str) -> int:
    """Channels of ``layer``, i.e. Score-CAM's forward passes there (16, 32 or 64)."""
    convs = [m for m in MODEL.module.modules() if isinstance(m, nn.Conv2d)]  # conv1, conv2, conv3 in order
    return int(convs[LAYERS.index(layer)].out_channels)


def positive_scale(a: np.ndarray, b: np.ndarray) -> float:
    """The least-squares s with a ≈ s b (what `equal_up_to_positive_scale` tests)."""
    x = a.astype(np.float64).ravel()
    y = b.astype(np.float64).ravel()
    return float(x @ y) / float(y @ y)


def correlation_color(v: float) -> tuple[str, str]:
    """(background, text) CSS colours for a correlation: red for +1, white for 0, blue for -1."""
    if not np.isfinite(v):
        return "#eeeeee", "#555555"
    t = min(abs(v), 1.0)
    end = (214, 96, 77) if v >= 0 else (67, 147, 195)
    rgb = tuple(round(255 + (e - 255) * t) for e in end)
    return "#{:02x}{:02x}{:02x}".format(*rgb), ("#ffffff" if t > 0.65 else "#1e1e1e")


def correlation_table_html(labels: list[str], r: np.ndarray, equal: set[tuple[int, int]], class_name: str) -> str:
    """The correlation matrix as a coloured HTML table with its numbers; ≡ marks pairs equal up to a
    positive scale."""
    esc = html.escape
    cell = "padding:4px 6px;text-align:center;border:1px solid #ddd;font-variant-numeric:tabular-nums"
    rows = ["<tr><th></th>" + "".join(f'<th style="{cell}">{esc(x)}</th>' for x in labels) + "</tr>"]
    for i, row_label in enumerate(labels):
        tds = []
        for j in range(len(labels)):
            v = float(r[i, j])
            bg, fg = correlation_color(v)
            text = f"{v:.3f}" if np.isfinite(v) else "n/a"
            mark = " ≡" if (i, j) in equal or (j, i) in equal else ""
            tds.append(f'<td style="{cell};background:{bg};color:{fg}">{text}{mark}</td>')
        rows.append(f'<tr><th style="{cell};text-align:right">{esc(row_label)}</th>{"".join(tds)}</tr>')
    caption = (
        f"Pearson correlation of the raw maps (before ReLU) for class <b>{esc(class_name)}</b>. "
        "≡: equal up to a positive scale (map = s × other map, s > 0, relative error ≤ 10<sup>-4</sup>). "
        "n/a: a constant map has nothing to correlate."
    )
    return (
        '<div id="methods-matrix-table" style="overflow-x:auto">'
        f'<table style="border-collapse:collapse;font-size:13px">{"".join(rows)}</table>'
        f'<p style="font-size:12px;margin-top:4px">{caption}</p></div>'
    )


def methods_statement(
    r: Explanation,
    layer: str,
    names: tuple[str, ...],
    corr: np.ndarray,
    equal_to_cam: dict[str, float],
    equal_pairs: tuple[tuple[str, str], ...],
) -> str:
    """Which methods equal CAM up to a positive scale here, from the numbers, and why."""
    hw = INPUT_SIZE * INPUT_SIZE
    cam_row = dict(zip(names, corr[names.index("cam")], strict=True))
    others = [m for m in names if m != "cam"]

    def r_of(m: str) -> str:
        v = cam_row[m]
        return f"r = {v:.3f}" if np.isfinite(v) else "r undefined"

    if layer == GAP_LAYER:
        same = [m for m in others if m in equal_to_cam]
        differ = [m for m in others if m not in equal_to_cam]
        lines = []
        if same:
            scales = ", ".join(f"{METHOD_NAMES[m]} × {equal_to_cam[m]:,.1f}" for m in same)
            lines.append(
                f"**At {GAP_LAYER}, {_join(METHOD_NAMES[m] for m in same)} equal CAM up to a positive scale** "
                f"for class *{r.target}* (checked on the maps: {scales} give CAM; H·W = {hw:,}).\n\n"
                f"**Why:** {GAP_LAYER} is the layer global average pooling averages and only the linear layer "
                f"follows, so ∂y<sub>c</sub>/∂A<sup>k</sup>(x, y) = w<sup>c</sup><sub>k</sub>/(H·W) is the same "
                "at every pixel."
            )
            lines += [f"- {WHY_AT_GAP[m]}" for m in same if m in WHY_AT_GAP]
        else:
            lines.append(f"**At {GAP_LAYER}, no method equals CAM up to a positive scale for class *{r.target}*.**")
        if differ:
            lines.append(f"\n**Not equal to CAM here:** {', '.join(f'{METHOD_NAMES[m]} ({r_of(m)})' for m in differ)}.")
            lines += [f"- {WHY_AT_GAP[m]}" for m in differ if m in WHY_AT_GAP]
    else:
        near = [m for m in others if m in equal_to_cam]
        verdict = (
            f"and, checked on the maps, none of the methods at {layer} equals it up to a positive scale"
            if not near
            else f"yet {_join(METHOD_NAMES[m] for m in near)} equal it up to a positive scale here"
        )
        lines = [
            f"**At {layer} the methods part ways.** CAM exists only at {GAP_LAYER} (its tile is greyed; the "
            f"matrix keeps CAM at {GAP_LAYER} as a reference), {verdict}: correlation with CAM "
            f"{', '.join(f'{METHOD_NAMES[m]} {r_of(m)}' for m in others)}.",
            f"\n**Why:** below {GAP_LAYER} the gradient ∂y<sub>c</sub>/∂A<sup>k</sup>(x, y) flows back through "
            "later convolutions and ReLUs, so it changes from pixel to pixel. Averaging it (Grad-CAM), using it "
            "pixel by pixel (HiResCAM), weighting it by the activations (XGrad-CAM) or keeping its positive part "
            "(Grad-CAM++, LayerCAM) now give different maps.",
        ]
    if equal_pairs:
        pairs = "; ".join(f"{METHOD_NAMES[a]} ≡ {METHOD_NAMES[b]}" for a, b in equal_pairs)
        lines.append(f"\nOther pairs equal up to a positive scale here: {pairs}.")
    elif layer != GAP_LAYER:
        lines.append(f"\nNo two methods at {layer} are equal up to a positive scale for this class.")
    return "\n".join(lines)


def _join(items: Any) -> str:
    xs = list(items)
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]


def render_methods(r: Explanation, layer: str, opacity: float, colormap: str) -> MethodsView:
    """The Methods tab for the explanation's target (no network)."""
    if colormap not in render.COLORMAPS:
        raise gr.Error(f"Unknown colour map {colormap!r}; choose one of {', '.join(render.COLORMAPS)}.")
    if not 0.0 <= float(opacity) <= 1.0:
        raise gr.Error(f"Overlay opacity must be between 0 and 1, got {opacity}.")
    names, corr = method_correlations(r, [m for m in METHODS_ORDER if m in r.class_maps])
    maps = r.maps
    equal_to_cam = {
        m: positive_scale(maps["cam"], maps[m])
        for m in names
        if m != "cam" and equal_up_to_positive_scale(maps[m], maps["cam"])
    }
    equal_pairs = tuple(
        (a, b)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        if "cam" not in (a, b) and equal_up_to_positive_scale(maps[a], maps[b])
    )
    index = {m: i for i, m in enumerate(names)}
    marks = {(index["cam"], index[m]) for m in equal_to_cam} | {(index[a], index[b]) for a, b in equal_pairs}
    labels = [map_label(m, layer) for m in names]
    return MethodsView(
        tiles=method_tiles(r, layer, opacity, colormap),
        names=names,
        correlations=corr,
        equal_to_cam=equal_to_cam,
        equal_pairs=equal_pairs,
        matrix_html=correlation_table_html(labels, corr, marks, r.target),
        statement_md=methods_statement(r, layer, names, corr, equal_to_cam, equal_pairs),
    )


METHODS_REFERENCES = "**Papers.** " + "; ".join(f"{METHOD_NAMES[m]}: {method_citation(m)}" for m in METHODS_ORDER) + "."
METHODS_OUTPUT_NAMES = ("methods_gallery", "methods_matrix", "methods_md")
METHODS_HINT = "Open this tab (or press “Compute Score-CAM”) to compare every method for this photo."


def methods_values(view: MethodsView) -> tuple[Any, ...]:
    """MethodsView -> (gallery of file paths, matrix HTML, statement). Titles are drawn into the tiles:
    Gradio's caption chips cut them to a dozen characters."""
    files = OutputFiles()
    gallery = []
    for i, (img, caption) in enumerate(view.tiles):
        titled = render.titled(img, caption, font_size=max(16, img.shape[1] // 14))
        gallery.append(files.jpeg(titled, f"method_{i}"))
    return gallery, view.matrix_html, view.statement_md


def empty_methods(note: str = METHODS_HINT) -> tuple[Any, ...]:
    return None, "", note


# ------------------------------------------------------------------------------------------------
# Faithfulness tab: deletion and insertion curves, Average Drop and Increase in Confidence.


def faithfulness_key(layer: str, target_index: int) -> tuple[str, int]:
    return layer, target_index


def ensure_faithfulness(
    session: Session,
    layer: str,
    target_index: int,
    methods: list[str],
    progress: Callable[[int, int], None] | None,
) -> Session:
    """The session with curves for ``methods`` and the random map, computing only missing ones."""
    key = faithfulness_key(layer, target_index)
    have = session.faithfulness.get(key)
    missing = [m for m in methods if have is None or m not in have.scores]
    need_random = have is None or RANDOM not in have.scores
    if not missing and not need_random:
        return session
    r = methods_explanation(session, layer).for_target(target_index)
    result = evaluate_maps(
        MODEL,
        session.image,
        {m: r.maps[m] for m in missing},
        target_index,
        n_steps=FAITHFULNESS_STEPS,
        random_seed=0 if need_random else None,
        progress=progress,
    )
    combined = result if have is None else replace(have, scores={**have.scores, **result.scores})
    return replace(session, faithfulness={**session.faithfulness, key: combined})


def faithfulness_plots(f: ImageFaithfulness, names: list[str], layer: str, class_name: str) -> str:
    """Deletion and insertion curves as two inline SVG charts (cam.plots), legends with the AUCs."""
    charts = []
    for kind, title, xlabel in (
        ("deletion", "Deletion: most salient pixels → black", "fraction of pixels deleted"),
        ("insertion", "Insertion: most salient pixels restored", "fraction of pixels restored"),
    ):
        series = {}
        for m in names:
            curve = getattr(f.scores[m], kind)
            series[f"{map_label(m, layer)} {curve.auc:.3f}"] = (curve.fractions.tolist(), curve.probabilities.tolist())
        svg = line_plot(series, title, xlabel, f"p({class_name})")
        charts.append(svg.replace("<svg ", '<svg style="max-width:100%;height:auto" ', 1))
    return (
        '<div id="faith-charts" style="display:flex;flex-wrap:wrap;gap:8px">'
        + "".join(f"<div>{c}</div>" for c in charts)
        + "</div>"
    )


def faithfulness_table(f: ImageFaithfulness, names: list[str], layer: str, class_name: str) -> str:
    """AUCs, Average Drop and Increase in Confidence per map, best values in bold, and a reading."""
    methods = [m for m in names if m != RANDOM]
    dele = {m: f.scores[m].deletion.auc for m in names}
    ins = {m: f.scores[m].insertion.auc for m in names}
    drop = {m: f.average_drop(m) for m in names}

    def fmt(v: float, best: float, spec: str) -> str:
        s = format(v, spec)
        return f"**{s}**" if methods and v == best else s

    best_del = min(dele[m] for m in methods) if methods else np.nan
    best_ins = max(ins[m] for m in methods) if methods else np.nan
    best_drop = min(drop[m] for m in methods) if methods else np.nan
    lines = [
        f"| Map ({layer}) | Deletion AUC ↓ | Insertion AUC ↑ | Average Drop % ↓ | Confidence increased? ↑ "
        f"| p({class_name}) on L·I |",
        "|---|---|---|---|---|---|",
    ]
    for m in names:
        lines.append(
            f"| {map_label(m, layer)} | {fmt(dele[m], best_del, '.3f')} | {fmt(ins[m], best_ins, '.3f')} "
            f"| {fmt(drop[m], best_drop, '.1f')} | {'yes' if f.increased(m) else 'no'} "
            f"| {f.scores[m].explanation_probability:.3f} |"
        )
    beat = [m for m in methods if dele[m] < dele[RANDOM] and ins[m] > ins[RANDOM]]
    reading = (
        f"p({class_name}) on the unchanged photo: **{f.probability:.3f}**. The random map scores "
        f"{dele[RANDOM]:.3f} (deletion) and {ins[RANDOM]:.3f} (insertion): chance level. "
    )
    if methods:
        reading += (
            f"Better than random on both curves here: {_join(map_label(m, layer) for m in beat)}."
            if beat
            else "No method beats the random map on both curves for this photo and class."
        )
    return "\n".join([reading, "", *lines])


FAITH_OUTPUT_NAMES = ("faith_plot", "faith_table", "faith_note")


def faith_note(class_name: str, layer: str, computed: bool) -> str:
    if computed:
        return (
            f"Class **{class_name}**, maps at **{layer}**, {FAITHFULNESS_STEPS} steps of "
            f"{INPUT_SIZE * INPUT_SIZE // FAITHFULNESS_STEPS:,} pixels."
        )
    return (
        f"Not computed yet for class **{class_name}** at **{layer}**: press “Compute faithfulness” "
        f"(about {faithfulness_passes(1):,} forward passes per map)."
    )


def faithfulness_passes(n_maps: int) -> int:
    return 3 + n_maps * (2 * (FAITHFULNESS_STEPS - 1) + 1)


def check_methods(selected: list[str] | None) -> list[str]:
    chosen = list(selected or [])
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise gr.Error(f"Unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}.")
    if not chosen:
        raise gr.Error("Tick at least one method to evaluate (the random map is always added for comparison).")
    return [m for m in METHODS_ORDER if m in chosen]


# ------------------------------------------------------------------------------------------------
# Event handlers (typed, wrapped so users only ever see clear messages).

ViewOutputs = tuple[Any, ...]


@user_errors
def on_explain(
    image: str | None,
    target: str,
    layer: str,
    opacity: float,
    colormap: str,
    shared_scale: bool,
    state: Session | None,
) -> ViewOutputs:
    """Upload, Explain button: needs an image."""
    if image is None:
        raise gr.Error("Upload a photo of a pot plant first (or pick an example below).")
    session = ensure_session(image, layer, state)
    return (*astuple(render_view(session, target, layer, opacity, colormap, shared_scale)), session)


@user_errors
def on_settings(
    image: str | None,
    target: str,
    layer: str,
    opacity: float,
    colormap: str,
    shared_scale: bool,
    state: Session | None,
) -> ViewOutputs:
    """Class, layer, opacity, colour map or scale changed: re-render, running the network only for a
    layer (or image) not seen before. Without an image there is nothing to update."""
    if image is None:
        return tuple(gr.skip() for _ in range(len(OUTPUT_NAMES) + 1))
    return on_explain(image, target, layer, opacity, colormap, shared_scale, state)


@user_errors
def on_example(image: str | None) -> ViewOutputs:
    """An example photo with the default settings (these outputs are cached lazily by Gradio)."""
    if image is None:
        raise gr.Error("The example photo is missing.")
    session = ensure_session(image, DEFAULT_LAYER, None)
    return astuple(render_view(session, PREDICTED, DEFAULT_LAYER, DEFAULT_OPACITY, DEFAULT_COLORMAP, False))


@user_errors
def after_example(
    image: str | None,
    target: str,
    layer: str,
    opacity: float,
    colormap: str,
    shared_scale: bool,
    state: Session | None,
) -> ViewOutputs:
    """After an example's cached outputs are shown: re-render only if the settings differ from the
    ones the cache was made with, so the page always matches its controls."""
    defaults = (PREDICTED, DEFAULT_LAYER, DEFAULT_OPACITY, DEFAULT_COLORMAP, False)
    if (target, layer, float(opacity), colormap, bool(shared_scale)) == defaults:
        return tuple(gr.skip() for _ in range(len(OUTPUT_NAMES) + 1))
    return on_settings(image, target, layer, opacity, colormap, shared_scale, state)


def on_clear() -> ViewOutputs:
    """The image was removed: empty every output and drop the session."""
    empty: list[Any] = [None] * len(OUTPUT_NAMES)
    for f in ("target_md", "cam_note", "gradcam_note", "compare_md"):
        empty[OUTPUT_NAMES.index(f)] = ""
    return (*empty, None)


# Methods and Faithfulness tabs. They follow every change of image, class, layer and display (chained
# after the main outputs); only their buttons, and opening the Methods tab, run the network.

TabOutputs = tuple[Any, ...]


def _skip(n: int) -> tuple[Any, ...]:
    return tuple(gr.skip() for _ in range(n))


def _cached_session(image: str, layer: str, state: Session | None) -> Session | None:
    """The session when it belongs to this image and has the main view at ``layer``; no network."""
    if layer not in LAYERS:
        raise gr.Error(f"Unknown layer {layer!r}; choose one of {', '.join(LAYERS)}.")
    if state is None or state.key != image_key(image) or layer not in state.by_layer:
        return None
    return state


def _target(target: str) -> str:
    return "predicted" if target == PREDICTED else target


@user_errors
def on_methods_view(
    image: str | None,
    target: str,
    layer: str,
    opacity: float,
    colormap: str,
    methods_open: bool,
    state: Session | None,
) -> TabOutputs:
    """Show every method for this class and layer. The methods are computed (one forward pass and the
    gradients) only while the Methods tab is open; otherwise cached maps are re-rendered, or the tab is
    emptied so that it never shows another photo's or layer's maps."""
    if image is None:
        return _skip(len(METHODS_OUTPUT_NAMES) + 1)
    cached = _cached_session(image, layer, state)
    if not methods_open and (cached is None or layer not in cached.methods):
        return (*empty_methods(), gr.skip())
    session = ensure_methods(ensure_session(image, layer, state), layer)
    r = methods_explanation(session, layer).for_target(_target(target))
    return (*methods_values(render_methods(r, layer, opacity, colormap)), session)


@user_errors
def on_scorecam(
    image: str | None,
    target: str,
    layer: str,
    opacity: float,
    colormap: str,
    state: Session | None,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio injects the request's tracker here)
) -> TabOutputs:
    """“Compute Score-CAM”: one forward pass per channel of ``layer``, every class read from them."""
    if image is None:
        raise gr.Error("Upload a photo of a pot plant first (or pick an example below).")
    session = ensure_session(image, layer, state)

    def report(done: int, total: int) -> None:
        progress((done, total), desc=f"Score-CAM at {layer}: masked forward passes", unit="passes")

    session = ensure_scorecam(session, layer, report)
    r = methods_explanation(session, layer).for_target(_target(target))
    return (*methods_values(render_methods(r, layer, opacity, colormap)), session)


def faith_values(session: Session, layer: str, r: Explanation, methods: list[str]) -> tuple[str, str, str]:
    """(charts HTML, table Markdown, note) from the session's cached curves."""
    f = session.faithfulness[faithfulness_key(layer, r.target_index)]
    names = [*methods, RANDOM]
    return (
        faithfulness_plots(f, names, layer, r.target),
        faithfulness_table(f, names, layer, r.target),
        faith_note(r.target, layer, computed=True),
    )


@user_errors
def on_faithfulness(
    image: str | None,
    target: str,
    layer: str,
    selected: list[str] | None,
    state: Session | None,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio injects the request's tracker here)
) -> TabOutputs:
    """“Compute faithfulness”: deletion and insertion curves of the ticked methods and the random map,
    in batched forward passes; curves already computed for this photo, class and layer are reused."""
    if image is None:
        raise gr.Error("Upload a photo of a pot plant first (or pick an example below).")
    methods = check_methods(selected)
    session = ensure_methods(ensure_session(image, layer, state), layer)
    if any(m in EXPENSIVE_METHODS for m in methods):

        def report_scorecam(done: int, total: int) -> None:
            progress((done, total), desc=f"Score-CAM at {layer} first: masked forward passes", unit="passes")

        session = ensure_scorecam(session, layer, report_scorecam)
    r = session.by_layer[layer].for_target(_target(target))

    def report(done: int, total: int) -> None:
        progress((done, total), desc=f"Deletion and insertion curves for {r.target}", unit="forward passes")

    session = ensure_faithfulness(session, layer, r.target_index, methods, report)
    return (*faith_values(session, layer, r, methods), session)


@user_errors
def on_faithfulness_view(
    image: str | None, target: str, layer: str, selected: list[str] | None, state: Session | None
) -> TabOutputs:
    """Show cached curves for this photo, class, layer and selection, or say how to compute them.
    Never runs the network."""
    if image is None:
        return _skip(len(FAITH_OUTPUT_NAMES))
    cached = _cached_session(image, layer, state)
    if cached is None:
        return "", "", "Press “Compute faithfulness” to evaluate the maps of this photo."
    r = cached.by_layer[layer].for_target(_target(target))
    methods = [m for m in METHODS_ORDER if m in (selected or [])]
    f = cached.faithfulness.get(faithfulness_key(layer, r.target_index))
    if f is None or not methods or any(m not in f.scores for m in methods):
        return "", "", faith_note(r.target, layer, computed=False)
    return faith_values(cached, layer, r, methods)


def on_clear_tabs() -> TabOutputs:
    """The image was removed: empty the Methods and Faithfulness tabs."""
    return (*empty_methods(""), "", "", "")


@user_errors
def explain_api(image: str | None, target: str, method: str, layer: str) -> tuple[str, dict[str, Any], str]:
    """Explain one photo: (overlay image as a JPEG file, JSON summary, raw map as .npy).

    target: "predicted" or a class name; method: one of cam.methods.METHODS; layer: conv1, conv2 or
    conv3 (CAM exists only at conv3).
    """
    if image is None:
        raise gr.Error("No image was sent. Pass handle_file(path) as `image`.")
    methods = (method,) if method == "cam" else (method, "cam")  # CAM too, for the logit check
    layers = {method: layer, "cam": GAP_LAYER} if method != "cam" else {"cam": layer}
    r = explain(MODEL, image, target=target, methods=methods, layer=layers)
    raw = r.maps[method]
    photo = _photo(r)
    evidence = r.has_positive_evidence(method)
    if evidence:
        picture = render.overlay(photo, render.scale_map(raw), alpha=DEFAULT_OPACITY)
    else:
        picture = render.muted(photo, f"No positive evidence for {r.target}")
    mean_plus_bias, logit = r.logit_check()
    summary: dict[str, Any] = {
        "target": r.target,
        "predicted": r.predicted,
        "probabilities": r.probabilities,
        "method": method,
        "layer": r.layers[method],
        "has_positive_evidence": evidence,
        "map_min": float(raw.min()),
        "map_max": float(raw.max()),
        "map_shape": list(raw.shape),
        "logit": logit,
        "mean_cam_plus_bias": mean_plus_bias,
        "image_size": list(r.image.original_size) if r.image is not None else None,
        "model": {
            "source": MODEL.provenance.source,
            "sha256": MODEL.provenance.sha256,
            "is_demo_model": MODEL.provenance.is_demo_model,
        },
    }
    files = OutputFiles()
    stem = f"{method}_{r.target}_{r.layers[method]}"
    return files.jpeg(picture, f"overlay_{stem}"), summary, files.write(npy_bytes(raw), f"{stem}.npy")


VIEW_FIELDS: tuple[str, ...] = tuple(View.__dataclass_fields__)
VIEW_META = ("target", "layer")  # View fields that name the output files, not outputs themselves
# The page's outputs: every View field, with All classes spread over one image per class.
OUTPUT_NAMES: tuple[str, ...] = (
    *(f for f in VIEW_FIELDS if f not in ("all_classes", *VIEW_META)),
    *(f"class_{i}" for i in range(len(MODEL.class_names))),
)


def astuple(view: View) -> tuple[Any, ...]:
    """View -> output values in the order of OUTPUT_NAMES, every picture encoded into a fresh file
    (`OutputFiles`): JPEG for photos and overlays, PNG for figures with text and colour bars."""
    files = OutputFiles()
    stem = f"{view.target}_{view.layer}"
    photo = files.jpeg(view.cam_slider[0], "photo")  # both sliders show the same photo
    encoded: dict[str, Any] = {
        "cam_slider": (photo, files.jpeg(view.cam_slider[1], f"cam_overlay_{view.target}")),
        "gradcam_slider": (photo, files.jpeg(view.gradcam_slider[1], f"gradcam_overlay_{stem}")),
        "cam_heatmap": files.png(view.cam_heatmap, f"cam_raw_{view.target}"),
        "gradcam_heatmap": files.png(view.gradcam_heatmap, f"gradcam_raw_{stem}"),
    }
    values = [encoded.get(f, getattr(view, f)) for f in VIEW_FIELDS if f not in ("all_classes", *VIEW_META)]
    # Captions are drawn into the pictures: example caching in Gradio 6.31 fails on gr.update outputs.
    for i, (img, caption) in enumerate(view.all_classes):
        titled = top_margin(render.titled(img, caption, font_size=max(14, img.shape[1] // 22)), 24)
        values.append(files.jpeg(titled, f"all_classes_{i}"))
    return tuple(values)


# ------------------------------------------------------------------------------------------------
# Page text


def provenance_markdown(p: Provenance) -> str:
    """The banner: which checkpoint serves this page, and plainly when it is the demo model."""
    sha = f"sha256 `{p.sha256}`"
    if p.is_demo_model:
        reason = f" Why: {p.fallback_reason}" if p.fallback_reason else " (requested explicitly)."
        return (
            "⚠️ **Offline demo model.** The maps on this page come from an offline demo model trained on "
            "synthetic pot plants, not from the course's model trained on photos; the course model loads "
            f"from the Hugging Face Hub when the network allows.{reason}  \n"
            f"File `{Path(p.path).name}`, {sha}."
        )
    if p.source in ("hub", "cache"):
        commit = f", commit `{p.commit[:12]}`" if p.commit else ""
        return (
            f"**Model:** the course's GAP pot-plant classifier from the Hugging Face Hub: "
            f"`{p.repo_id}`, file `{p.filename}`{commit}"
            f"{' (from the local cache)' if p.source == 'cache' else ''}; {sha}."
        )
    return f"**Model:** local checkpoint `{Path(p.path).name}`, {sha}."


INTRO = f"""# {TITLE}
Which pixels make the course's pot-plant classifier say **rudo**, **baya**, **greg** or **yuki**?
Upload a photo (or paste one, or pick an example), choose a class, and compare **CAM** with
**Grad-CAM**. For this network the two are the same map at `conv3`; the **Compare** tab proves it
with numbers, and shows why they part ways at earlier layers. **Methods** puts six more CAM-family methods
beside them; **Faithfulness** measures which maps point at what the model needs."""

ABOUT = """
### What you are looking at
**The model.** A small convolutional network from the XAI-for-CV course: three 3×3 convolutions with
ReLU (16, 32 and 64 channels, no pooling, so every feature map stays 256×256), **global average
pooling (GAP)**, and one linear layer to four classes: rudo, baya, greg, yuki. 23,844 parameters.
Each feature-map pixel sees only a 7×7 patch of the photo, so the model can only use local colour and
texture. Photos are squashed to 256×256 (no crop), as in the course.

**CAM** (Zhou et al., 2016). GAP turns each of the 64 feature maps A<sup>k</sup> of `conv3` into one
number F<sup>k</sup> = mean<sub>x,y</sub> A<sup>k</sup>(x, y), and the class score is

  y<sub>c</sub> = Σ<sub>k</sub> w<sup>c</sup><sub>k</sub> F<sup>k</sup> + b<sub>c</sub>.

Moving the sum inside the mean gives the class activation map
M<sub>c</sub>(x, y) = Σ<sub>k</sub> w<sup>c</sup><sub>k</sub> A<sup>k</sup>(x, y), and
**mean(M<sub>c</sub>) + b<sub>c</sub> = y<sub>c</sub>** exactly: the map is the class score spread over
the image. Positive values push towards the class, negative ones against it.

**Grad-CAM** (Selvaraju et al., 2017) needs no GAP: it weights the channels of any layer by the
average gradient, α<sup>c</sup><sub>k</sub> = mean<sub>x,y</sub> ∂y<sub>c</sub>/∂A<sup>k</sup>(x, y),
and shows ReLU(Σ<sub>k</sub> α<sup>c</sup><sub>k</sub> A<sup>k</sup>).

**Why they coincide here.** At `conv3`, ∂y<sub>c</sub>/∂A<sup>k</sup>(x, y) = w<sup>c</sup><sub>k</sub> / (H·W)
at every pixel, so Grad-CAM = CAM / 65,536: the same map up to a positive factor, identical after ReLU and
min-max scaling. At `conv1` or `conv2` the gradient varies over the image and the maps differ.

**How to read the pictures.** Overlays show ReLU(map) scaled to 0–1 over the photo (drag the slider to
compare with the photo). The *raw* heatmaps show the map before ReLU with its real value range. A class
with no positive value anywhere has **no positive evidence**: the page says so instead of showing a
blank map. The course noticed that the model leans on the **pot**: watch where the maps light up.

**This demo.** Maps are computed at the model's 256×256 input and drawn over the photo at most
1024 pixels on its long side. Downloads: the comparison figure (PNG) and the raw float32 maps (.npy,
256×256, before ReLU).

### References
- B. Zhou, A. Khosla, A. Lapedriza, A. Oliva, A. Torralba. *Learning Deep Features for Discriminative
  Localization.* CVPR 2016.
- R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra. *Grad-CAM: Visual Explanations
  from Deep Networks via Gradient-based Localization.* ICCV 2017.
- V. Petsiuk, A. Das, K. Saenko. *RISE: Randomized Input Sampling for Explanation of Black-box Models.*
  BMVC 2018 (deletion and insertion curves).
- A. Chattopadhay, A. Sarkar, P. Howlader, V. N. Balasubramanian. *Grad-CAM++: Generalized Gradient-Based
  Visual Explanations for Deep Convolutional Networks.* WACV 2018 (also Average Drop, Increase in Confidence).
- The other methods of the **Methods** tab are listed there with their papers.

### Data
Pot Plant Dataset, Conor O'Sullivan (2024), licensed CC BY 4.0: photos of four house plants named rudo,
baya, greg and yuki, used by the course to train its model.
"""

CSS = """
#provenance {border-left: 4px solid var(--color-accent); padding-left: 0.75em;}
#explained-class h3 {margin: 0.2em 0;}
.cam-note {color: var(--body-text-color);}
"""

# ------------------------------------------------------------------------------------------------
# The page. Tabs are built by small functions so new ones (Methods, Faithfulness) slot in.


@dataclass
class Outputs:
    """The output components by name; `view` lists them in OUTPUT_NAMES order."""

    components: dict[str, gr.components.Component]

    def view(self) -> list[gr.components.Component]:
        return [self.components[f] for f in OUTPUT_NAMES]


def build_map_tab(out: dict[str, gr.components.Component], method: str, name: str, intro: str) -> None:
    """The CAM and Grad-CAM tabs: photo-vs-overlay slider and the raw map with its colour bar."""
    gr.Markdown(intro)
    out[f"{method}_note"] = gr.Markdown(elem_id=f"{method}-note", elem_classes="cam-note")
    with gr.Row():
        out[f"{method}_slider"] = gr.ImageSlider(
            label=f"Photo ↔ {name} overlay", format="jpeg", elem_id=f"{method}-slider", max_height=520, scale=3
        )
        out[f"{method}_heatmap"] = gr.Image(
            label=f"Raw {name} map",
            show_label=False,
            format="png",
            elem_id=f"{method}-heatmap",
            interactive=False,
            scale=2,
        )


def build_cam_tab(out: dict[str, gr.components.Component]) -> None:
    intro = "CAM of `conv3` over the photo (drag the slider), and the raw map with its value range."
    build_map_tab(out, "cam", "CAM", intro)


def build_gradcam_tab(out: dict[str, gr.components.Component]) -> None:
    intro = "Grad-CAM at the layer chosen on the left (`conv3` is the CAM layer: there Grad-CAM equals CAM)."
    build_map_tab(out, "gradcam", "Grad-CAM", intro)


def build_compare_tab(out: dict[str, gr.components.Component]) -> None:
    out["compare_image"] = gr.Image(
        label="CAM vs Grad-CAM", show_label=False, format="png", elem_id="compare-image", interactive=False
    )
    out["compare_md"] = gr.Markdown(elem_id="compare-numbers")
    with gr.Row():
        out["compare_png"] = gr.DownloadButton("Comparison (PNG)", elem_id="download-compare", size="sm")
        out["cam_npy"] = gr.DownloadButton("Raw CAM map (.npy)", elem_id="download-cam", size="sm")
        out["gradcam_npy"] = gr.DownloadButton("Raw Grad-CAM map (.npy)", elem_id="download-gradcam", size="sm")


def build_all_classes_tab(out: dict[str, gr.components.Component]) -> gr.Checkbox:
    gr.Markdown(
        "CAM of every class from the same forward pass, with its probability. By default each map is "
        "scaled on its own (where would the model look for this class?); tick the box to put all four "
        "on one scale (how much evidence is there for each?)."
    )
    shared = gr.Checkbox(label="One colour scale for all four classes", value=False, elem_id="shared-scale")
    with gr.Group(elem_id="all-classes"):
        for row in range(0, len(MODEL.class_names), 2):
            with gr.Row():
                for i, name in list(enumerate(MODEL.class_names))[row : row + 2]:
                    out[f"class_{i}"] = gr.Image(
                        label=name,
                        show_label=False,
                        format="jpeg",
                        interactive=False,
                        elem_id=f"class-{name}",
                        min_width=200,
                        buttons=["fullscreen", "download"],
                    )
    return shared


METHODS_INTRO = f"""Every CAM-family method for the class and layer chosen on the left, over the photo (ReLU, then
each map scaled to 0–1 on its own), and how alike their raw maps are. At `{GAP_LAYER}` several methods
turn out to be CAM up to a positive factor; at `conv1` and `conv2` they part ways. Score-CAM runs the
network once per channel of the layer (16 at `conv1`, 32 at `conv2`, 64 at `conv3`), so it waits for its
button."""

FAITH_INTRO = f"""**Does the map point at what the model needs?** (Petsiuk et al., 2018) *Deletion* blacks out
the photo's pixels in the map's order, most salient first, and tracks the probability of the class; a
faithful map makes it **fall fast: lower deletion AUC is better**. *Insertion* starts from a blurred
copy and restores pixels in the same order: the probability should **rise fast: higher insertion AUC is
better**. A **random map** gives the chance level. *Average Drop* (Chattopadhay et al., 2018) shows the
model only the map's highlighted part, L·I (L = the scaled map): how much of the class's probability is
lost (lower is better); *Increase in Confidence* asks whether the probability went up instead (over a
set of images it is a percentage; for one photo, yes or no). Each map costs
{2 * (FAITHFULNESS_STEPS - 1) + 1} forward passes, so this runs on the button."""


def build_methods_tab(out: dict[str, gr.components.Component]) -> gr.Button:
    gr.Markdown(METHODS_INTRO)
    out["methods_gallery"] = gr.Gallery(
        label="Every method",
        show_label=False,
        columns=4,
        rows=2,
        height="auto",
        object_fit="contain",
        elem_id="methods-gallery",
        format="jpeg",
        interactive=False,
        buttons=["fullscreen"],
    )
    scorecam_btn = gr.Button("Compute Score-CAM", elem_id="compute-scorecam", size="sm")
    out["methods_md"] = gr.Markdown(METHODS_HINT, elem_id="methods-statement")
    out["methods_matrix"] = gr.HTML(elem_id="methods-matrix")
    gr.Markdown(METHODS_REFERENCES, elem_id="methods-references")
    return scorecam_btn


def build_faithfulness_tab(out: dict[str, gr.components.Component]) -> tuple[gr.CheckboxGroup, gr.Button]:
    gr.Markdown(FAITH_INTRO)
    with gr.Row(equal_height=True):
        chosen = gr.CheckboxGroup(
            [(METHOD_NAMES[m], m) for m in METHODS_ORDER],
            value=list(FAITHFULNESS_DEFAULT),
            label="Maps to evaluate (the random map is always added)",
            elem_id="faith-methods",
            scale=4,
        )
        button = gr.Button("Compute faithfulness", variant="primary", elem_id="compute-faith", scale=1)
    out["faith_note"] = gr.Markdown(elem_id="faith-note")
    out["faith_plot"] = gr.HTML(elem_id="faith-plot")
    out["faith_table"] = gr.Markdown(elem_id="faith-table")
    return chosen, button


def build_about_tab() -> None:
    gr.Markdown(ABOUT, elem_id="about")


def _set_methods_open(value: bool) -> Callable[[], bool]:
    def set_open() -> bool:
        return value

    return set_open


with gr.Blocks(title=TITLE, delete_cache=DELETE_CACHE) as demo:
    gr.Markdown(INTRO)
    gr.Markdown(provenance_markdown(MODEL.provenance), elem_id="provenance")
    out: dict[str, gr.components.Component] = {}
    state = gr.State(None, time_to_live=STATE_TTL_S)
    methods_open = gr.State(False)  # is the Methods tab the one shown? (it computes only when it is)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            image_in = image_input(
                label="Photo of a pot plant",
                sources=["upload", "clipboard", "webcam"],
                elem_id="input-image",
                height=320,
            )
            examples_slot = gr.Column()  # filled below, once the outputs the examples write to exist
            target_in = gr.Dropdown(
                [PREDICTED, *MODEL.class_names],
                value=PREDICTED,
                label="Class to explain",
                elem_id="target",
                info="“Predicted class” follows the model; pick a class to see the evidence for it.",
            )
            layer_in = gr.Radio(
                list(LAYERS),
                value=DEFAULT_LAYER,
                label="Grad-CAM layer",
                elem_id="layer",
                info="conv3 feeds global average pooling: the CAM layer.",
            )
            opacity_in = gr.Slider(
                0.0,
                1.0,
                value=DEFAULT_OPACITY,
                step=0.05,
                label="Overlay opacity",
                elem_id="opacity",
                info="0 shows the photo, 1 only the map.",
            )
            cmap_in = gr.Dropdown(
                list(render.COLORMAPS), value=DEFAULT_COLORMAP, label="Colour map", elem_id="colormap"
            )
            explain_btn = gr.Button("Explain", variant="primary", elem_id="explain")
        with gr.Column(scale=3, min_width=320):
            out["target_md"] = gr.Markdown(elem_id="explained-class")
            out["prediction"] = gr.Label(label="Class probabilities", num_top_classes=4, elem_id="prediction")
            with gr.Tabs(elem_id="tabs") as tabs:
                with gr.Tab("CAM", id="tab-cam"):
                    build_cam_tab(out)
                with gr.Tab("Grad-CAM", id="tab-gradcam"):
                    build_gradcam_tab(out)
                with gr.Tab("Compare", id="tab-compare"):
                    build_compare_tab(out)
                with gr.Tab("All classes", id="tab-all"):
                    shared_in = build_all_classes_tab(out)
                with gr.Tab("Methods", id=METHODS_TAB) as methods_tab:
                    scorecam_btn = build_methods_tab(out)
                with gr.Tab("Faithfulness", id="tab-faith"):
                    faith_methods_in, faith_btn = build_faithfulness_tab(out)
                with gr.Tab("About", id="tab-about"):
                    build_about_tab()

    outputs = Outputs(out)
    view_outputs = outputs.view()
    controls = [image_in, target_in, layer_in, opacity_in, cmap_in, shared_in, state]
    common: dict[str, Any] = {"concurrency_id": CONCURRENCY_ID, "api_visibility": "private"}

    methods_outputs = [out[f] for f in METHODS_OUTPUT_NAMES]
    faith_outputs = [out[f] for f in FAITH_OUTPUT_NAMES]
    methods_inputs = [image_in, target_in, layer_in, opacity_in, cmap_in, methods_open, state]
    faith_inputs = [image_in, target_in, layer_in, faith_methods_in, state]

    def follow(event: Any) -> None:
        """After the main outputs: bring the Methods and Faithfulness tabs up to date (both read the
        new state; only the Methods view writes it, so the two may run side by side)."""
        event.success(on_methods_view, methods_inputs, [*methods_outputs, state], show_progress="minimal", **common)
        event.success(
            on_faithfulness_view, faith_inputs, faith_outputs, show_progress="hidden", api_visibility="private"
        )  # no network: outside the model's concurrency group

    follow(explain_btn.click(on_explain, controls, [*view_outputs, state], **common))
    follow(image_in.upload(on_explain, controls, [*view_outputs, state], **common))
    for trigger in (target_in.input, layer_in.input, cmap_in.input, shared_in.input, opacity_in.release):
        event = trigger(on_settings, controls, [*view_outputs, state], show_progress="minimal", **common)
        if trigger != shared_in.input:  # the shared scale only affects the All-classes tab
            follow(event)
    image_in.clear(on_clear, None, [*view_outputs, state], api_visibility="private", queue=False)
    image_in.clear(on_clear_tabs, None, [*methods_outputs, *faith_outputs], api_visibility="private", queue=False)

    # Opening the Methods tab computes its maps (once per photo and layer); other tabs only mark it closed.
    for tab_item in tabs.children:
        if isinstance(tab_item, gr.Tab):
            opened = tab_item.select(
                _set_methods_open(tab_item is methods_tab), None, methods_open, queue=False, api_visibility="private"
            )
            if tab_item is methods_tab:
                opened.then(on_methods_view, methods_inputs, [*methods_outputs, state], **common)
    scorecam_btn.click(
        on_scorecam, [image_in, target_in, layer_in, opacity_in, cmap_in, state], [*methods_outputs, state], **common
    )
    faith_btn.click(on_faithfulness, faith_inputs, [*faith_outputs, state], **common)
    faith_methods_in.change(
        on_faithfulness_view, faith_inputs, faith_outputs, show_progress="hidden", api_visibility="private"
    )

    if EXAMPLES:
        with examples_slot:
            examples = gr.Examples(
                examples=[[str(e.path)] for e in EXAMPLES],
                inputs=[image_in],
                outputs=view_outputs,
                fn=on_example,
                cache_examples=True,
                cache_mode="lazy",
                label="Examples: synthetic pot plants drawn by cam.synthetic (click one)",
                examples_per_page=12,
                api_visibility="private",
            )
        if examples.cache_event is not None:
            # The first click on an example runs the model: same concurrency group as everything else.
            demo.fns[examples.cache_event["id"]].concurrency_id = CONCURRENCY_ID
            follow(
                examples.cache_event.then(
                    after_example, controls, [*view_outputs, state], show_progress="hidden", **common
                )
            )

    # The API: hidden components, one public endpoint.
    with gr.Column(visible=False):
        api_image = image_input(label="image")
        api_target = gr.Dropdown(["predicted", *MODEL.class_names], value="predicted", label="target")
        api_method = gr.Dropdown(list(METHODS), value="cam", label="method")
        api_layer = gr.Dropdown(list(LAYERS), value=DEFAULT_LAYER, label="layer")
        api_overlay = gr.Image(label="overlay", format="jpeg")
        api_summary = gr.JSON(label="summary")
        api_map = gr.File(label="raw map (.npy)")
        api_button = gr.Button("explain")
    api_button.click(
        explain_api,
        [api_image, api_target, api_method, api_layer],
        [api_overlay, api_summary, api_map],
        api_name="explain",
        concurrency_id=CONCURRENCY_ID,
    )

demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=CONCURRENCY_LIMIT)

LAUNCH_KWARGS: dict[str, Any] = {
    "max_file_size": MAX_FILE_SIZE,
    "show_error": False,  # gr.Error messages still reach users; internal errors stay in the log
    "ssr_mode": False,
    "theme": gr.themes.Soft(),
    "css": CSS,
    "state_session_capacity": STATE_SESSIONS,
}

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    demo.launch(**LAUNCH_KWARGS)
