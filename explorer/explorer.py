"""`Explorer`: what the app shows, computed from `cam` and cached per session within a byte budget.

Every view method takes the reader (`Who`), the image path the app has already checked
(`explorer.trusted`) and the `Settings`, and returns a frozen view-model whose fields are named like
the page's components. One network pass per image and layer: switching class, opacity, colour map,
the top-k slider or the clicked pixel only re-renders.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from cam import METHODS, CamError, CamModel, Explanation, LoadedImage, explain, load_image, render
from cam.channels import ChannelDecomposition, decompose
from cam.compare import compare_cam_gradcam, method_equivalences
from cam.faithfulness import DEFAULT_STEPS, RANDOM, ImageFaithfulness, evaluate_maps
from cam.hide import hide_region
from cam.network import GAP_LAYER, INPUT_SIZE, LAYER_ALIASES
from cam.sanity import SanityResult, cascading_randomization
from cam.synthetic import redraw_original, redraw_with_pot
from explorer import channels as ch
from explorer import classes, compare, links, maps, trust
from explorer import faithfulness as faith
from explorer import methods as methods_view
from explorer.banner import caveat
from explorer.examples import ExamplePhoto, Examples, file_sha256
from explorer.maps import PREDICTED, Settings
from explorer.outputs import OutputFiles
from explorer.session import CHEAP, EXPENSIVE, SessionStore, Who
from explorer.views import (
    ChannelsPixel,
    ChannelsSum,
    ChannelsTab,
    FaithTab,
    HideTab,
    MainView,
    MethodsTab,
    PotTab,
    SanityTab,
)

T = TypeVar("T")
Make = Callable[[], Any]  # makes one field of a view when called
LAYERS: tuple[str, ...] = tuple(LAYER_ALIASES)  # conv1, conv2, conv3
UI_METHODS = ("cam", "gradcam")
EXTRA_METHODS = tuple(m for m, s in METHODS.items() if m not in UI_METHODS and not s.needs_model)
EXPENSIVE_METHODS = tuple(m for m, s in METHODS.items() if s.needs_model)  # Score-CAM
FAITHFULNESS_DEFAULT = ("cam", "gradcam", "gradcam++")
SESSION_BUDGET_BYTES = 320 * 1024 * 1024  # all sessions together; see explorer/session.py
CLIENT_SHARE = 0.25  # of that budget, per client address
MAX_CACHED = 64  # rendered example views, and Cancel flags, kept at most
VIEW_CACHE_TTL_S = 40 * 60  # cached example views: well under the 1 h after which outputs are deleted


class Cancelled(CamError):
    """The reader pressed Cancel while a long computation ran."""


class SettingsError(CamError, ValueError):
    """A control's value is not one the page offers."""


