"""What the page says about the model serving it: the one-line banner and the demo-model caveat."""

from __future__ import annotations

import html
from pathlib import Path

from cam import Provenance
from explorer.text import prose


def banner_html(p: Provenance) -> str:
    """One line that expands (``<details>``) to the checkpoint's full provenance."""
    if p.is_demo_model:
        summary = "⚠️ <b>Offline demo model</b>: trained on synthetic pot plants, not the course's photos."
        why = f"Why: {html.escape(p.fallback_reason)}" if p.fallback_reason else "Requested explicitly."
        details = (
            "The maps on this page come from an offline demo model with exactly the course's architecture, "
            "trained on pot plants drawn by <code>cam.synthetic</code>; the course model loads from the Hugging "
            f"Face Hub when the network allows. {why}"
        )
    elif p.source in ("hub", "cache"):
        summary = f"<b>Model:</b> the course's GAP pot-plant classifier, <code>{html.escape(p.repo_id or '')}</code>"
        commit = f", commit <code>{html.escape(p.commit[:12])}</code>" if p.commit else ""
        where = " (from the local cache)" if p.source == "cache" else ""
        details = f"File <code>{html.escape(p.filename or '')}</code>{commit}{where}."
    else:
        summary = f"<b>Model:</b> local checkpoint <code>{html.escape(Path(p.path).name)}</code>"
        details = f"Path <code>{html.escape(p.path)}</code>."
    return (
        f'<details class="cam-banner"><summary>{summary}</summary>'
        f"<p>{details} sha256 <code>{html.escape(p.sha256)}</code>.</p></details>"
    )


def caveat(p: Provenance, is_example: bool) -> str | None:
    """The note beside every prediction while the demo model serves; None for the course model."""
    if not p.is_demo_model:
        return None
    return prose("demo_caveat_example" if is_example else "demo_caveat_upload")
