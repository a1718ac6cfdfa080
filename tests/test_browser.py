"""A real Chromium reads the served page back: text, numbers and pixel boxes, not just "something
rendered". One app (the bundled demo model, so the demo caveat shows) and one Chromium per module.

What is checked (issues 12-15): the first load explains an example without a click and the banner is
one line; at 390x844 every tab is reachable and its output fits the width; the demo caveat beside the
prediction; a damaged upload keeps the last result; a clicked pixel's decomposition equals `/channels`;
lesson links and "Link to this view"; the Trust tab; opacity typed or keyed; accessible names.

Screenshots of every tab at 1280x900 and 390x844 go to ``$CAM_SHOTS`` (default /tmp/shots), never the
repository. Skips when Playwright or /usr/bin/chromium is missing (fails instead under CI=true).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(os.environ.get("CAM_SHOTS", "/tmp/shots"))
TIMEOUT_MS = 30_000
SLOW_MS = 120_000  # the Faithfulness run: ~1 s idle, tens of seconds on a loaded machine
DESKTOP, PHONE = (1280, 900), (390, 844)
FAITH_STEPS = 4  # deletion/insertion in 4 steps instead of the default: same code and table, fewer passes

# Tab label -> (URL id, the tab's main output). Kept in step with app.py's `elem_id`s.
TABS: dict[str, tuple[str, str]] = {
    "CAM": ("cam", "#cam-slider"),
    "Inside the CAM": ("inside-the-cam", "#channels-grid"),
    "Grad-CAM": ("grad-cam", "#gradcam-slider"),
    "Compare": ("compare", "#compare-image"),
    "All classes": ("all-classes", "#all-classes"),
    "Methods": ("methods", "#methods-gallery"),
    "Trust": ("trust", "#trust-sanity"),
    "About": ("about", "#about"),
}
HEADING = re.compile(r"Explaining (\S+) \((.*?)\), probability ([<>]?[\d.]+)\s*%")


# ------------------------------------------------------------------------------------------------
# The served app and the browser


def browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; never `playwright install`)"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    return None


def skip_without_browser() -> None:
    missing = browser_missing()
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but no browser: {missing}")
        pytest.skip(missing)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Served:
    url: str  # ends with "/"
    port: int
    explorer: Any
    class_names: tuple[str, ...]
    default_example: Path
    examples: dict[str, Path]  # stem -> path


@functools.cache
def serve() -> Served:
    """`app.build_demo` on the bundled demo model, served once per process (both browser modules
    share it), with the production launch settings; closed at exit."""
    import gradio as gr

    import app
    from cam import load_model
    from explorer.explorer import Explorer

    ex = Explorer(
        load_model("bundled"), app.ROOT / "examples", Path(gr.utils.get_upload_folder()), faithfulness_steps=FAITH_STEPS
    )
    ex.warm()
    demo = app.build_demo(ex)
    demo.queue(max_size=app.QUEUE_MAX_SIZE, default_concurrency_limit=app.CONCURRENCY_LIMIT, api_open=False)
    port = free_port()
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", server_port=port, **app.launch_kwargs())
    atexit.register(demo.close)
    default = ex.examples.default
    assert default is not None, "examples/ holds no photos: the first load has nothing to explain"
    return Served(
        f"http://127.0.0.1:{port}/",
        port,
        ex,
        ex.class_names,
        default.path,
        {e.stem: e.path for e in ex.examples.photos},
    )


@pytest.fixture(scope="module")
def served() -> Served:
    skip_without_browser()  # no server either when nothing can look at it
    return serve()


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Chromium, headless, through Playwright (never `playwright install`: the system's browser)."""
    skip_without_browser()
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def new_page(browser: Any, size: tuple[int, int] = DESKTOP) -> Any:
    """A fresh context (own storage) at ``size``; page errors are collected on ``page.errors``."""
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    setattr(page, "errors", errors)  # noqa: B010 (Playwright pages have no typed slot for it)
    return page


