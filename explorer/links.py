"""Lesson links: the page's state in its URL, read on load and written by "Link to this view".

    ?example=greg_1&class=baya&layer=conv2&tab=compare&opacity=0.6&cmap=jet

Unknown or bad values are ignored, each with a one-line note; uploads never go into a link.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from cam import render
from cam.network import GAP_LAYER
from explorer.maps import PREDICTED, Settings

# Tab names as the page shows them -> ids in links: lower case, spaces as hyphens.
TAB_NAMES = ("CAM", "Inside the CAM", "Grad-CAM", "Compare", "All classes", "Methods", "Trust", "About")
TAB_IDS = tuple(name.lower().replace(" ", "-") for name in TAB_NAMES)
UPLOAD_NOTE = "Links name an example, never an uploaded photo: an upload stays on this server and is not shared."
SPACES_PAGE = "https://huggingface.co/spaces/{space_id}"


@dataclass(frozen=True)
class LinkState:
    example: str | None = None  # an example's stem; None for an upload or no image
    target: str = PREDICTED
    layer: str = GAP_LAYER
    tab: str = "cam"
    opacity: float = Settings().opacity
    colormap: str = render.DEFAULT_COLORMAP


def _short(value: str) -> str:
    value = value.replace("`", "'").replace("\n", " ").replace("\r", " ")  # stays inside the note's `code`
    return value if len(value) <= 30 else value[:30] + "…"


def parse(
    query: Mapping[str, str],
    stems: Sequence[str],
    class_names: Sequence[str],
    layers: Sequence[str],
    colormaps: Sequence[str],
    tabs: Sequence[str],
) -> tuple[LinkState, list[str]]:
    """The state a URL asks for, and one note per value that was ignored."""
    notes: list[str] = []
    got: dict[str, Any] = {}

    def pick(key: str, field: str, allowed: Sequence[str]) -> None:
        if key not in query:
            return
        value = str(query[key]).strip()
        if value in allowed:
            got[field] = value
        else:
            notes.append(f"Ignored `{key}={_short(value)}`: use one of {', '.join(allowed)}.")

    pick("example", "example", stems)
    pick("class", "target", [PREDICTED, *class_names])
    pick("layer", "layer", layers)
    pick("tab", "tab", tabs)
    pick("cmap", "colormap", colormaps)
    if "opacity" in query:
        try:
            value = float(query["opacity"])
            if not math.isfinite(value) or not 0 <= value <= 1:
                raise ValueError
            got["opacity"] = value
        except ValueError:
            notes.append(f"Ignored `opacity={_short(str(query['opacity']))}`: use a number from 0 to 1.")
    return LinkState(**got), [f"⚠️ {n}" for n in notes]


def query_string(s: LinkState) -> str:
    """``?example=...&class=...``: only what differs from the defaults, the example always first."""
    default = LinkState()
    pairs = [("example", s.example)] if s.example else []
    for key, value, base in (
        ("class", s.target, default.target),
        ("layer", s.layer, default.layer),
        ("tab", s.tab, default.tab),
        ("opacity", f"{s.opacity:g}", f"{default.opacity:g}"),
        ("cmap", s.colormap, default.colormap),
    ):
        if value != base:
            pairs.append((key, value))
    return "?" + urlencode(pairs) if pairs else ""


def base_url(headers: Mapping[str, str], url: Any) -> str:
    """Where readers open the page: the Space's page on Hugging Face (the app runs in its iframe),
    else this server as the browser reached it."""
    space = os.environ.get("SPACE_ID")
    if space:
        return SPACES_PAGE.format(space_id=space)
    host = headers.get("x-forwarded-host") or headers.get("host") or (url.netloc if url is not None else "")
    scheme = headers.get("x-forwarded-proto") or (url.scheme if url is not None else "http")
    return f"{scheme}://{host}/" if host else "/"


def view_link(base: str, s: LinkState) -> str:
    return base + query_string(s)


# On a Space the app runs inside an iframe of huggingface.co/spaces/...: that page copies a
# `queryString` posted to it into its own address bar, so readers can share the address bar too.
POST_TO_PARENT_JS = """(link) => {
  try {
    if (link && window.parent !== window) {
      window.parent.postMessage({queryString: new URL(link).search}, "https://huggingface.co");
    }
  } catch (e) {}
  return link;
}"""

# On load: the embed layout (`?embed=1`, or a frame narrower than 900 px: controls and result on one
# screen), and names for screen readers where Gradio 6.31 renders none (example buttons, images).
EMBED_JS = """() => {
  const q = new URLSearchParams(window.location.search);
  const framed = window.self !== window.top;
  if (q.get("embed") === "1" || (framed && window.innerWidth < 900)) {
    document.body.classList.add("cam-embed");
  }
  const name = (src) => decodeURIComponent((src || "").split("/").pop().split("?")[0]).replace(/\\.[a-z]+$/i, "");
  const label = () => {
    document.querySelectorAll("button.gallery-item").forEach((el) => {
      const img = el.querySelector("img");
      if (img && !el.getAttribute("aria-label")) el.setAttribute("aria-label", "Example " + name(img.src));
    });
    document.querySelectorAll("img").forEach((img) => {
      if (!img.getAttribute("alt")) {
        const box = img.closest("[id]");
        const what = box && box.id ? box.id.replace(/-/g, " ") : "picture";
        img.setAttribute("alt", what + ": " + name(img.src));
      }
    });
  };
  new MutationObserver(label).observe(document.body, {subtree: true, childList: true});
  label();
}"""
