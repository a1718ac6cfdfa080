"""The app embedded in a course page (issue 14 point 2, issue 12 point 6), in real Chromium.

A static server on 127.0.0.1 serves gradio's own front-end bundle (``gradio/templates/frontend``:
``gradio.js`` and ``assets/``, so no CDN is needed) and a course-like page (``tests/embed.html``: a
760 px text column) holding the README's snippets: the ``<gradio-app>`` web component and the
``<iframe src=".../?embed=1">``. Each must render the app and explain an example inside it.

The iframe test MEASURES the height at which the controls and the first result (heading, prediction
and CAM slider) are all visible without scrolling inside the frame, and writes it to
``$CAM_SHOTS/embed-height.txt`` (the README's recommended height comes from there).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.test_browser import HEADING, SHOTS, TABS, Served, chromium, new_page, serve, skip_without_browser, wait_idle

pytestmark = [pytest.mark.browser]

COLUMN = 760  # px: the course page's text column
TEMPLATE = (Path(__file__).parent / "embed.html").read_text(encoding="utf-8")
# What must be on the first screen of the frame: every control and the first result.
CONTROLS = ("#input-image", "#target", "#layer", "#colormap", "#opacity", "#explain")
FIRST_RESULT = ("#explained-class", "#prediction", "#cam-slider")
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def served() -> Served:
    skip_without_browser()
    return serve()  # the same server as tests/test_browser.py's, when both run


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@dataclass
class Course:
    """The static server: gradio's front-end folder, plus course pages by path."""

    base: str
    pages: dict[str, str] = field(default_factory=dict)

    def page(self, path: str, snippet: str) -> str:
        self.pages[path] = TEMPLATE.replace("{SNIPPET}", snippet)
        return self.base + path


@pytest.fixture(scope="module")
def course() -> Iterator[Course]:
    import gradio

    frontend = Path(gradio.__file__).parent / "templates" / "frontend"
    assert (frontend / "gradio.js").is_file(), f"gradio's bundle is missing: {frontend}"
    pages: dict[str, str] = {}

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(frontend), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            body = pages.get(self.path.split("?")[0])
            if body is None:
                super().do_GET()
                return
            data = body.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Course(f"http://127.0.0.1:{server.server_address[1]}", pages)
    finally:
        server.shutdown()
        server.server_close()


def wait_heading(scope: Any, prefix: str = "") -> str:
    """Wait (in a page or frame) until the heading names a class and a probability; its text."""
    scope.wait_for_function(
        "([sel, p]) => new RegExp(p).test(document.querySelector(sel)?.innerText || '')",
        arg=[f"{prefix}#explained-class", HEADING.pattern],
        timeout=TIMEOUT_MS,
    )
    return scope.locator(f"{prefix}#explained-class").first.inner_text()


def explained(heading: str) -> str:
    """The class a heading names."""
    m = HEADING.search(heading)
    assert m, heading
    return m.group(1)


def wait_images(scope: Any, selector: str, n: int = 1) -> None:
    scope.wait_for_function(
        "([sel, n]) => { const i = [...document.querySelectorAll(sel + ' img')];"
        " return i.length >= n && i.every(e => e.complete && e.naturalWidth > 0); }",
        arg=[selector, n],
        timeout=TIMEOUT_MS,
    )


# ------------------------------------------------------------------------------------------------
# The web component


def test_web_component_in_a_760px_column(browser: Any, served: Served, course: Course) -> None:
    app = served.url.rstrip("/")
    url = course.page(
        "/web-component.html",
        f'<script type="module" src="/gradio.js"></script>\n    <gradio-app src="{app}" eager="true"></gradio-app>',
    )
    page = new_page(browser, (1280, 900))
    page.goto(url)
    text = wait_heading(page, "gradio-app ")
    cls = HEADING.search(text)
    assert cls and cls.group(1) in served.class_names, text
    wait_images(page, "gradio-app #cam-slider", 2)
    wait_idle(page)
    column = page.locator("#column").bounding_box()
    app_box = page.locator("gradio-app").bounding_box()
    assert app_box["x"] >= column["x"] - 0.5 and app_box["x"] + app_box["width"] <= column["x"] + COLUMN + 0.5
    right = column["x"] + COLUMN + 0.5
    clipped = {
        s: round(b["x"] + b["width"])
        for s in (*CONTROLS, *FIRST_RESULT)
        if (b := page.locator(f"gradio-app {s}").first.bounding_box()) and b["x"] + b["width"] > right
    }
    page.screenshot(path=str(SHOTS / "embed_web_component.png"), full_page=True)
    assert not clipped, f"cut off at the column's right edge (x {right:.0f}): {clipped}"

    # A lesson link: the web component reads the query of the page it sits in (gradio's client sends
    # window.location.search), so the course page's own URL carries it.
    page.goto(url + "?example=greg_1&class=baya&tab=compare")
    assert explained(wait_heading(page, "gradio-app ")) == "baya"
    assert page.locator("gradio-app [role=tab][aria-selected=true]").first.inner_text().strip() == "Compare"
    assert not page.errors, page.errors
    page.context.close()


def test_web_component_src_query_is_not_a_lesson_link(browser: Any, served: Served, course: Course) -> None:
    """Documents gradio's behaviour for the README: a query in ``src`` does not reach the app."""
    url = course.page(
        "/web-component-src-query.html",
        f'<script type="module" src="/gradio.js"></script>\n'
        f'    <gradio-app src="{served.url}?example=greg_1&class=baya" eager="true"></gradio-app>',
    )
    page = new_page(browser, (1280, 900))
    page.goto(url)
    cls = explained(wait_heading(page, "gradio-app "))
    if cls == "baya":
        pytest.fail("gradio now passes the src query to the app: update the README's lesson-link note")
    page.context.close()


