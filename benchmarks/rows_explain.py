"""P1-P3, in process: `cam.explain` against a bare forward pass, torchcam and captum.

Fairness: every baseline gets its own copy of the same weights, the same input tensor and the same
class, through its documented API; where a baseline has a cheaper legitimate use, it gets it
(torchcam's CAM forward runs under ``no_grad``; P2-shared gives torchcam both extractors on one
forward). Each row also records the correlation between our map and the baseline's, to show that
both sides computed the same thing.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from benchmarks.fixtures import bench_model, photo_like
from benchmarks.harness import Row, Settings, interleaved, torch_threads, unavailable
from cam.explain import explain
from cam.images import load_image

CAM_LAYER = "conv_layers.5"  # the GAP layer's module path (alias conv3)
TARGETS = {"P1": 1.3, "P2": 0.6, "P2-shared": 0.8, "P3-torchcam": 0.9, "P3-captum": 0.75}


def maps_agree(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Pearson correlation of ReLU'd maps: a sanity check that both sides computed the same thing."""
    a = np.maximum(ours, 0).ravel().astype(np.float64)
    b = np.maximum(theirs, 0).ravel().astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return float(np.allclose(a, b))
    return float(np.corrcoef(a, b)[0, 1])


class Baselines:
    """The peers' callables on their own copies of the weights; missing packages leave notes."""

    def __init__(self, module: torch.nn.Module, x: torch.Tensor, cls: int, wanted: set[str]) -> None:
        self.torchcam: dict[str, Callable[[], object]] = {}
        self.captum: Callable[[], object] | None = None
        self.notes: list[str] = []
        self.outputs: dict[str, Any] = {}
        if wanted & {"P2", "P3"}:
            self._torchcam(module, x, cls)
        if "P3" in wanted:
            self._captum(module, x, cls)

    def _torchcam(self, module: torch.nn.Module, x: torch.Tensor, cls: int) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from torchcam.methods import CAM, GradCAM
        except ImportError as exc:
            self.notes.append(f"torchcam not importable ({exc})")
            return
        tc = copy.deepcopy(module)  # their own copy of the same weights, in eval mode

        def two_forwards() -> object:
            # torchcam's documented pattern: one extractor per forward (a `with` block around both).
            # CAM needs no autograd; let its forward run without a graph (its cheapest correct use).
            with CAM(tc, target_layer=CAM_LAYER, fc_layer="fc.1") as ex, torch.no_grad():
                cam_map = ex(cls, tc(x))
            with GradCAM(tc, target_layer=CAM_LAYER) as ex2:
                return cam_map, ex2(cls, tc(x))

        def shared_forward() -> object:
            # Both extractors hooked on one forward pass: the cheapest way to get both maps from torchcam.
            with CAM(tc, target_layer=CAM_LAYER, fc_layer="fc.1") as ex, GradCAM(tc, target_layer=CAM_LAYER) as ex2:
                out = tc(x)
                return ex(cls, out), ex2(cls, out)

        def gradcam() -> object:
            with GradCAM(tc, target_layer=CAM_LAYER) as ex:
                return ex(cls, tc(x))

        self.torchcam = {"two": two_forwards, "shared": shared_forward, "gradcam": gradcam}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.outputs["torchcam"] = shared_forward()

    def _captum(self, module: torch.nn.Module, x: torch.Tensor, cls: int) -> None:
        try:
            from captum.attr import LayerGradCam
        except ImportError as exc:
            self.notes.append(f"captum not importable ({exc})")
            return
        cp = copy.deepcopy(module)
        lgc = LayerGradCam(cp, cp.get_submodule(CAM_LAYER))

        def captum_gradcam() -> object:
            return lgc.attribute(x, target=cls)

        self.captum = captum_gradcam
        self.outputs["captum"] = captum_gradcam()


