"""The page as data: its parts in order (`layout`), and for every view-model field the kind of component
that shows it, its label and its element id (browser tests and benchmarks find parts by that id).

`app.py` turns each `Part` into the Gradio component or container of that kind; nothing here imports
Gradio. Output names are exactly the field names of the view-models (`explorer.views`); controls have
the names the handlers use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cam import METHODS, render
from cam.methods import display_name
from cam.network import GAP_LAYER
from cam.synthetic import POT_STYLES
from explorer import links, maps
from explorer.banner import banner_html
from explorer.explorer import FAITHFULNESS_DEFAULT, LAYERS, Explorer
from explorer.maps import Settings
from explorer.methods import methods_references
from explorer.text import prose

OUT: dict[str, Any] = {"interactive": False}
QUIET: dict[str, Any] = {"show_label": False, **OUT}
GRID: dict[str, Any] = {"show_label": False, "height": "auto", "object_fit": "contain", **OUT}
CURVE: dict[str, Any] = {"x": "fraction", "y": "probability", "color": "map", "y_lim": [0, 1]}


def _map_tab(method: str, name: str) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        f"{method}_note": ("markdown", {"elem_id": f"{method}-note"}),
        f"{method}_slider": ("image_slider", {"label": f"Photo ↔ {name} overlay", "format": "jpeg"}),
        f"{method}_legend": ("html", {"elem_id": f"{method}-legend"}),
        f"{method}_heatmap": ("image", {"format": "png", **QUIET}),
    }


COMPONENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "url_note": ("markdown", {}),
    "heading": ("markdown", {"elem_id": "explained-class"}),
    "caveat": ("markdown", {}),
    "prediction": ("label", {"label": "Class probabilities", "show_label": False, "num_top_classes": 4}),
    **_map_tab("cam", "CAM"),
    **_map_tab("gradcam", "Grad-CAM"),
    # Inside the CAM
    "channels_grid": ("gallery", {"columns": 4, **GRID}),
    "channels_sum_image": ("image", {"min_width": 200, "elem_id": "channels-sum-image", **QUIET}),
    "channels_sum_numbers": ("markdown", {}),
    "channels_proof_plot": (
        "scatter_plot",
        {
            "x": "x",
            "y": "y",
            "tooltip": ["channel", "x", "y"],
            "y_title": "α_k × H·W (Grad-CAM)",
            "label": "Grad-CAM's channel weights against the fc weights",
        },
    ),
    "channels_proof_md": ("markdown", {}),
    "channels_pixel_image": ("image", {"label": "Click a pixel", "min_width": 200, **OUT}),
    "channels_pixel_md": ("markdown", {}),
    "channels_pixel_plot": (
        "bar_plot",
        {
            "x": "channel",
            "y": "term",
            "sort": "-y",
            "x_axis_labels_visible": False,
            "label": "The pixel's channel terms, largest first",
        },
    ),
    # Compare
    "compare_image": ("image", {"format": "png", **QUIET}),
    "compare_md": ("markdown", {"elem_id": "compare-numbers"}),
    "compare_png": ("download_button", {"label": "Comparison (PNG)", "elem_id": "download-compare", "size": "sm"}),
    "cam_npy": ("download_button", {"label": "Raw CAM (.npy)", "elem_id": "download-cam", "size": "sm"}),
    "gradcam_npy": ("download_button", {"label": "Raw Grad-CAM (.npy)", "elem_id": "download-gradcam", "size": "sm"}),
    # Methods
    "methods_gallery": ("gallery", {"columns": 4, "format": "jpeg", **GRID}),
    "methods_md": ("markdown", {"elem_id": "methods-statement"}),
    "methods_matrix": ("html", {}),
    # Trust
    "trust_sanity_md": ("markdown", {}),
    "trust_sanity_plot": (
        "line_plot",
        {
            "x": "step",
            "y": "similarity",
            "color": "series",
            "y_lim": [-1, 1],
            "x_title": f"step: 0 trained, then + fc, + {GAP_LAYER}, + conv2, + conv1 random",
            "label": "Similarity to the trained model's map",
        },
    ),
    "trust_sanity_image": ("image", QUIET),
    "trust_other_image": ("image", {"label": "Data independence: the target's map and another class's", **OUT}),
    "trust_hidden_image": ("image", {"label": "What the model saw (256×256)", **OUT}),
    "trust_hide_md": ("markdown", {}),
    "trust_pot_image": ("image", QUIET),
    "trust_pot_md": ("markdown", {}),
    "faith_note": ("markdown", {}),
    "faith_deletion": (
        "line_plot",
        {"title": "Deletion: most salient pixels → black", "elem_id": "faith-plot-deletion", **CURVE},
    ),
    "faith_insertion": (
        "line_plot",
        {"title": "Insertion: most salient pixels restored", "elem_id": "faith-plot-insertion", **CURVE},
    ),
    "faith_table": ("markdown", {"elem_classes": "cam-scroll"}),
    # what the page's script redraws the overlays from (`explorer.maps.redraw_js`)
    "overlay_maps": ("file", {"visible": False}),
    "overlay_meta": ("json", {"visible": False}),
}


@dataclass(frozen=True)
class Part:
    """One part of the page: a component of ``kind`` (`COMPONENTS`' kinds, or a control such as
    ``"dropdown"``) built with ``kw``, or a container (``row``, ``column``, ``tabs``, ``tab``,
    ``accordion``) of ``parts``. A ``name`` registers it for the handlers."""

    kind: str
    kw: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    parts: tuple[Part, ...] = ()


def box(kind: str, *parts: Part, name: str = "", **kw: Any) -> Part:
    return Part(kind, kw, name, parts)


def control(kind: str, name: str, **kw: Any) -> Part:
    return Part(kind, kw, name)


def text(markdown: str, **kw: Any) -> Part:
    return Part("markdown", {"value": markdown, **kw})


def intro(name: str, **values: object) -> Part:
    return text(prose(name, **values), elem_classes="tab-intro")


def outputs(*names: str) -> tuple[Part, ...]:
    return tuple(Part(*spec(n), name=n) for n in names)


def controls(ex: Explorer) -> tuple[Part, ...]:
    """The photo and the settings every tab shares."""
    classes = [("Predicted class", "predicted"), *[(n, n) for n in ex.class_names]]
    photo = {"label": "Photo of a pot plant", "sources": ["upload", "clipboard", "webcam"], "height": 300}
    return (
        control(
            "image_input", "image", type="filepath", image_mode=None, format="jpeg", elem_id="input-image", **photo
        ),
        box("column", name="examples_slot"),  # app.py puts gr.Examples here
        control("dropdown", "target", choices=classes, value="predicted", label="Class to explain", elem_id="target"),
        control(
            "radio",
            "layer",
            choices=list(LAYERS),
            value=GAP_LAYER,
            label="Grad-CAM layer",
            elem_id="layer",
            info="conv3 feeds global average pooling: the CAM layer.",
        ),
        control(
            "dropdown",
            "colormap",
            choices=[(render.COLORMAP_LABELS[k], k) for k in render.COLORMAPS],
            value=render.DEFAULT_COLORMAP,
            label="Colour map",
            elem_id="colormap",
        ),
        control(
            "slider",
            "opacity",
            minimum=0,
            maximum=1,
            value=Settings().opacity,
            step=0.05,
            label="Overlay opacity",
            elem_id="opacity",
        ),
        control("button", "explain", value="Explain", variant="primary", elem_id="explain"),
        box(
            "row",
            control("textbox", "link", label="Link to this view", elem_id="link-to-view", buttons=["copy"], **OUT),
            text(links.UPLOAD_NOTE, elem_id="link-note"),
            elem_id="link-row",
        ),
    )


def map_tab(method: str) -> tuple[Part, ...]:
    """The CAM and Grad-CAM tabs: photo-vs-overlay slider with its legend, and the raw signed map."""
    return intro(f"{method}_tab"), *outputs(
        f"{method}_note", f"{method}_slider", f"{method}_legend", f"{method}_heatmap"
    )


def inside_tab(ex: Explorer) -> tuple[Part, ...]:
    shown = [("Top N", "top"), ("Bottom N (against the class)", "bottom"), ("All", "all")]
    return (
        intro("inside_tab"),
        box(
            "row",
            control("radio", "show", choices=shown, value="top", label="Channels", elem_id="channels-show"),
            control("slider", "n", minimum=1, maximum=64, value=12, step=1, label="N", elem_id="channels-n"),
        ),
        *outputs("channels_grid"),
        control(
            "slider",
            "k",
            minimum=1,
            maximum=64,
            value=8,
            step=1,
            label="Use the top k channels",
            elem_id="channels-sum-k",
        ),
        box("row", *outputs("channels_sum_image", "channels_sum_numbers")),
        *outputs("channels_proof_plot", "channels_proof_md"),
        box(
            "row",
            *outputs("channels_pixel_image"),
            box("column", *outputs("channels_pixel_md", "channels_pixel_plot"), min_width=260),
        ),
    )


def classes_tab(ex: Explorer) -> tuple[Part, ...]:
    tiles = [
        control("image", f"class_{i}", label=n, format="jpeg", elem_id=f"class-{n}", min_width=120, **OUT)
        for i, n in enumerate(ex.class_names)
    ]
    return (
        intro("all_classes_tab"),
        control("checkbox", "shared", label="One colour scale for all four classes", elem_id="shared-scale"),
        box("column", *(box("row", *tiles[i : i + 2]) for i in range(0, len(tiles), 2)), elem_id="all-classes"),
    )  # two by two, at every width


def methods_tab(ex: Explorer) -> tuple[Part, ...]:
    return (
        intro("methods_tab", gap_layer=GAP_LAYER, channels="16, 32 or 64 passes"),
        *outputs("methods_gallery"),
        control("button", "scorecam", value="Compute Score-CAM", elem_id="compute-scorecam", size="sm"),
        *outputs("methods_md", "methods_matrix"),
        text(methods_references()),
    )


def trust_tab(ex: Explorer) -> tuple[Part, ...]:
    cheap = [(display_name(m), m) for m, spec in METHODS.items() if not spec.needs_model]
    every = [(display_name(m), m) for m in METHODS]
    pots = [(f"{n}'s pot ({style})", n) for n, style in zip(ex.class_names, POT_STYLES, strict=True)]
    brush = {"colors": ["#ff00ff"], "color_mode": "fixed", "default_size": 24}
    editor = {"sources": [], "transforms": [], "layers": False, "height": 360, "brush": brush}
    return (
        intro("trust_tab"),
        box(
            "accordion",
            control("checkbox_group", "sanity_methods", choices=cheap, value=["cam", "gradcam"], label="Methods"),
            control("button", "sanity", value="Run the sanity check", elem_id="trust-sanity-run", size="sm"),
            *outputs("trust_sanity_md", "trust_sanity_plot", "trust_sanity_image", "trust_other_image"),
            label="1. Sanity check: randomise the model, layer by layer",
            elem_id="trust-sanity",
        ),
        box(
            "accordion",
            box(
                "row",
                control(
                    "mask_editor",
                    "trust_editor",
                    type="filepath",
                    label="Paint what to hide",
                    elem_id="trust-editor",
                    **editor,
                ),
                box("column", *outputs("trust_hidden_image", "trust_hide_md"), min_width=220),
            ),
            label="2. Hide and see: paint over a region",
            elem_id="trust-hide",
        ),
        box(
            "accordion",
            box(
                "row",
                control(
                    "dropdown",
                    "pot",
                    choices=pots,
                    value=ex.class_names[2],
                    label="Redraw in",
                    elem_id="trust-pot-choice",
                ),
                control("button", "pot_run", value="Redraw the scene in this pot", elem_id="trust-pot-run", size="sm"),
            ),
            *outputs("trust_pot_image", "trust_pot_md"),
            label="3. The pot shortcut (example scenes)",
            elem_id="trust-pot",
            open=False,
        ),
        box(
            "accordion",
            text(prose("faithfulness", passes_per_map=ex.faithfulness_passes(1) - 3)),
            box(
                "row",
                control(
                    "checkbox_group",
                    "faith_methods",
                    choices=every,
                    value=list(FAITHFULNESS_DEFAULT),
                    label="Maps to evaluate (the random map is always added)",
                    elem_id="faith-methods",
                ),
                box(
                    "column",
                    control(
                        "button", "faith_run", value="Compute faithfulness", variant="primary", elem_id="compute-faith"
                    ),
                    control("button", "faith_cancel", value="Cancel", elem_id="cancel-faith", size="sm"),
                    min_width=160,
                    scale=0,
                ),
                equal_height=True,
            ),
            *outputs("faith_note"),
            box("row", *outputs("faith_deletion", "faith_insertion")),
            *outputs("faith_table"),
            label="4. Faithfulness: deletion and insertion",
            elem_id="trust-faith",
            open=False,
        ),
    )


def tab_parts(ex: Explorer) -> dict[str, tuple[Part, ...]]:
    """Each tab's parts, in `links.TAB_NAMES` order."""
    return {
        "CAM": map_tab("cam"),
        "Inside the CAM": inside_tab(ex),
        "Grad-CAM": map_tab("gradcam"),
        "Compare": (
            *outputs("compare_image", "compare_md"),
            box("row", *outputs("compare_png", "cam_npy", "gradcam_npy")),
        ),
        "All classes": classes_tab(ex),
        "Methods": methods_tab(ex),
        "Trust": trust_tab(ex),
        "About": (text(prose("about"), elem_id="about"),),
    }


