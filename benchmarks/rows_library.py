"""P4, P14, P15, in process: image loading, the sanity check and hide-and-see, each against a plain
baseline on the same machine in the same run.

P14 and P15 are counted in forward passes: B is one bare forward pass of the same model on the same
input (under ``no_grad``), so ``ratio`` reads "costs this many forward passes' worth of time".
The features they time are new (``cam.sanity``, ``cam.hide``); while a module or function is missing
the row says "not available" instead of failing.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmarks.fixtures import bench_model, photo_like
from benchmarks.harness import Row, Settings, interleaved, unavailable
from cam import explain
from cam.images import load_image

TARGETS = {"P4": 0.45, "P14": 10.0, "P15": 2.0}


def rows_load(s: Settings, files: dict[str, Path]) -> list[Row]:
    path = files["jpeg12mp"]

    def ours() -> object:
        return load_image(path, display_max_side=None)

    def ours_display() -> object:
        return load_image(path)  # what the app does: model input and a 1024 px display copy

    def plain() -> object:
        with Image.open(path) as im:
            return im.convert("RGB").resize((256, 256), Image.Resampling.BILINEAR)

    a, d, b = interleaved([ours, ours_display, plain], s.repeats, s.warmup)
    row = Row(
        "P4",
        "12 MP JPEG to model input",
        "load_image(path, display_max_side=None)",
        "Image.open + convert(RGB) + resize((256, 256), BILINEAR)",
        "ms",
        "<=",
        TARGETS["P4"],
    ).finish(a.wall_ms, b.wall_ms, s.repeats, a.cpu_ms / b.cpu_ms)
    row.extra = {"load_image_with_1024_display_ms": d.wall_ms, "file_bytes": path.stat().st_size}
    row.notes.append(f"with the 1024 px display copy (the app's call): {d.wall_ms:.1f} ms")
    return [row]


def find_function(module: str, name: str) -> Callable[..., Any] | str:
    """``module.name`` or the reason it cannot be used yet."""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        return f"{module} cannot be imported ({exc})"
    fn = getattr(mod, name, None)
    if not callable(fn):
        return f"{module} has no {name}()"
    return fn


def call_with(fn: Callable[..., Any], options: dict[str, Any], *args: Any) -> Any:
    """Call ``fn(*args, **options)`` passing only the options its signature names."""
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return fn(*args, **{k: v for k, v in options.items() if takes_any or k in params})


def _forward_rows(
    s: Settings,
    rid: str,
    title: str,
    a_text: str,
    module_name: str,
    fn_name: str,
    options: dict[str, Any],
    make_args: Callable[[Any, Any], tuple[Any, ...]],
    make_options: Callable[[Any, Any], dict[str, Any]] | None = None,
) -> Row:
    fn = find_function(module_name, fn_name)
    if isinstance(fn, str):
        return unavailable(rid, title, TARGETS[rid], fn, unit="ms")
    model = bench_model()
    loaded = load_image(photo_like(256, 256, seed=3))
    x = loaded.tensor()
    args = make_args(model, loaded)
    options = {**options, **(make_options(model, loaded) if make_options else {})}  # computed once, untimed

    def ours() -> object:
        return call_with(fn, options, *args)

    def forward() -> object:
        with torch.no_grad():
            return model.module(x)

    repeats = max(3, s.repeats // 4) if rid == "P14" else s.repeats  # the sanity check is the slow one
    a, b = interleaved([ours, forward], repeats, max(1, s.warmup // 2))
    row = Row(
        rid,
        title,
        a_text,
        "one bare forward pass, 256x256, no_grad",
        "ms",
        "<=",
        TARGETS[rid],
        threads=torch.get_num_threads(),
    ).finish(a.wall_ms, b.wall_ms, repeats, a.cpu_ms / b.cpu_ms)
    row.notes.append(f"ratio = cost in forward passes; options passed: {sorted(options)}")
    return row


def centre_mask(side: int = 256, box: int = 96) -> np.ndarray:
    """A painted square in the middle of the photo: white (True) where hidden."""
    mask = np.zeros((side, side), bool)
    lo = (side - box) // 2
    mask[lo : lo + box, lo : lo + box] = True
    return mask


def rows_features(s: Settings, wanted: set[str]) -> list[Row]:
    rows = []
    if "P14" in wanted:
        rows.append(
            _forward_rows(
                s,
                "P14",
                "sanity check (cascading randomization), one method, in forward passes",
                "cam.sanity.cascading_randomization, Grad-CAM at conv3",
                "cam.sanity",
                "cascading_randomization",
                {"methods": ("gradcam",), "layer": "conv3", "target": "predicted"},
                lambda model, loaded: (model, loaded),
            )
        )
    if "P15" in wanted:
        rows.append(
            _forward_rows(
                s,
                "P15",
                "hide-and-see, a new painting on the explained photo, in forward passes",
                "cam.hide.hide_region, a 96x96 square in the middle, the explanation's logits (the app's call)",
                "cam.hide",
                "hide_region",
                {"target": "predicted"},
                lambda model, loaded: (model, loaded, centre_mask()),
                # The app has explained the photo before any painting: each painting runs one pass.
                lambda model, loaded: {"logits_before": explain(model, loaded, methods=("cam",)).logits},
            )
        )
        rows[-1].notes.append("without the explanation's logits (a photo never explained): one more forward pass")
    return rows