def rows_explain(s: Settings, wanted: set[str]) -> list[Row]:
    model = bench_model()
    module = model.module
    loaded = load_image(photo_like(256, 256, seed=2))
    x = loaded.tensor()  # (1, 3, 256, 256)
    with torch.no_grad():
        cls = int(module(x).argmax())

    def ours_pair() -> object:
        return explain(model, loaded, methods=("cam", "gradcam"))

    def ours_gradcam() -> object:
        return explain(model, loaded, methods=("gradcam",))

    def bare() -> object:
        with torch.no_grad():
            return module(x)

    peers = Baselines(module, x, cls, wanted)
    ours = explain(model, loaded, target=cls, methods=("cam", "gradcam")).maps
    agree: dict[str, float] = {}
    if "torchcam" in peers.outputs:
        tc_c, tc_g = peers.outputs["torchcam"]
        agree["torchcam cam"] = maps_agree(ours["cam"], tc_c[0][0].numpy())
        agree["torchcam gradcam"] = maps_agree(ours["gradcam"], tc_g[0][0].numpy())
    if "captum" in peers.outputs:
        agree["captum gradcam"] = maps_agree(ours["gradcam"], peers.outputs["captum"].detach()[0, 0].numpy())
    missing = "; ".join(peers.notes)

    rows: list[Row] = []
    for n in s.threads:
        with torch_threads(n), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            threads = torch.get_num_threads()
            tag = f"{threads} thread" + ("s" if threads != 1 else "")
            if "P1" in wanted:
                a, b = interleaved([ours_pair, bare], s.repeats, s.warmup)
                rows.append(
                    Row(
                        f"P1.t{threads}",
                        f"CAM+Grad-CAM vs bare forward ({tag})",
                        "explain(methods=(cam, gradcam)), conv3, 256x256 LoadedImage",
                        "module(x) under no_grad",
                        "ms",
                        "<=",
                        TARGETS["P1"],
                        threads=threads,
                    ).finish(a.wall_ms, b.wall_ms, s.repeats, a.cpu_ms / b.cpu_ms)
                )
            if "P2" in wanted:
                rows += _p2(s, threads, tag, ours_pair, peers, agree, missing)
            if "P3" in wanted:
                rows += _p3(s, threads, tag, ours_gradcam, peers, agree, missing)
    return rows


def _p2(
    s: Settings,
    threads: int,
    tag: str,
    ours: Callable[[], object],
    peers: Baselines,
    agree: dict[str, float],
    missing: str,
) -> list[Row]:
    if not peers.torchcam:
        return [
            unavailable(f"P2.t{threads}", "CAM+Grad-CAM vs torchcam, two forwards", TARGETS["P2"], missing),
            unavailable(
                f"P2-shared.t{threads}", "CAM+Grad-CAM vs torchcam, one forward", TARGETS["P2-shared"], missing
            ),
        ]
    a, two, shared = interleaved([ours, peers.torchcam["two"], peers.torchcam["shared"]], s.repeats, s.warmup)
    correlation = {k: v for k, v in agree.items() if "torchcam" in k}
    p2 = Row(
        f"P2.t{threads}",
        f"CAM+Grad-CAM vs torchcam 0.5.0, two forwards ({tag})",
        "explain(methods=(cam, gradcam)), same class",
        "torchcam CAM (forward under no_grad) then GradCAM, one extractor per forward",
        "ms",
        "<=",
        TARGETS["P2"],
        threads=threads,
    ).finish(a.wall_ms, two.wall_ms, s.repeats, a.cpu_ms / two.cpu_ms)
    shared_row = Row(
        f"P2-shared.t{threads}",
        f"CAM+Grad-CAM vs torchcam 0.5.0, one shared forward ({tag})",
        "explain(methods=(cam, gradcam)), same class",
        "torchcam CAM and GradCAM extractors hooked on one forward",
        "ms",
        "<=",
        TARGETS["P2-shared"],
        threads=threads,
    ).finish(a.wall_ms, shared.wall_ms, s.repeats, a.cpu_ms / shared.cpu_ms)
    for row in (p2, shared_row):
        row.extra = {"map_correlation": correlation}
    return [p2, shared_row]


def _p3(
    s: Settings,
    threads: int,
    tag: str,
    ours: Callable[[], object],
    peers: Baselines,
    agree: dict[str, float],
    missing: str,
) -> list[Row]:
    peer_fns: list[tuple[str, str, Callable[[], object] | None]] = [
        ("torchcam", "torchcam GradCAM", peers.torchcam.get("gradcam")),
        ("captum", "captum LayerGradCam", peers.captum),
    ]
    present = [fn for _, _, fn in peer_fns if fn is not None]
    res = iter(interleaved([ours, *present], s.repeats, s.warmup)) if present else iter([])
    a = next(res, None)
    rows = []
    for key, name, fn in peer_fns:
        rid, target = f"P3-{key}.t{threads}", TARGETS[f"P3-{key}"]
        if fn is None or a is None:
            rows.append(unavailable(rid, f"Grad-CAM vs {name}", target, missing or f"{key} missing"))
            continue
        b = next(res)
        row = Row(
            rid,
            f"Grad-CAM vs {name} ({tag})",
            "explain(methods=(gradcam,)), same class",
            f"{name} on its own copy of the weights",
            "ms",
            "<=",
            target,
            threads=threads,
        ).finish(a.wall_ms, b.wall_ms, s.repeats, a.cpu_ms / b.cpu_ms)
        row.extra = {"map_correlation": {k: v for k, v in agree.items() if key in k}}
        rows.append(row)
    return rows
