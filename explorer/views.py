"""The view-models: what each part of the page shows, as plain data. Field names are the names of the
page's components (`explorer.page`, `app.py`); files are paths written for this response."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MainView:
    """The heading, the prediction and the CAM, Grad-CAM, Compare and All-classes tabs."""

    heading: str
    caveat: str
    prediction: dict[str, float]
    cam_slider: tuple[str, str]  # (photo, overlay) files
    cam_legend: str
    cam_heatmap: str
    cam_note: str
    gradcam_slider: tuple[str, str]
    gradcam_legend: str
    gradcam_heatmap: str
    gradcam_note: str
    compare_image: str
    compare_md: str
    compare_png: str
    cam_npy: str
    gradcam_npy: str
    class_tiles: tuple[tuple[str, str], ...]  # (file, caption) per class, in class order
    photo: str  # the photo at display size (<= 1024 px), e.g. for the hide-and-see editor
    example: str | None  # the example's stem, when the image is one (for lesson links)
    overlay_maps: str  # every class's scaled maps, for the page's redraw script (`maps.overlay_maps`)
    overlay_meta: dict[str, Any]  # what that script needs beside them (`maps.overlay_meta`)


@dataclass(frozen=True)
class MethodsTab:
    methods_gallery: list[tuple[str, str]] | None  # (file, caption)
    methods_matrix: str
    methods_md: str


@dataclass(frozen=True)
class FaithTab:
    faith_deletion: Any  # pandas DataFrame for a line plot, or None
    faith_insertion: Any
    faith_table: str
    faith_note: str


@dataclass(frozen=True)
class ChannelsSum:
    """Inside the CAM: the sum of the top k channels (what the top-k slider changes)."""

    channels_sum_image: str
    channels_sum_numbers: str


@dataclass(frozen=True)
class ChannelsPixel:
    """Inside the CAM: one pixel's channel terms (what a click changes)."""

    channels_pixel_image: str
    channels_pixel_plot: Any  # DataFrame for a bar plot, or None before a click
    channels_pixel_md: str


@dataclass(frozen=True)
class ChannelsTab:
    """Inside the CAM, all of it: the channel grid and the proof, with `ChannelsSum` and `ChannelsPixel`."""

    channels_grid: list[tuple[str, str]]  # (file, caption) per shown channel
    channels_sum_image: str
    channels_sum_numbers: str
    channels_proof_plot: Any  # DataFrame for a scatter plot
    channels_proof_md: str
    channels_pixel_image: str
    channels_pixel_plot: Any
    channels_pixel_md: str


@dataclass(frozen=True)
class SanityTab:
    trust_sanity_plot: Any  # DataFrame for a line plot
    trust_sanity_image: str
    trust_sanity_md: str
    trust_other_image: str


@dataclass(frozen=True)
class HideTab:
    trust_hidden_image: str | None
    trust_hide_md: str


@dataclass(frozen=True)
class PotTab:
    trust_pot_image: str | None
    trust_pot_md: str


def updates(view: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Outputs whose properties change with ``view`` (a view-model's fields by name) besides their value,
    by component name: each class tile (``class_0`` ...) and its caption, the proof plot and its x-axis title."""
    tiles = enumerate(view.get("class_tiles", ()))
    out = {f"class_{i}": {"value": file, "label": caption} for i, (file, caption) in tiles}
    if (proof := view.get("channels_proof_plot")) is not None:
        out["channels_proof_plot"] = {"value": proof, "x_title": proof.attrs["x_title"]}
    return out