def layout(ex: Explorer) -> tuple[Part, ...]:
    """The whole page, top to bottom."""
    tabs = tab_parts(ex)
    assert tuple(tabs) == links.TAB_NAMES
    return (
        text(prose("intro"), elem_id="intro"),
        Part("html", {"value": banner_html(ex.model.provenance), "elem_id": "provenance"}),
        *outputs("url_note", "overlay_maps", "overlay_meta"),
        # The open tab and the pixel clicked inside the CAM, held by the page (sent with each event):
        # Gradio's session state is only a cache here (`app.STATE_SESSIONS`), lost without harm.
        control(
            "radio",
            "tab",
            choices=list(links.TAB_IDS),
            value="cam",
            label="Open tab",
            elem_id="open-tab",
            visible=False,
        ),
        control("json", "pixel", value=None, visible=False),
        box(
            "row",
            box("column", *controls(ex), scale=2, min_width=300, elem_id="controls"),
            box(
                "column",
                *outputs("heading", "caveat", "prediction"),
                box(
                    "tabs",
                    *(
                        box("tab", *parts, name=f"tab_{tab_id}", label=label, id=tab_id)
                        for (label, parts), tab_id in zip(tabs.items(), links.TAB_IDS, strict=True)
                    ),
                    name="tabs",
                    elem_id="tabs",
                    overflow_behavior="wrap",
                ),
                scale=3,
                min_width=320,
                elem_id="results",
            ),
            equal_height=False,
            elem_id="main-row",
        ),
        box(  # a trivial event: the browser benchmarks' baseline
            "column",
            control("textbox", "echo_in", elem_id="echo-in"),
            control("textbox", "echo_out", elem_id="echo-out"),
            control("button", "echo", elem_id="echo-btn"),
            visible=False,
        ),
    )


