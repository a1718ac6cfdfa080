"""P10-P13: what a reader waits for in Chromium, against a trivial echo event of the same app.

Each interaction is timed in the page (`benchmarks.browser`: input event -> new picture loaded and
decoded) and interleaved with the echo (type a token, click, the token appears), all on one page
of one app process in one run; ``ratio = median(interaction) / median(echo)``. P12 divides the
first load of app.py's page (navigation start -> the explained example's picture shown) by the
first load of `benchmarks/echo_app.py`'s page (-> its picture shown), both in fresh contexts.

Every timed action must produce a picture the page has not shown before (a repeated state could
come back as the same file, and an unchanged ``src`` is indistinguishable from no answer), so
`AppPage` remembers every (class, opacity, colour map) it has shown and picks unseen ones.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import browser
from benchmarks.browser import (
    ECHO_NOTES,
    Browser,
    browser_missing,
    chromium,
    echo_mode,
    echo_once,
    first_load,
    timed_images,
)
from benchmarks.fixtures import variant
from benchmarks.harness import Row, Settings, interleaved_measured, median, unavailable
from benchmarks.server import APP, ECHO_APP, Server, app_env, app_skip_reason

TARGETS = {"P10": 1.5, "P11": 2.5, "P12": 2.0, "P13": 1.5}
ROWS = {
    "P10": (("P10-class", "class change"), ("P10-opacity", "opacity step"), ("P10-colormap", "colour-map change")),
    "P11": (("P11-example", "Explain on an example"), ("P11-upload12mp", "Explain on a 12 MP upload")),
    "P12": (("P12", "first load to the first explained example"),),
    "P13": (
        ("P13-channels", "Inside the CAM: open the channels view"),
        ("P13-topk", "Inside the CAM: top-k slider step"),
        ("P13-pixel", "Inside the CAM: pixel click"),
    ),
}
CLICK = ("pointerdown", "mousedown", "click")


QUIET_MS = 400  # a server event may start a while after the click (after the page's own redraw)


def settle(page: Any) -> None:
    """Wait until no output has been pending for `QUIET_MS` (follow-up events finish) so the next
    timing starts clean."""
    page.wait_for_function(
        """quiet => {
            const busy = document.querySelectorAll('.pending').length > 0, now = performance.now();
            if (busy || window.__settleSince === undefined) window.__settleSince = now;
            return !busy && now - window.__settleSince >= quiet;
        }""",
        arg=QUIET_MS,
        polling=50,
    )
    page.evaluate("() => { window.__settleSince = undefined; }")


class AppPage:
    """app.py's page in a fresh browser context, with the settings it has shown so far."""

    def __init__(self, b: Browser, url: str) -> None:
        self.browser, self.url = b, url
        self.open()

    def open(self) -> None:
        self.ctx = self.browser.context()
        self.page = self.ctx.new_page()
        self.page.goto(self.url)
        self.page.wait_for_function("() => window.__bench.srcs('#cam-slider').filter(s => s).length >= 2")
        settle(self.page)
        read = "sel => document.querySelector(sel)?.value ?? ''"
        self.target = str(self.page.evaluate(read, "#target input"))
        self.cmap = str(self.page.evaluate(read, "#colormap input"))
        self.opacity = round(float(self.page.evaluate(read, "#opacity input[type=number]")) * 20)  # in 0.05 steps
        self.seen = {(self.target, self.opacity, self.cmap)}
        self.k_seen: set[tuple[str, int]] = set()
        self.echo = echo_mode(self.page) or "page"

    def close(self) -> None:
        self.ctx.close()

    def restart(self) -> None:
        """A new session (fresh context) on the same app: untimed."""
        self.close()
        self.open()

    def options(self, elem: str) -> tuple[str, list[str]]:
        """Open dropdown ``#elem``; return its listbox id and option labels."""
        self.page.click(f"#{elem} input")
        box = str(self.page.get_attribute(f"#{elem} input", "aria-controls"))
        self.page.wait_for_selector(f"#{box} [role=option]")
        labels = self.page.eval_on_selector_all(f"#{box} [role=option]", "els => els.map(e => e.ariaLabel)")
        return box, [str(x) for x in labels]

    def pick(self, elem: str, label: str, box: str, out: str = "#cam-slider") -> float:
        option = self.page.locator(f'#{box} [role=option][aria-label="{label}"]')
        return timed_images(self.page, option.click, f"#{box}", CLICK, out)

    def step_opacity(self, delta: int, timed: bool = True) -> float:
        rng = self.page.locator("#opacity input[type=range]")
        rng.focus()
        key = "ArrowRight" if delta > 0 else "ArrowLeft"
        self.opacity += delta
        self.seen.add((self.target, self.opacity, self.cmap))
        if not timed:
            self.page.keyboard.press(key)
            self.page.wait_for_function("() => document.querySelectorAll('.pending').length === 0")
            return 0.0
        return timed_images(self.page, lambda: self.page.keyboard.press(key), "#opacity", ("keydown",), "#cam-slider")

    def fresh_opacity_step(self) -> int:
        for delta in (1, -1):
            if 0 <= self.opacity + delta <= 20 and (self.target, self.opacity + delta, self.cmap) not in self.seen:
                return delta
        return 1 if self.opacity < 20 else -1

    def change_class(self) -> float:
        box, labels = self.options("target")
        fresh = [x for x in labels if x != self.target and "redicted" not in x]  # "Predicted" repeats a class
        unseen = [x for x in fresh if (x, self.opacity, self.cmap) not in self.seen]
        if not unseen:
            self.page.keyboard.press("Escape")
            self.step_opacity(self.fresh_opacity_step(), timed=False)
            settle(self.page)
            return self.change_class()
        self.target = unseen[0]
        self.seen.add((self.target, self.opacity, self.cmap))
        return self.pick("target", self.target, box)

    def change_cmap(self) -> float:
        box, labels = self.options("colormap")
        unseen = [x for x in labels if (self.target, self.opacity, x) not in self.seen]
        if not unseen:
            self.page.keyboard.press("Escape")
            self.step_opacity(self.fresh_opacity_step(), timed=False)
            settle(self.page)
            return self.change_cmap()
        self.cmap = unseen[0]
        self.seen.add((self.target, self.opacity, self.cmap))
        return self.pick("colormap", self.cmap, box)

    def change_opacity(self) -> float:
        return self.step_opacity(self.fresh_opacity_step())

    def open_tab(self, name: str, out: str | None = None) -> float:
        tab = self.page.get_by_role("tab", name=name, exact=True)
        if out is None:
            tab.click()
            settle(self.page)
            return 0.0
        return timed_images(self.page, tab.click, "[role=tab]", CLICK, out)


