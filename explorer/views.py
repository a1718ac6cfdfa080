"""The view-models: what each part of the page shows, as plain data. Field names are the names of the
page's components (`explorer.page`, `app.py`); files are paths written for this response."""

from __future__ import annotations

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
class ChannelsTab:
    channels_grid: list[tuple[str, str]]  # (file, caption) per shown channel
    channels_sum_image: str
    channels_sum_numbers: str
    channels_proof_plot: Any  # DataFrame for a scatter plot
    channels_proof_md: str
    channels_pixel_image: str
    channels_pixel_plot: Any  # DataFrame for a bar plot, or None before a click
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