# ------------------------------------------------------------------------------------------------
# Reading the page


def srcs(page: Any, selector: str) -> list[str]:
    return page.eval_on_selector_all(f"{selector} img", "els => els.map(e => e.currentSrc || e.src)")


def wait_loaded(page: Any, selector: str, before: list[str] | None = None, n: int = 1) -> list[str]:
    """Wait until at least ``n`` images under ``selector`` have a src different from ``before`` and
    are decoded (naturalWidth > 0); their srcs."""
    page.wait_for_function(
        """([sel, old, n]) => {
            const imgs = [...document.querySelectorAll(sel + ' img')];
            const s = imgs.map(e => e.currentSrc || e.src);
            return imgs.length >= n && s.every(x => x) && JSON.stringify(s) !== JSON.stringify(old)
                && imgs.every(e => e.complete && e.naturalWidth > 0);
        }""",
        arg=[selector, before if before is not None else ["<none>"], n],
    )
    return srcs(page, selector)


def text(page: Any, selector: str) -> str:
    loc = page.locator(selector)
    return loc.first.inner_text() if loc.count() else ""


def wait_text(page: Any, selector: str, pattern: str, timeout: int = TIMEOUT_MS) -> str:
    """Wait until the element's text matches the regular expression ``pattern``; the text."""
    page.wait_for_function(
        "([sel, p]) => new RegExp(p).test(document.querySelector(sel)?.innerText || '')",
        arg=[selector, pattern],
        timeout=timeout,
    )
    return text(page, selector)


def wait_idle(page: Any) -> None:
    """No output is pending (Gradio marks pending outputs' status trackers with `pending`)."""
    page.wait_for_function("() => document.querySelectorAll('.pending').length === 0")


def heading(page: Any) -> tuple[str, float]:
    """(class, probability in %) from #explained-class, once it names them."""
    m = HEADING.search(wait_text(page, "#explained-class", HEADING.pattern))
    assert m, text(page, "#explained-class")
    return m.group(1), float(m.group(3).lstrip("<>"))


def box(page: Any, selector: str) -> dict[str, float]:
    b = page.locator(selector).first.bounding_box()
    assert b is not None, f"{selector} is not rendered"
    return b


def open_tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()
    page.wait_for_function(
        "n => [...document.querySelectorAll('[role=tab]')].some(t => t.innerText.trim() === n "
        "&& t.getAttribute('aria-selected') === 'true')",
        arg=name,
    )


def selected_tab(page: Any) -> str:
    return page.locator("[role=tab][aria-selected=true]").first.inner_text().strip()


def checked_layer(page: Any) -> str:
    return page.eval_on_selector("#layer", "el => el.querySelector('input:checked')?.value || ''")


def toasts(page: Any) -> list[str]:
    return [t.strip() for t in page.locator(".toast-body").all_inner_texts()]


def shot(page: Any, name: str) -> Path:
    wait_idle(page)
    path = SHOTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_tab_output(page: Any, tab_id: str, selector: str) -> None:
    """The tab's main output is there and, for pictures, decoded."""
    page.locator(selector).first.wait_for(state="visible")
    if tab_id == "methods":
        wait_loaded(page, selector, n=8)
    elif tab_id == "all-classes":
        wait_loaded(page, selector, n=4)
    elif tab_id in ("cam", "grad-cam", "compare", "inside-the-cam"):
        wait_loaded(page, selector)
    wait_idle(page)


def start(browser: Any, served: Served, size: tuple[int, int] = DESKTOP, query: str = "") -> Any:
    """A page on the app, after the first load's explanation is shown."""
    page = new_page(browser, size)
    page.goto(served.url + query)
    heading(page)
    wait_loaded(page, "#cam-slider", n=2)
    return page