class Explorer:
    def __init__(
        self,
        model: CamModel,
        examples_dir: Path,
        output_root: Path,
        store: SessionStore | None = None,
        faithfulness_steps: int = DEFAULT_STEPS,
    ) -> None:
        self.model = model
        self.examples = Examples(examples_dir)
        self.output_root = output_root
        self.store = store if store is not None else SessionStore(SESSION_BUDGET_BYTES, CLIENT_SHARE)  # empty is falsy
        self.faithfulness_steps = faithfulness_steps
        # Rendered example views (shared by every reader) and each session's Cancel flag: both bounded.
        self._views: OrderedDict[Hashable, tuple[float, MainView]] = OrderedDict()
        self._cancel: OrderedDict[str, threading.Event] = OrderedDict()

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.model.class_names)

    @property
    def allowed_roots(self) -> tuple[Path, ...]:
        """The only folders a client may name a file in: its uploads and the shipped examples."""
        return (self.output_root, self.examples.folder)

    def files(self) -> OutputFiles:
        return OutputFiles(self.output_root)

    # -- checking what the controls send -------------------------------------------------------

    def check(self, s: Settings) -> Settings:
        from cam import render

        if s.layer not in LAYERS:
            raise SettingsError(f"Unknown layer {s.layer!r}; choose one of {', '.join(LAYERS)}.")
        if s.target != PREDICTED and s.target not in self.class_names:
            raise SettingsError(
                f"Unknown class {s.target[:40]!r}; choose predicted or one of {', '.join(self.class_names)}."
            )
        if s.colormap not in render.COLORMAPS:
            raise SettingsError(f"Unknown colour map {s.colormap[:40]!r}; choose one of {', '.join(render.COLORMAPS)}.")
        if not 0.0 <= float(s.opacity) <= 1.0:
            raise SettingsError(f"Overlay opacity must be between 0 and 1, got {s.opacity}.")
        return s

    # -- cached computations ---------------------------------------------------------------------

    @staticmethod
    def image_key(path: str) -> str:
        try:
            st = os.stat(path)
        except OSError:
            raise CamError(
                "The image is no longer on the server (uploads are kept for an hour). Upload it again."
            ) from None
        return f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}"

    def _cached(self, who: Who, key: Hashable, compute: Callable[[], T], cost: str = CHEAP) -> T:
        return self.store.get_or_compute(who.session, who.client, key, compute, cost)  # type: ignore[arg-type]

    def image(self, who: Who, path: str) -> LoadedImage:
        return self._cached(who, ("image", self.image_key(path)), lambda: load_image(path))

    def lesson(self, query: Mapping[str, str]) -> tuple[links.LinkState, list[str], ExamplePhoto | None]:
        """A lesson link's view: its state, one note per ignored value, and its example (else the default)."""
        names, cmaps = self.class_names, list(render.COLORMAPS)
        state, notes = links.parse(query, self.examples.stems, names, LAYERS, cmaps, links.TAB_IDS)
        return state, notes, self.examples.by_stem(state.example or "") or self.examples.default

    def example_of(self, path: str) -> str | None:
        """The example's stem when ``path`` holds an example photo (matched by content)."""
        self.image_key(path)  # a file that is gone: "no longer on the server", not an OSError
        ex = self.examples.by_content(file_sha256(path))
        return ex.stem if ex else None

    def view_link(
        self, request: Any, image: str | None, target: str, layer: str, opacity: float, colormap: str, tab: str
    ) -> str:
        """ "Link to this view": the page's address (from a Gradio request: its headers, and the URL of the
        request under it) with its state; an uploaded photo is never named."""
        state = links.LinkState(self.example_of(image) if image else None, target, layer, tab, opacity, colormap)
        return links.view_link(links.base_url(request.headers, getattr(request.request, "url", None)), state)

    def explanation(self, who: Who, path: str, layer: str) -> Explanation:
        """CAM at conv3 and Grad-CAM at ``layer``, every class, from one forward pass."""
        key = ("explanation", self.image_key(path), layer)
        image = self.image(who, path)
        plan = {"cam": GAP_LAYER, "gradcam": layer}
        return self._cached(
            who, key, lambda: explain(self.model, image, methods=UI_METHODS, layer=plan, all_classes=True)
        )

    def all_methods(
        self,
        who: Who,
        path: str,
        layer: str,
        progress: Callable[[int, int], None] | None = None,
        with_scorecam: bool = False,
    ) -> Explanation:
        """Every method at ``layer`` (CAM at conv3), every class; Score-CAM only when asked for."""
        base = self.explanation(who, path, layer)
        image = self.image(who, path)
        key = self.image_key(path)
        extra = self._cached(
            who,
            ("methods", key, layer),
            lambda: explain(self.model, image, methods=EXTRA_METHODS, layer=layer, all_classes=True),
        )
        merged = base.merge(extra)
        score = self.store.get(who.session, ("scorecam", key, layer))
        if score is None and with_scorecam:
            score = explain(
                self.model,
                image,
                methods=EXPENSIVE_METHODS,
                layer=layer,
                all_classes=True,
                progress=self._checked(who, progress),
            )
            self.store.put(who.session, who.client, ("scorecam", key, layer), score, EXPENSIVE)
        return merged.merge(score) if score is not None else merged

    # -- cancel ------------------------------------------------------------------------------------

    def _flag(self, session: str) -> threading.Event:
        flag = self._cancel.setdefault(session, threading.Event())
        self._cancel.move_to_end(session)
        while len(self._cancel) > MAX_CACHED:
            self._cancel.popitem(last=False)
        return flag

    def cancel(self, who: Who) -> None:
        self._flag(who.session).set()

    def _checked(self, who: Who, progress: Callable[[int, int], None] | None) -> Callable[[int, int], None]:
        """A progress callback that stops the computation (raises `Cancelled`) once Cancel is pressed."""
        flag = self._flag(who.session)
        flag.clear()

        def report(done: int, total: int) -> None:
            if flag.is_set():
                flag.clear()
                raise Cancelled(
                    "Cancelled. Nothing was kept from the interrupted run; press the button to start again."
                )
            if progress is not None:
                progress(done, total)

        return report

    # -- the main view -------------------------------------------------------------------------------

    def main_view(self, who: Who, path: str, s: Settings) -> MainView:
        s = self.check(s)
        example = self.example_of(path)
        cache_key = (self.image_key(path), s) if example else None
        if cache_key is not None and (hit := self._views.get(cache_key)):
            stamp, view = hit
            if time.monotonic() - stamp < VIEW_CACHE_TTL_S and all(map(os.path.exists, view_files(view))):
                return view
        r = self.explanation(who, path, s.layer).for_target(s.target)
        parts = self._main_parts(r, s, example, self.overlay_file(who, path, s.layer, r))
        view = MainView(**{name: make() for name, make in parts.items()})
        if cache_key is not None:
            self._views[cache_key] = (time.monotonic(), view)
            while len(self._views) > MAX_CACHED:
                self._views.popitem(last=False)
        return view

    def look_update(self, who: Who, path: str, s: Settings, changed: str) -> dict[str, Any]:
        """After the page redrew the overlays for a new ``changed`` (`maps.LOOK`: class, opacity or colour
        map): the `MainView` fields that change alters, by name, less the overlays the page drew."""
        s = self.check(s)
        r = self.explanation(who, path, s.layer).for_target(s.target)
        parts = self._main_parts(r, s, self.example_of(path), "")
        drawn = {f"{m}_slider" for m in maps.redrawn_in_page(maps.overlay_meta(r, s), s.target)}
        return {name: parts[name]() for name in sorted(maps.LOOK[changed] - drawn)}

    def overlay_file(self, who: Who, path: str, layer: str, r: Explanation) -> str:
        """`maps.overlay_maps` of the explanation as a PNG, written once per image and layer."""
        key = ("overlay-maps", self.image_key(path), layer)
        file = self.store.get(who.session, key)
        if not (file and os.path.exists(file)):  # the cache cleaner deletes files after an hour
            file = self.files().png(maps.overlay_maps(r), "overlay_maps")
            self.store.put(who.session, who.client, key, file)
        return str(file)

    def _main_parts(self, r: Explanation, s: Settings, example: str | None, overlays: str) -> dict[str, Make]:
        """Each `MainView` field, made when called (a change of one setting makes only what it alters)."""
        files, stem = self.files(), f"{r.target}_{s.layer}"
        photo = functools.cache(lambda: files.jpeg(maps.photo_of(r), "photo"))
        figure = functools.cache(lambda: files.png(compare.compare_figure(r, s.layer, s.colormap), f"compare_{stem}"))
        note = shown.note() if example and (shown := self.examples.by_stem(example)) else ""

        def slider(method: str, name: str) -> tuple[str, str]:
            return photo(), files.jpeg(maps.overlay_or_note(r, method, s)[0], name)

        def why_muted(method: str) -> str:
            return "" if r.has_positive_evidence(method) else maps.no_evidence_note(r, method, s.layer)

        def tiles() -> tuple[tuple[str, str], ...]:
            drawn = zip(r.classes, classes.class_tiles(r, s), strict=True)
            return tuple((files.jpeg(img, f"class_{r.class_names[i]}"), caption) for i, (img, caption) in drawn)

        return {
            "heading": lambda: maps.heading(r, s.target) + (f"\n\n{note}" if note else ""),
            "caveat": lambda: caveat(self.model.provenance, is_example=example is not None) or "",
            "prediction": lambda: r.probabilities,
            "cam_slider": lambda: slider("cam", f"cam_overlay_{r.target}"),
            "cam_legend": lambda: maps.legend_html(s.colormap),
            "cam_heatmap": lambda: files.png(maps.raw_map_figure(r, "cam", GAP_LAYER), f"cam_raw_{r.target}"),
            "cam_note": lambda: why_muted("cam"),
            "gradcam_slider": lambda: slider("gradcam", f"gradcam_overlay_{stem}"),
            "gradcam_legend": lambda: maps.legend_html(s.colormap),
            "gradcam_heatmap": lambda: files.png(maps.raw_map_figure(r, "gradcam", s.layer), f"gradcam_raw_{stem}"),
            "gradcam_note": lambda: why_muted("gradcam"),
            "compare_image": figure,
            "compare_md": lambda: compare.compare_markdown(r, compare_cam_gradcam(r), s.layer),
            "compare_png": figure,
            "cam_npy": lambda: files.npy(r.maps["cam"], f"cam_{r.target}_{GAP_LAYER}"),
            "gradcam_npy": lambda: files.npy(r.maps["gradcam"], f"gradcam_{stem}"),
            "class_tiles": tiles,
            "photo": photo,
            "example": lambda: example,
            "overlay_maps": lambda: overlays,
            "overlay_meta": lambda: maps.overlay_meta(r, s),
        }

    def warm(self) -> None:
        """Explain the default example at the default settings now, so the first page shows it at once."""
        ex = self.examples.default
        if ex is not None:
            self.main_view(Who("warm-up", "local"), str(ex.path), Settings())

    # -- Methods -------------------------------------------------------------------------------------

    def methods_tab(
        self,
        who: Who,
        path: str,
        s: Settings,
        with_scorecam: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> MethodsTab:
        s = self.check(s)
        r = self.all_methods(who, path, s.layer, progress, with_scorecam).for_target(s.target)
        eq = method_equivalences(r, [m for m in METHODS if m in r.class_maps])
        files = self.files()
        gallery = [
            # titles drawn into the tiles: the gallery's own caption chips cut them to a dozen characters
            (files.jpeg(render.titled(img, caption, font_size=max(16, img.shape[1] // 14)), f"method_{i}"), caption)
            for i, (img, caption) in enumerate(methods_view.method_tiles(r, s.layer, s))
        ]
        return MethodsTab(
            methods_gallery=gallery,
            methods_matrix=methods_view.correlation_table_html(eq, s.layer, r.target),
            methods_md=methods_view.methods_statement(r, s.layer, eq),
        )

    # -- Faithfulness ----------------------------------------------------------------------------------

    def faithfulness_passes(self, n_maps: int) -> int:
        from cam.faithfulness import forward_passes

        return forward_passes(n_maps, self.faithfulness_steps)

    def faith_tab(
        self,
        who: Who,
        path: str,
        s: Settings,
        chosen: list[str],
        compute: bool,
        progress: Callable[[int, int], None] | None = None,
    ) -> FaithTab:
        s = self.check(s)
        unknown = [m for m in chosen if m not in METHODS]
        if unknown:
            raise SettingsError(f"Unknown method {unknown[0][:40]!r}; choose from {', '.join(METHODS)}.")
        methods = [m for m in METHODS if m in chosen]
        base: Explanation | None
        if compute:
            base = self.explanation(who, path, s.layer)
        else:  # only shows what is cached: this view runs off the queue and must never run the network
            base = self.store.get(who.session, ("explanation", self.image_key(path), s.layer))
            if base is None:
                return FaithTab(None, None, "", "Press “Compute faithfulness” to evaluate the maps of this photo.")
        r = base.for_target(s.target)
        key = ("faithfulness", self.image_key(path), s.layer, r.target_index)
        have: ImageFaithfulness | None = self.store.get(who.session, key)
        missing = [m for m in methods if have is None or m not in have.scores]
        if compute and not methods:
            raise SettingsError("Tick at least one method to evaluate (the random map is always added for comparison).")
        if missing and compute:
            rm = self.all_methods(who, path, s.layer, progress, with_scorecam="scorecam" in missing)
            rm = rm.for_target(r.target_index)
            result = evaluate_maps(
                self.model,
                self.image(who, path),
                {m: rm.maps[m] for m in missing},
                r.target_index,
                n_steps=self.faithfulness_steps,
                random_seed=0 if have is None else None,
                progress=self._checked(who, progress),
            )
            have = result if have is None else replace(have, scores={**have.scores, **result.scores})
            self.store.put(who.session, who.client, key, have, EXPENSIVE)
            missing = []
        if have is None or missing or not methods:
            note = (
                f"Not computed yet for class **{r.target}** at **{s.layer}**: press “Compute faithfulness” "
                f"(about {self.faithfulness_passes(1):,} forward passes per map)."
            )
            return FaithTab(None, None, "", note)
        names = [*methods, RANDOM]
        steps = self.faithfulness_steps
        note = f"Class **{r.target}**, maps at **{s.layer}**, {steps} steps of {r.maps['cam'].size // steps:,} pixels."
        return FaithTab(
            faith_deletion=faith.curves_frame(have, names, s.layer, "deletion"),
            faith_insertion=faith.curves_frame(have, names, s.layer, "insertion"),
            faith_table=faith.faithfulness_table(have, names, s.layer, r.target),
            faith_note=note,
        )

    # -- Inside the CAM ------------------------------------------------------------------------------

    def decomposition(self, who: Who, path: str, layer: str) -> ChannelDecomposition:
        """A^k, F^k, w and Grad-CAM's alpha at ``layer``, every class: one forward pass, cached."""
        image = self.image(who, path)
        return self._cached(who, ("channels", self.image_key(path), layer), lambda: decompose(self.model, image, layer))

    def channels_tab(self, who: Who, path: str, s: Settings, show: str, n: int, k: int, pixel: Any) -> ChannelsTab:
        s = self.check(s)
        if show not in ("top", "bottom", "all"):
            raise SettingsError(f"Show 'top', 'bottom' or 'all' channels, not {str(show)[:20]!r}.")
        d = self.decomposition(who, path, s.layer)
        c = d.class_index(s.target)
        files = self.files()
        grid = [(files.png(t.picture, f"channel_{t.k}"), t.caption) for t in ch.channel_tiles(d, c, show, n)]  # type: ignore[arg-type]
        return ChannelsTab(
            channels_grid=grid,
            channels_proof_plot=ch.proof_frame(d, c),
            channels_proof_md=ch.proof_text(d, c),
            **vars(self.channels_sum(who, path, s, k)),
            **vars(self.channels_pixel(who, path, s, pixel)),
        )

    def channels_sum(self, who: Who, path: str, s: Settings, k: int) -> ChannelsSum:
        """The sum of the top ``k`` channels: all the top-k slider changes (the grid stays)."""
        s = self.check(s)
        d = self.decomposition(who, path, s.layer)
        partial, numbers = ch.partial_sum(d, d.class_index(s.target), k, self.image(who, path).model_input, s)
        return ChannelsSum(self.files().jpeg(partial, "partial_cam"), numbers)

    def channels_pixel(self, who: Who, path: str, s: Settings, pixel: Any) -> ChannelsPixel:
        """The clicked pixel's terms (the photo to click, before a click): all a click changes. ``pixel``
        is ``[x, y]`` of the model input or None; the page holds it, so it is checked like any input."""
        s = self.check(s)
        if pixel is not None and not ch.is_pixel(pixel):
            raise SettingsError(f"The pixel must be [x, y], whole numbers below {INPUT_SIZE}; got {str(pixel)[:40]}.")
        d = self.decomposition(who, path, s.layer)
        photo = self.image(who, path).model_input
        if pixel is None:
            image, terms, md = ch.clickable_photo(photo), None, "Click the photo to pick a pixel."
        else:
            image, terms, md = ch.pixel_view(d, d.class_index(s.target), pixel[0], pixel[1], photo)
        return ChannelsPixel(self.files().png(image, "pixel"), terms, md)

    # -- Trust: sanity check, hide and see, the pot shortcut ------------------------------------------

    def sanity_result(self, who: Who, path: str, s: Settings, methods: list[str]) -> SanityResult:
        unknown = [m for m in methods if m not in METHODS or METHODS[m].needs_model]
        if unknown or not methods:
            raise SettingsError("Tick one or more of the gradient methods (Score-CAM is too slow for a live check).")
        target = self.explanation(who, path, s.layer).for_target(s.target).target_index
        image = self.image(who, path)
        key = ("sanity", self.image_key(path), s.layer, target, tuple(methods))
        return self._cached(
            who, key, lambda: cascading_randomization(self.model, image, target, methods, s.layer), EXPENSIVE
        )

    def sanity_tab(self, who: Who, path: str, s: Settings, methods: list[str]) -> SanityTab:
        s = self.check(s)
        res = self.sanity_result(who, path, s, [m for m in METHODS if m in methods])
        files = self.files()
        photo = self.image(who, path).model_input
        return SanityTab(
            trust_sanity_plot=trust.sanity_frame(res),
            trust_sanity_image=files.png(trust.sanity_figure(res, photo, s.colormap), "sanity"),
            trust_sanity_md=trust.sanity_markdown(res),
            trust_other_image=files.png(trust.other_class_figure(res, s.colormap), "other_class"),
        )

    def hide_tab(self, who: Who, path: str, s: Settings, layer_file: str | None) -> HideTab:
        s = self.check(s)
        image = self.image(who, path)
        r = self.explanation(who, path, s.layer).for_target(s.target)
        mask = trust.mask_from_layer(layer_file, image.original_size)
        if not mask.any():
            return HideTab(None, "Paint over part of the photo (the brush) to hide it from the model.")
        res = hide_region(self.model, image, mask, r.target_index, saliency=r.maps["cam"], logits_before=r.logits)
        md = trust.hide_sentence(
            res.target,
            float(res.energy_in_mask or 0.0),
            res.logit_before,
            res.logit_after,
            res.probability_before,
            res.probability_after,
        )
        return HideTab(self.files().write(res.png(), "hidden.png"), md)

    def pot_tab(self, who: Who, path: str, s: Settings, pot: str) -> PotTab:
        s = self.check(s)
        example = self.examples.by_stem(self.example_of(path) or "")
        if example is None or "seed" not in example.scene:
            return PotTab(None, "The pot swap works on the example scenes, which `cam.synthetic` can redraw: pick one.")
        original = redraw_original(example.scene)
        swapped, pot_mask = redraw_with_pot(example.scene, pot)
        r0 = explain(self.model, original, target=s.target, methods=("cam",), all_classes=True)
        r1 = explain(self.model, swapped, target=r0.target_index, methods=("cam",), all_classes=True)
        figure, md = trust.pot_view(r0, r1, pot_mask, example.scene.get("pot_style", "its own"), pot, s)
        return PotTab(self.files().png(figure, "pot_swap"), md)


def view_files(view: MainView) -> tuple[str, ...]:
    """The files a cached view shows first: it is stale once any is deleted."""
    return (*view.cam_slider, view.overlay_maps)
