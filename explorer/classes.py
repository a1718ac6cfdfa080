"""The All-classes tab: the CAM of every class from the one forward pass, with its probability."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cam import Explanation, render
from explorer.maps import Settings, paint, percent, photo_of

TILE_MAX_SIDE = 512  # four tiles at once: no need for 1024 px


def class_caption(r: Explanation, index: int) -> str:
    """'baya: 12.3% (predicted)', as drawn above the class's tile."""
    name = r.class_names[index]
    tag = " (predicted)" if index == r.predicted_index else ""
    none = "" if r.for_target(index).has_positive_evidence("cam") else ", no positive evidence"
    return f"{name}: {percent(r.probabilities[name])}{tag}{none}"


def class_tiles(r: Explanation, s: Settings) -> list[tuple[np.ndarray, str]]:
    """(picture, caption) per class, in class order. With ``shared_scale`` every map is divided by the
    largest positive value over all classes, so brightness compares evidence across classes."""
    photo = photo_of(r).copy()
    photo.thumbnail((TILE_MAX_SIDE, TILE_MAX_SIDE), Image.Resampling.BILINEAR)
    top = max(float(np.maximum(r.for_target(i).maps["cam"], 0).max()) for i in r.classes)
    tiles = []
    for i in r.classes:
        ri = r.for_target(i)
        if not ri.has_positive_evidence("cam"):
            img = render.muted(photo, f"No positive evidence for {ri.target}")
        else:
            raw = np.maximum(ri.maps["cam"], 0)
            m01 = (raw / top).astype(np.float32) if s.shared_scale else render.scale_map(ri.maps["cam"])
            img = paint(photo, m01, s)
        tiles.append((img, class_caption(r, i)))
    return tiles