# ------------------------------------------------------------------------------------------------
# The iframe, and the height it needs


FRAME_BOXES_JS = """sels => {
    const out = {};
    for (const s of sels) {
        const e = document.querySelector(s);
        if (!e) { out[s] = null; continue; }
        const r = e.getBoundingClientRect();
        out[s] = {top: r.top, bottom: r.bottom, left: r.left, right: r.right};
    }
    return {boxes: out, scrollY: window.scrollY, innerHeight: window.innerHeight, innerWidth: window.innerWidth,
            embed: document.body.classList.contains('cam-embed'), scrollWidth: document.documentElement.scrollWidth};
}"""


def frame_of(page: Any, selector: str = "#app-frame") -> Any:
    frame = page.locator(selector).element_handle().content_frame()
    assert frame is not None
    return frame


def iframe_page(course: Course, app: Served, path: str, query: str, height: int) -> str:
    return course.page(
        path,
        f'<iframe id="app-frame" src="{app.url}?embed=1{query}" width="{COLUMN}" '
        f'height="{height}" style="border:0" title="Pot Plant CAM Explorer"></iframe>',
    )


def measure(frame: Any) -> dict[str, Any]:
    return frame.evaluate(FRAME_BOXES_JS, [*CONTROLS, *FIRST_RESULT, "#controls", "#results"])


def test_iframe_embed_height_and_every_tab(browser: Any, served: Served, course: Course) -> None:
    # Measured in a tall frame on a taller screen (images below the screen are lazy and never load).
    page = new_page(browser, (1280, 2600))
    page.goto(iframe_page(course, served, "/iframe-tall.html", "", 2400))
    frame = frame_of(page)
    wait_heading(frame)
    wait_images(frame, "#cam-slider", 2)
    wait_idle(frame)
    tall = measure(frame)
    assert tall["embed"], "?embed=1 did not switch the page to the embed layout (body.cam-embed)"
    assert tall["scrollWidth"] <= COLUMN, f"the frame scrolls sideways: {tall['scrollWidth']} px"
    needed = max(b["bottom"] for s, b in tall["boxes"].items() if s in (*CONTROLS, *FIRST_RESULT))
    height = int(math.ceil((needed + 12) / 10) * 10)  # a little margin, in tens

    # Check it: at that height everything required is inside the frame's first screen.
    page.set_viewport_size({"width": 1280, "height": max(900, height + 200)})
    page.eval_on_selector("#app-frame", "(f, h) => { f.height = h; }", height)
    page.wait_for_timeout(300)
    fit = measure(frame)
    assert fit["scrollY"] == 0 and fit["innerHeight"] == height
    outside = {
        s: b
        for s, b in fit["boxes"].items()
        if s in (*CONTROLS, *FIRST_RESULT) and (b is None or b["top"] < 0 or b["bottom"] > height + 0.5)
    }
    assert not outside, f"at height {height} these are not on the first screen: {outside}"
    side_by_side = fit["boxes"]["#results"]["left"] >= fit["boxes"]["#controls"]["right"] - 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "embed-height.txt").write_text(
        f"iframe width {COLUMN} px, ?embed=1: controls + heading + prediction + CAM slider visible without "
        f"scrolling at height {height} px (content bottom {needed:.0f} px; columns side by side: {side_by_side})\n",
        encoding="utf-8",
    )
    print(f"\nMEASURED IFRAME HEIGHT: {height} px (bottom of the first result {needed:.0f} px)")
    page.screenshot(path=str(SHOTS / "iframe_first_screen.png"), full_page=True)

    # Every tab inside the frame at that height, scrolled to the tab's content, as a reader sees it.
    for name, (tab_id, selector) in TABS.items():
        frame.get_by_role("tab", name=name, exact=True).click()
        frame.locator(selector).first.wait_for(state="visible")
        if tab_id in ("cam", "grad-cam", "compare", "inside-the-cam"):
            wait_images(frame, selector)
        wait_idle(frame)
        frame.locator("#tabs").first.evaluate("e => e.scrollIntoView({block: 'start'})")
        widest = frame.evaluate("() => document.documentElement.scrollWidth")
        assert widest <= COLUMN, f"tab {name}: the frame scrolls sideways ({widest} px)"
        page.screenshot(path=str(SHOTS / f"iframe_{tab_id}.png"))
    assert not page.errors, page.errors
    page.context.close()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    stated = int(re.search(r'iframe src="[^"]*embed=1" width="100%" height="(\d+)"', readme).group(1))
    assert height <= stated, f"the embed needs {height} px: more than the README's {stated}"


def test_iframe_lesson_link(browser: Any, served: Served, course: Course) -> None:
    page = new_page(browser, (1280, 900))
    page.goto(
        iframe_page(course, served, "/iframe-lesson.html", "&example=greg_1&class=baya&layer=conv2&tab=compare", 800)
    )
    frame = frame_of(page)
    assert explained(wait_heading(frame)) == "baya"
    assert frame.eval_on_selector("#layer", "el => el.querySelector('input:checked')?.value") == "conv2"
    assert frame.locator("[role=tab][aria-selected=true]").first.inner_text().strip() == "Compare"
    assert not frame.locator("#url-note").inner_text().strip(), "embed=1 must not be reported as a bad value"
    page.context.close()