# The API endpoints: name -> (inputs, outputs), parts of `api_parts` (labels are the parameter names).
API: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "explain": (("api_image", "api_target", "api_method", "api_layer"), ("api_picture", "api_json", "api_map")),
    "channels": (("api_image", "api_target", "api_layer", "api_x", "api_y"), ("api_json",)),
    "sanity": (("api_image", "api_target", "api_method", "api_layer"), ("api_json",)),
    "hide": (("api_image", "api_target", "api_mask"), ("api_hidden", "api_json")),
}


def api_parts() -> tuple[Part, ...]:
    """The API's components, hidden from the page."""
    files = {"type": "filepath", "image_mode": None}
    texts = {"target": "predicted", "method": "cam", "layer": GAP_LAYER}
    return (
        box(
            "column",
            control("image_input", "api_image", label="image", **files),
            control("image_input", "api_mask", label="mask", **files),
            *(control("textbox", f"api_{k}", value=v, label=k) for k, v in texts.items()),
            *(control("number", f"api_{k}", value=-1, precision=0, label=k) for k in "xy"),
            control("image", "api_picture", label="picture", format="jpeg"),
            control("json", "api_json", label="json"),
            control("file", "api_map", label="map"),
            control("image", "api_hidden", label="hidden", format="png"),
            visible=False,
        ),
    )


def element_id(name: str) -> str:
    """The element id of output ``name``: its own when it names one, else the name with hyphens."""
    return str(COMPONENTS[name][1].get("elem_id", name.replace("_", "-")))


def spec(name: str) -> tuple[str, dict[str, Any]]:
    """(kind, keyword arguments with the element id) for output ``name``."""
    kind, kw = COMPONENTS[name]
    return kind, {**kw, "elem_id": element_id(name)}


def load_js() -> str:
    """What the page runs once when it loads: the embed layout and accessible names (`links.EMBED_JS`),
    and the overlay redraw's function (`maps.redraw_definition`)."""
    return f"() => {{ {maps.redraw_definition()}\n  return ({links.EMBED_JS})(); }}"