def measure(app: AppPage, fn: Callable[[], float], s: Settings) -> tuple[list[float], list[float], list[float]]:
    """``fn`` and the echo on the same page, interleaved, each followed by `settle`; also the part of
    each ``fn`` time until the answer arrived (its new ``src`` set), before fetch and decode."""
    answers: list[float] = []

    def interaction() -> float:
        browser.last_answer_ms[0] = None
        ms = fn()
        if browser.last_answer_ms[0] is not None:
            answers.append(browser.last_answer_ms[0])
        settle(app.page)
        return ms

    def echo() -> float:
        ms = echo_once(app.page, app.echo)
        settle(app.page)
        return ms

    a, b = interleaved_measured([interaction, echo], s.browser_repeats, 1)
    return a, b, answers[-len(a) :]


def ratio_row(
    rid: str, title: str, target: float, a: list[float], b: list[float], answers: list[float], a_text: str, echo: str
) -> Row:
    row = Row(
        rid,
        f"{title} vs echo (browser)",
        a_text,
        ECHO_NOTES[echo],
        "ms",
        "<=",
        target,
    ).finish(median(a), median(b), len(a))
    row.extra = {"a_ms": a, "b_ms": b, "answer_arrived_ms": answers}
    if answers:
        row.notes.append(
            f"of A: {median(answers):.0f} ms until the answer arrived (event round trip incl. server work), "
            f"{median(a) - median(answers):.0f} ms fetching and decoding the picture"
        )
    if echo == "fetch":
        row.notes.append("B: the echo event's request sent by the page itself (its controls are not rendered)")
    return row


