"""Faithfulness (in the Trust tab): deletion and insertion curves as data frames for native line
plots, and the table of AUCs, Average Drop and Increase in Confidence."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cam.faithfulness import RANDOM, ImageFaithfulness
from explorer.methods import _join, map_label


def label(method: str, layer: str) -> str:
    return "random map" if method == RANDOM else map_label(method, layer)


def curves_frame(f: ImageFaithfulness, names: list[str], layer: str, kind: str) -> pd.DataFrame:
    """Long format for a line plot: one row per (map, step); the legend names carry the AUC."""
    rows = []
    for m in names:
        curve = getattr(f.scores[m], kind)
        series = f"{label(m, layer)} (AUC {curve.auc:.3f})"
        rows += [
            {"fraction": float(x), "probability": float(p), "map": series}
            for x, p in zip(curve.fractions, curve.probabilities, strict=True)
        ]
    return pd.DataFrame(rows, columns=["fraction", "probability", "map"])


def faithfulness_table(f: ImageFaithfulness, names: list[str], layer: str, class_name: str) -> str:
    """AUCs, Average Drop and Increase in Confidence per map, best values in bold, and a reading."""
    methods = [m for m in names if m != RANDOM]
    dele = {m: f.scores[m].deletion.auc for m in names}
    ins = {m: f.scores[m].insertion.auc for m in names}
    drop = {m: f.average_drop(m) for m in names}

    def fmt(m: str, v: float, best: float, spec: str) -> str:
        s = format(v, spec)  # bold every method's cell that shows the best value: ties as the reader sees them
        return f"**{s}**" if m != RANDOM and methods and s == format(best, spec) else s

    best_del = min(dele[m] for m in methods) if methods else np.nan
    best_ins = max(ins[m] for m in methods) if methods else np.nan
    best_drop = min(drop[m] for m in methods) if methods else np.nan
    lines = [
        f"| Map ({layer}) | Deletion AUC ↓ | Insertion AUC ↑ | Average Drop % ↓ | Confidence up? "
        f"| p({class_name}) on L·I |",
        "|---|---|---|---|---|---|",
    ]
    for m in names:
        lines.append(
            f"| {label(m, layer)} | {fmt(m, dele[m], best_del, '.3f')} | {fmt(m, ins[m], best_ins, '.3f')} "
            f"| {fmt(m, drop[m], best_drop, '.1f')} | {'yes' if f.increased(m) else 'no'} "
            f"| {f.scores[m].explanation_probability:.3f} |"
        )
    beat = [m for m in methods if dele[m] < dele[RANDOM] and ins[m] > ins[RANDOM]]
    reading = (
        f"p({class_name}) on the unchanged photo: **{f.probability:.3f}**. The random map scores "
        f"{dele[RANDOM]:.3f} (deletion) and {ins[RANDOM]:.3f} (insertion): chance level. "
    )
    if methods:
        reading += (
            f"Better than random on both curves here: {_join([label(m, layer) for m in beat])}."
            if beat
            else "No method beats the random map on both curves for this photo and class."
        )
    return "\n".join([reading, "", *lines])
