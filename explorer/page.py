"""The page's output components as data: for every view-model field, the kind of component that shows
it, its label and its element id (browser tests and benchmarks find it by that id).

`app.py` turns each entry into the Gradio component of that kind; nothing here imports Gradio. The
keys are exactly the field names of the view-models in `explorer.explorer`.
"""

from __future__ import annotations

from typing import Any

from cam.network import GAP_LAYER

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
    "compare_png": ("download", {"label": "Comparison (PNG)", "elem_id": "download-compare", "size": "sm"}),
    "cam_npy": ("download", {"label": "Raw CAM (.npy)", "elem_id": "download-cam", "size": "sm"}),
    "gradcam_npy": ("download", {"label": "Raw Grad-CAM (.npy)", "elem_id": "download-gradcam", "size": "sm"}),
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
}


def element_id(name: str) -> str:
    """The element id of output ``name``: its own when it names one, else the name with hyphens."""
    return str(COMPONENTS[name][1].get("elem_id", name.replace("_", "-")))


def spec(name: str) -> tuple[str, dict[str, Any]]:
    """(kind, keyword arguments with the element id) for output ``name``."""
    kind, kw = COMPONENTS[name]
    return kind, {**kw, "elem_id": element_id(name)}