def rows_browser(s: Settings, wanted: set[str], files: dict[str, Path]) -> list[Row]:
    groups = [g for g in ROWS if g in wanted]
    missing = browser_missing() or app_skip_reason()
    if missing:
        return [unavailable(rid, title, TARGETS[g], missing) for g in groups for rid, title in ROWS[g]]
    env, model_note = app_env(None)
    rows: list[Row] = []
    with Server(APP, s.workdir, env) as app, chromium() as b:
        app.wait_ready()
        if "P12" in groups:
            rows.append(row_p12(s, b, app.url))
        interactive = [g for g in groups if g != "P12"]
        if interactive:
            rows += rows_interactive(s, b, app.url, interactive, files)
    for row in rows:
        row.notes.append(model_note)
    return rows


def row_p12(s: Settings, b: Browser, app_url: str) -> Row:
    with Server(ECHO_APP, s.workdir) as echo:
        echo.wait_ready()
        sa: list[dict[str, float]] = []
        se: list[dict[str, float]] = []
        a, e = interleaved_measured(
            [
                lambda: first_load(b, app_url, "#cam-slider", sa),
                lambda: first_load(b, echo.url, "#echo-slider", se),
            ],
            s.page_loads,
            1,
        )
    row = Row(
        "P12",
        "first load to the first explained example vs the echo app's page (browser)",
        "app.py: navigation start -> #cam-slider pictures shown (fresh context)",
        "echo_app.py: navigation start -> #echo-slider pictures shown (one load event)",
        "ms",
        "<=",
        TARGETS["P12"],
    ).finish(median(a), median(e), len(a))
    row.extra = {"a_ms": a, "b_ms": e, "a_splits": sa, "b_splits": se}
    for name, got in (("app", sa), ("echo", se)):
        if got:
            mid = {k: median([g[k] for g in got if k in g]) for k in got[-1]}
            row.notes.append(
                f"{name}: pictures' src set at {mid.get('tsrc', float('nan')):.0f} ms; "
                f"{mid['resources']:.0f} resources ({mid['scripts']:.0f} scripts), {mid['kb']:.0f} KB transferred"
            )
    return row


def attempt(app: AppPage, s: Settings, rid: str, title: str, target: float, what: str, fn: Callable[[], float]) -> Row:
    """One row: ``fn`` against the echo. An error (a toast, a timeout) becomes the row's reason, and the
    next row starts from a fresh session."""
    try:
        a, e, answers = measure(app, fn, s)
        return ratio_row(rid, title, target, a, e, answers, what, app.echo)
    except Exception as exc:
        traceback.print_exc()
        app.restart()
        text = str(exc).strip().splitlines()
        return Row(rid, f"{title} vs echo (browser)", what, "", "ms", "<=", target).skip(
            f"error: {type(exc).__name__}: {text[0] if text else ''}"[:300]
        )


def rows_interactive(s: Settings, b: Browser, url: str, groups: list[str], files: dict[str, Path]) -> list[Row]:
    app = AppPage(b, url)
    try:
        if echo_mode(app.page) is None:
            why = "the page has no echo event (#echo-btn click returning #echo-in's text into #echo-out)"
            return [unavailable(rid, title, TARGETS[g], why) for g in groups for rid, title in ROWS[g]]
        plan: list[tuple[str, str, str, Callable[[], float]]] = []
        if "P10" in groups:
            for (rid, title), fn in zip(
                ROWS["P10"], (app.change_class, app.change_opacity, app.change_cmap), strict=True
            ):
                plan.append((rid, title, "input event -> #cam-slider shown", fn))
        if "P11" in groups:
            plan += p11_plan(app, files)
        if "P13" in groups:
            plan += p13_plan(app)
        return [attempt(app, s, rid, title, TARGETS[rid.split("-")[0]], what, fn) for rid, title, what, fn in plan]
    finally:
        app.close()