def photo_like(path: Path, size: tuple[int, int] = (640, 480), seed: int = 3) -> Path:
    """A photo-like picture that is no example: smooth gradients, blurred blobs and noise."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    base = np.stack([120 + 100 * xx, 90 + 80 * yy, 160 - 60 * xx * yy], axis=-1)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(20, 90))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    img = img.filter(ImageFilter.GaussianBlur(3))
    arr = np.asarray(img).astype(np.float32) + rng.normal(0, 6, (h, w, 3))
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


# ------------------------------------------------------------------------------------------------
# 1. The first screen


def test_first_load_explains_an_example_and_the_banner_is_one_line(browser: Any, served: Served) -> None:
    page = new_page(browser, DESKTOP)
    t0 = time.monotonic()
    page.goto(served.url)
    cls, prob = heading(page)  # no click anywhere
    wait_loaded(page, "#cam-slider", n=2)
    first_result_s = time.monotonic() - t0
    assert cls in served.class_names and 0.0 <= prob <= 100.0
    assert served.default_example.name in text(page, "#explained-class")  # the example's caption
    assert first_result_s < 15, f"the first result took {first_result_s:.1f} s: it should come from a cache"

    banner = page.locator("#provenance details")
    assert banner.count() == 1 and not banner.evaluate("d => d.open")
    summary = page.locator("#provenance summary")
    line = summary.evaluate(
        "s => parseFloat(getComputedStyle(s).lineHeight) || 1.5 * parseFloat(getComputedStyle(s).fontSize)"
    )
    assert summary.bounding_box()["height"] <= 1.6 * line, "the banner's summary wraps to more than one line"
    assert "demo model" in summary.inner_text().lower()
    summary.click()
    assert banner.evaluate("d => d.open")
    assert served.explorer.model.provenance.sha256 in text(page, "#provenance")
    summary.click()

    for name, (tab_id, selector) in TABS.items():  # every tab, as a person first sees it
        open_tab(page, name)
        wait_tab_output(page, tab_id, selector)
        shot(page, f"desktop_{tab_id}.png")
    assert not page.errors, page.errors
    page.context.close()


# ------------------------------------------------------------------------------------------------
# 2. A phone


# Every part of each tab, for the phone-width check (the main output first).
TAB_PARTS: dict[str, tuple[str, ...]] = {
    "cam": ("#cam-slider", "#cam-legend", "#cam-heatmap"),
    "inside-the-cam": (
        "#channels-grid",
        "#channels-sum-image",
        "#channels-sum-numbers",
        "#channels-proof-plot",
        "#channels-pixel-image",
        "#channels-pixel-plot",
        "#channels-pixel-md",
    ),
    "grad-cam": ("#gradcam-slider", "#gradcam-legend", "#gradcam-heatmap"),
    "compare": ("#compare-image", "#compare-numbers"),
    "all-classes": ("#all-classes",),
    "methods": ("#methods-gallery", "#methods-statement", "#methods-matrix"),
    "trust": (
        "#trust-sanity",
        "#trust-hide",
        "#trust-editor",
        "#trust-pot",
        "#trust-faith",
        "#faith-plot-deletion",
        "#faith-plot-insertion",
    ),
    "about": ("#about",),
}

OUTSIDE_JS = """([sels, width]) => {
    const out = [];
    for (const sel of sels) {
        for (const el of document.querySelectorAll(`${sel}, ${sel} img, ${sel} canvas, ${sel} svg.marks`)) {
            const r = el.getBoundingClientRect();
            if (r.width === 0 && r.height === 0) continue;
            if (r.left < -0.5 || r.right > width + 0.5) {
                const what = el.matches(sel) ? sel : `${sel} ${el.tagName.toLowerCase()}`;
                out.push(`${what}: x ${Math.round(r.left)}..${Math.round(r.right)}`);
            }
        }
    }
    return [...new Set(out)];
}"""

# A word broken across lines has more than one client rect in its Range.
BROKEN_WORDS_JS = """el => {
    const broken = [];
    const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
        const re = /\\S+/g;
        for (let m = re.exec(n.data); m; m = re.exec(n.data)) {
            const r = document.createRange();
            r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
            const tops = new Set([...r.getClientRects()].filter(q => q.width > 0).map(q => Math.round(q.top)));
            if (tops.size > 1) broken.push(m[0]);
        }
    }
    return broken;
}"""


def test_phone_every_tab_reachable_and_inside_the_width(browser: Any, served: Served) -> None:
    """Every tab at 390 px: reachable without "…", and each of its parts inside the width. All
    problems are collected, then reported together."""
    width = PHONE[0]
    page = start(browser, served, PHONE)
    problems: list[str] = []
    if page.locator(".overflow-menu:visible, .overflow-dropdown:visible").count():
        problems.append("tabs hide behind an overflow menu (…)")
    for name, (tab_id, selector) in TABS.items():
        tab = page.get_by_role("tab", name=name, exact=True)
        if not tab.is_visible():
            problems.append(f"tab {name} is not reachable")
            continue
        b = tab.bounding_box()
        if b["x"] < 0 or b["x"] + b["width"] > width + 0.5:
            problems.append(f"tab {name} sticks out of the viewport: x {b['x']:.0f}..{b['x'] + b['width']:.0f}")
        open_tab(page, name)
        wait_tab_output(page, tab_id, selector)
        if tab_id == "trust":  # open every section, and compute the Faithfulness table (FAITH_STEPS steps)
            for closed in page.locator("#trust-pot button.label-wrap, #trust-faith button.label-wrap").all():
                closed.click()
            page.click("#compute-faith")
            page.locator("#faith-table table").wait_for(timeout=SLOW_MS)
            wait_idle(page)
        problems += [
            f"{name}: {o} (viewport 0..{width})" for o in page.evaluate(OUTSIDE_JS, [TAB_PARTS[tab_id], width])
        ]
        if tab_id == "methods":
            tiles = page.locator("#methods-gallery img")
            if tiles.count() != 8:
                problems.append(f"the Methods gallery shows {tiles.count()} maps, not 8")
            for i in range(tiles.count()):  # each tile on screen somewhere, not hidden by a clipping parent
                tiles.nth(i).scroll_into_view_if_needed()
                hit = tiles.nth(i).evaluate(
                    "img => { const r = img.getBoundingClientRect();"
                    " const e = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);"
                    " return e === img || img.contains(e) || (e && e.contains(img)); }"
                )
                if not hit:
                    problems.append(f"Methods tile {i} is covered or clipped")
        if tab_id == "trust":
            table = page.locator("#faith-table table")
            broken = table.evaluate(BROKEN_WORDS_JS)
            if broken:
                problems.append(f"the Faithfulness table breaks words mid-word: {broken[:8]}")
            scroller = table.evaluate(
                "t => { let e = t; while (e && e !== document.body) { const o = getComputedStyle(e).overflowX;"
                " if (o === 'auto' || o === 'scroll') return e.getBoundingClientRect().right; e = e.parentElement; }"
                " return t.getBoundingClientRect().right; }"
            )
            if scroller > width + 0.5:
                problems.append(f"the Faithfulness table (or its scroll box) ends at x {scroller:.0f}")
        page_width = page.evaluate("() => document.documentElement.scrollWidth")
        if page_width > width:
            problems.append(f"{name}: the page scrolls sideways ({page_width} px wide)")
        shot(page, f"phone_{tab_id}.png")
    assert not page.errors, page.errors
    page.context.close()
    assert not problems, "at 390x844:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------------------------
# 3-4. The caveat and a damaged upload


def test_caveat_next_to_the_prediction(browser: Any, served: Served, tmp_path: Path) -> None:
    page = start(browser, served)
    example_note = wait_text(page, "#caveat", r"\S")
    assert "example" in example_note.lower() and "means nothing" in example_note

    page.set_input_files("#input-image input[type=file]", str(photo_like(tmp_path / "holiday.jpg")))
    page.wait_for_function("() => !document.querySelector('#explained-class').innerText.includes('Example')")
    heading(page)
    note = wait_text(page, "#caveat", "never on photos")
    assert "means nothing" in note and note != example_note
    assert page.locator("#caveat").is_visible()
    cav, pred, head = box(page, "#caveat"), box(page, "#prediction"), box(page, "#explained-class")
    # Beside the prediction: between the heading and the probabilities, no further than a line away.
    assert head["y"] <= cav["y"] and cav["y"] + cav["height"] <= pred["y"] + 1
    assert pred["y"] - (cav["y"] + cav["height"]) < 40
    shot(page, "desktop_caveat_upload.png")
    page.context.close()


def test_damaged_upload_keeps_the_last_result(browser: Any, served: Served, tmp_path: Path) -> None:
    page = start(browser, served)
    before, cam_before, link_before = text(page, "#explained-class"), srcs(page, "#cam-slider"), link_value(page)
    photo = photo_like(tmp_path / "whole.jpg")
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(photo.read_bytes()[: photo.stat().st_size // 3])  # a JPEG cut short
    page.set_input_files("#input-image input[type=file]", str(damaged))
    page.locator(".toast-body").first.wait_for()
    wait_idle(page)
    message = " ".join(toasts(page))
    assert len(message) > 20, message
    shot(page, "desktop_damaged_upload.png")
    assert text(page, "#explained-class") == before
    assert srcs(page, "#cam-slider") == cam_before
    pills = page.locator("#results .error, #results").get_by_text("Error", exact=True)
    assert pills.count() == 0, "an Error pill covers the last good result"
    # "Link to this view" still describes what is on screen (the last good result, an example).
    assert link_value(page) == link_before, f"the link changed to {link_value(page)!r} for a refused upload"
    page.context.close()


# ------------------------------------------------------------------------------------------------
# 5. Inside the CAM: a clicked pixel against the API


def click_model_pixel(page: Any, selector: str, x: int, y: int) -> None:
    """Click the centre of model pixel (x, y) on an image showing the 256x256 input at 512x512,
    allowing for object-fit: contain letterboxing."""
    img = page.locator(f"{selector} img").first
    img.scroll_into_view_if_needed()
    nat = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    b = img.bounding_box()
    scale = min(b["width"] / nat[0], b["height"] / nat[1])
    left = b["x"] + (b["width"] - nat[0] * scale) / 2
    top = b["y"] + (b["height"] - nat[1] * scale) / 2
    factor = nat[0] / 256  # 2: each model pixel is a 2x2 block
    page.mouse.click(left + (x + 0.5) * factor * scale, top + (y + 0.5) * factor * scale)


def test_clicked_pixel_matches_the_channels_api(browser: Any, served: Served) -> None:
    from gradio_client import Client, handle_file

    page = start(browser, served)
    open_tab(page, "Inside the CAM")
    wait_loaded(page, "#channels-pixel-image")
    wait_loaded(page, "#channels-grid")
    assert page.locator("#channels-pixel-image img").evaluate("i => i.naturalWidth") == 512
    x, y = 97, 143
    click_model_pixel(page, "#channels-pixel-image", x, y)
    md = wait_text(page, "#channels-pixel-md", r"Pixel \(\d+, \d+\)")
    got = re.search(r"Pixel \((\d+), (\d+)\)", md)
    cam = re.search(r"CAM = .*= ([-+]?\d+\.\d+)", md)
    assert got and cam, md
    gx, gy, shown = int(got.group(1)), int(got.group(2)), float(cam.group(1))
    assert abs(gx - x) <= 1 and abs(gy - y) <= 1, f"clicked model pixel ({x}, {y}), the page says ({gx}, {gy})"

    client = Client(served.url, verbose=False)
    answer = client.predict(
        handle_file(str(served.default_example)), "predicted", "conv3", gx, gy, api_name="/channels"
    )
    pixel = answer["pixel"]
    assert (pixel["x"], pixel["y"]) == (gx, gy)
    assert abs(pixel["cam"] - shown) <= 1e-4 + 1e-4 * abs(shown), (pixel["cam"], shown)
    assert abs(sum(pixel["terms"]) - pixel["cam"]) <= 1e-4 * max(1.0, abs(pixel["cam"]))
    assert page.locator("#channels-pixel-plot canvas, #channels-pixel-plot svg").count() > 0
    shot(page, "desktop_inside_pixel.png")

    # The top-k slider: the partial sum's numbers follow it; at k = 64 the sum is the logit.
    before = text(page, "#channels-sum-numbers")
    sum_before = srcs(page, "#channels-sum-image")
    number = page.locator("#channels-sum-k input[type=number]")
    number.fill("64")
    number.press("Enter")
    after = wait_text(page, "#channels-sum-numbers", r"Top 64 of 64")
    assert after != before and "the full sum" in after
    wait_loaded(page, "#channels-sum-image", sum_before)
    logits = re.findall(r"= ([-+]?\d+\.\d+)", after)
    assert len(logits) >= 2 and abs(float(logits[0]) - float(logits[1])) < 1e-3, after
    assert not page.errors, page.errors
    page.context.close()


# ------------------------------------------------------------------------------------------------
# 6. Lesson links


def link_value(page: Any) -> str:
    page.wait_for_function(
        "() => (document.querySelector('#link-to-view textarea, #link-to-view input')?.value || '').startsWith('http')"
    )
    return page.eval_on_selector("#link-to-view", "el => el.querySelector('textarea, input').value")


def test_lesson_links(browser: Any, served: Served) -> None:
    assert "greg_1" in served.examples and "baya" in served.class_names
    page = start(browser, served)
    open_tab(page, "Compare")
    default_compare = wait_loaded(page, "#compare-image")

    lesson = new_page(browser)
    lesson.goto(served.url + "?example=greg_1&class=baya&layer=conv2&tab=compare")
    cls, _ = heading(lesson)
    assert cls == "baya" and "greg_1" in text(lesson, "#explained-class")
    assert checked_layer(lesson) == "conv2"
    assert selected_tab(lesson) == "Compare"
    fresh = wait_loaded(lesson, "#compare-image", default_compare)
    assert fresh != default_compare
    wait_text(lesson, "#compare-numbers", "conv2")
    assert not text(lesson, "#url-note").strip()

    # "Link to this view", opened afresh, shows the same view.
    link = link_value(lesson)
    assert "example=greg_1" in link and "class=baya" in link and "layer=conv2" in link and "tab=compare" in link
    copy = new_page(browser)
    copy.goto(link)
    assert heading(copy)[0] == "baya"
    assert text(copy, "#explained-class") == text(lesson, "#explained-class")
    assert checked_layer(copy) == "conv2" and selected_tab(copy) == "Compare"
    wait_loaded(copy, "#compare-image")
    shot(lesson, "desktop_lesson_link.png")

    # Bad values: one line each, the default view, no error.
    bad = new_page(browser)
    bad.goto(served.url + "?example=nope&layer=conv9")
    heading(bad)
    note = wait_text(bad, "#url-note", "conv9")
    lines = [ln for ln in note.splitlines() if ln.strip()]
    assert len(lines) == 2, f"expected one line per bad value, got {lines}"
    assert "example=nope" in lines[0] and "layer=conv9" in lines[1]
    for ln in page_lines(bad, "#url-note"):
        assert ln <= 1, "a note wraps to more than one line"
    assert checked_layer(bad) == "conv3"
    wait_idle(bad)
    assert not toasts(bad), toasts(bad)
    shot(bad, "desktop_bad_link.png")
    for p in (page, lesson, copy, bad):
        assert not p.errors, p.errors
        p.context.close()


def page_lines(page: Any, selector: str) -> list[int]:
    """Rendered line count of each paragraph / list item under ``selector``."""
    return page.eval_on_selector_all(
        f"{selector} p, {selector} li",
        "els => els.map(e => { const lh = parseFloat(getComputedStyle(e).lineHeight) || 20;"
        " return Math.round(e.getBoundingClientRect().height / lh); })",
    )


# ------------------------------------------------------------------------------------------------
# 8. Trust


def test_trust_tab_hide_and_sanity(browser: Any, served: Served) -> None:
    page = start(browser, served)
    open_tab(page, "Trust")

    # The sanity check: the plot is drawn and the page says which methods pass.
    page.click("#trust-sanity-run")
    page.locator("#trust-sanity-plot .vega-embed").first.wait_for()
    verdict = wait_text(page, "#trust-sanity-md", r"(passes|fails)")
    assert "Spearman" in verdict
    wait_loaded(page, "#trust-sanity-image")

    # Hide and see: one brush stroke on the editor's canvas; the numbers follow.
    canvas = page.locator("#trust-editor canvas").last
    canvas.wait_for()
    canvas.scroll_into_view_if_needed()
    before = text(page, "#trust-hide-md")
    b = canvas.bounding_box()
    page.mouse.move(b["x"] + b["width"] * 0.3, b["y"] + b["height"] * 0.4)
    page.mouse.down()
    for i in range(15):
        page.mouse.move(b["x"] + b["width"] * (0.3 + 0.02 * i), b["y"] + b["height"] * 0.5, steps=3)
    page.mouse.up()
    try:
        after = wait_text(page, "#trust-hide-md", r"logit[^\n]*\d", timeout=15_000)  # one forward pass
    except Exception:  # playwright's TimeoutError: say what the reader sees
        shot(page, "desktop_trust_checks.png")
        pytest.fail(f"a brush stroke did not update #trust-hide-md (still {text(page, '#trust-hide-md')!r})")
    assert after != before
    assert re.search(r"\d+(\.\d+)?\s*%", after), f"no share of the map's evidence in: {after}"
    wait_loaded(page, "#trust-hidden-image")
    shot(page, "desktop_trust_checks.png")
    assert not page.errors, page.errors
    page.context.close()


# ------------------------------------------------------------------------------------------------
# 9. Opacity by keyboard


def test_opacity_typed_or_keyed_redraws(browser: Any, served: Served) -> None:
    page = start(browser, served)
    overlay = srcs(page, "#cam-slider")
    number = page.locator("#opacity input[type=number]")
    number.fill("0.9")
    number.press("Enter")
    typed = wait_loaded(page, "#cam-slider", overlay, n=2)
    assert typed[-1] != overlay[-1], "typing an opacity did not redraw the overlay"
    rng = page.locator("#opacity input[type=range]")
    rng.focus()
    rng.press("ArrowLeft")
    keyed = wait_loaded(page, "#cam-slider", typed, n=2)
    assert keyed[-1] != typed[-1], "the arrow keys did not redraw the overlay"
    assert float(number.input_value()) == pytest.approx(0.85)
    page.context.close()


# ------------------------------------------------------------------------------------------------
# 10. Accessibility


def test_accessible_names_and_alt_text(browser: Any, served: Served) -> None:
    page = start(browser, served)
    examples = page.locator("#controls button:has(img)")
    assert examples.count() >= len(served.examples), "no example buttons found"
    snapshot = page.locator("#controls").aria_snapshot()
    nameless = [ln for ln in snapshot.splitlines() if re.match(r"\s*- button\s*(\[|:|$)", ln)]
    assert not nameless, f"example buttons without an accessible name:\n{snapshot}"
    missing = page.eval_on_selector_all(
        "#results img, #controls img",
        "els => els.filter(e => e.getBoundingClientRect().width > 0 && !(e.alt || '').trim())"
        ".map(e => (e.closest('[id]') || {}).id || '?')",
    )
    assert not missing, f"images without alt text, in: {sorted(set(missing))}"
    page.context.close()


# ------------------------------------------------------------------------------------------------
# 11. The overlays the page redraws itself (explorer/text/redraw.js)


def shown_picture(page: Any, selector: str, index: int) -> np.ndarray:
    """The bytes of the ``index``-th picture under ``selector``, as the page has them, decoded here."""
    import base64
    import io

    data = page.evaluate(
        """async ([sel, i]) => {
            const img = document.querySelectorAll(sel + ' img')[i];
            const u = new Uint8Array(await (await fetch(img.currentSrc || img.src)).arrayBuffer());
            let s = '';
            for (let j = 0; j < u.length; j += 32768) s += String.fromCharCode.apply(null, u.subarray(j, j + 32768));
            return btoa(s);
        }""",
        [selector, index],
    )
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"), dtype=np.int16)


def type_opacity(page: Any, value: str) -> None:
    page.locator("#opacity input[type=number]").fill(value)
    page.keyboard.press("Enter")


def choose(page: Any, elem_id: str, label: str) -> None:
    page.click(f"#{elem_id} input")
    box_id = page.get_attribute(f"#{elem_id} input", "aria-controls")
    page.click(f'#{box_id} [role=option][aria-label="{label}"]')


def test_overlays_redrawn_in_the_page_follow_the_server_s_formula(browser: Any, served: Served) -> None:
    """Class, colour map and opacity changes are drawn by the page; each picture must be what
    `explorer.maps.paint` (the server's overlay) makes of the photo the page shows and the map `cam`
    computes here: within 3 grey levels anywhere (rounding), and far from the previous setting's."""
    from cam import explain, load_image, render
    from explorer.maps import Settings, paint

    page = start(browser, served)
    wait_idle(page)
    photo = shown_picture(page, "#cam-slider", 0).astype(np.uint8)
    r = explain(served.explorer.model, load_image(served.default_example), methods=("cam", "gradcam"),
                layer={"cam": "conv3", "gradcam": "conv3"}, all_classes=True)  # fmt: skip
    other = next(n for n in served.class_names if n != r.predicted)

    def expected(method: str, s: Settings) -> np.ndarray:
        return paint(photo, render.scale_map(r.for_target(s.target).maps[method]), s).astype(np.int16)

    before = srcs(page, "#cam-slider")
    steps = (
        (lambda: choose(page, "target", other), Settings(other)),
        (lambda: choose(page, "colormap", render.COLORMAP_LABELS["jet"]), Settings(other, colormap="jet")),
        (lambda: type_opacity(page, "0.3"), Settings(other, "conv3", 0.3, "jet")),
    )
    previous = expected("cam", Settings(r.predicted))
    for act, s in steps:
        act()
        before = wait_loaded(page, "#cam-slider", before, n=2)
        assert before[1].startswith("blob:"), f"the overlay for {s} was not drawn in the page: {before[1]}"
        got, want = shown_picture(page, "#cam-slider", 1), expected("cam", s)
        assert got.shape == want.shape == photo.shape
        diff = np.abs(got - want)
        assert diff.max() <= 3 and diff.mean() < 0.5, (s, diff.max(), diff.mean())
        assert np.abs(got - previous).mean() > 2, f"{s}: the picture did not change"
        previous = want
    wait_idle(page)  # the server's answer: the rest of the page, the overlay left as the page drew it
    assert heading(page)[0] == other and srcs(page, "#cam-slider") == before
    open_tab(page, "Grad-CAM")
    got, want = shown_picture(page, "#gradcam-slider", 1), expected("gradcam", steps[-1][1])
    assert srcs(page, "#gradcam-slider")[1].startswith("blob:") and np.abs(got - want).max() <= 3
    assert not page.errors, page.errors
    page.context.close()