def p11_plan(app: AppPage, files: dict[str, Path]) -> list[tuple[str, str, str, Callable[[], float]]]:
    used: set[str] = set()

    def example() -> float:
        page = app.page
        current = str(page.evaluate("() => window.__bench.srcs('#input-image')[0] || ''")).rsplit("/", 1)[-1]
        used.add(current)
        names = [str(x).rsplit("/", 1)[-1] for x in page.evaluate("() => window.__bench.srcs('button.gallery-item')")]
        fresh = [i for i, n in enumerate(names) if n not in used]
        if not fresh:  # every example shown in this session: a new session (untimed), so none is cached
            used.clear()
            app.restart()
            return example()
        used.add(names[fresh[0]])
        item = page.locator("button.gallery-item").nth(fresh[0])
        return timed_images(page, item.click, "button.gallery-item", CLICK, "#cam-slider")

    uploads = iter(range(10_000))

    def upload() -> float:
        k = next(uploads)
        src = files["jpeg12mp"]
        path = variant(src, src.with_name(f"{src.stem}_browser{k}{src.suffix}"), 1000 + k)  # never seen before
        field = app.page.locator("#input-image input[type=file]")
        return timed_images(
            app.page, lambda: field.set_input_files(str(path)), "#input-image", ("change", "input"), "#cam-slider"
        )

    (ex_id, ex_title), (up_id, up_title) = ROWS["P11"]
    return [
        (ex_id, ex_title, "example click -> #cam-slider shown", example),
        (up_id, up_title, "file chosen (change event) -> upload -> #cam-slider shown", upload),
    ]


def p13_plan(app: AppPage) -> list[tuple[str, str, str, Callable[[], float]]]:
    def inside() -> Any:
        """The page with the Inside the CAM tab open (opened, untimed, when it is not)."""
        selected = "() => document.querySelector('[role=tab][aria-selected=true]')?.innerText.trim()"
        if app.page.evaluate(selected) != "Inside the CAM":
            app.open_tab("Inside the CAM")
            app.page.wait_for_function("() => window.__bench.srcs('#channels-pixel-image').filter(s => s).length > 0")
            settle(app.page)
        return app.page

    def open_channels() -> float:
        app.open_tab("CAM")
        app.change_class()  # untimed: the channels view must show something new
        settle(app.page)
        return app.open_tab("Inside the CAM", "#channels-grid")

    def topk() -> float:
        page = inside()
        k = int(float(page.evaluate("() => document.querySelector('#channels-sum-k input[type=number]').value")))
        delta = 1 if (app.target, k + 1) not in app.k_seen and k < 64 else -1
        app.k_seen.update({(app.target, k), (app.target, k + delta)})
        page.locator("#channels-sum-k input[type=range]").focus()
        key = "ArrowRight" if delta > 0 else "ArrowLeft"
        return timed_images(
            page, lambda: page.keyboard.press(key), "#channels-sum-k", ("keydown",), "#channels-sum-image"
        )

    rng = random.Random(0)

    def pixel() -> float:
        page = inside()
        img = page.locator("#channels-pixel-image img").first
        img.scroll_into_view_if_needed()
        box = img.bounding_box()
        if box is None:
            raise RuntimeError("#channels-pixel-image shows no picture")
        x, y = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)
        click = lambda: page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])  # noqa: E731
        return timed_images(page, click, "#channels-pixel-image", CLICK, "#channels-pixel-image")

    (ch_id, ch_title), (k_id, k_title), (px_id, px_title) = ROWS["P13"]
    return [
        (ch_id, ch_title, "tab click -> #channels-grid shown", open_channels),
        (k_id, k_title, "ArrowRight on the top-k slider -> #channels-sum-image shown", topk),
        (px_id, px_title, "click -> #channels-pixel-image redrawn", pixel),
    ]
