"""Where the browser rows' time goes (P10, P13): one interaction split into its phases, in the page.

    python -m benchmarks.profile_browser [--repeats 5]

Runs ``python app.py`` and Chromium as the browser rows do, and times inside the page, from the input
event's own timestamp (the last one before any processing: a dropdown's option, not the click that
opened it): when the page's redraw function starts and returns (`window.camRedraw`, the
overlays drawn in the page), when the event's request leaves the page (``queue/join``) and when its
answer is acknowledged, when the picture's new ``src`` is set, and when it is decoded. Prints the
median of each phase per interaction, and the echo event's whole time for scale.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.browser import chromium, echo_mode, echo_once
from benchmarks.rows_browser import AppPage, settle
from benchmarks.server import APP, Server, app_env

# Timestamps (performance.now()) of one interaction, kept on window.__phases. `arm(sel)` starts one.
PHASES_JS = r"""
(() => {
  const P = window.__phases = {marks: {}, sel: null};
  const mark = (k) => { if (P.sel !== null && !(k in P.marks)) P.marks[k] = performance.now(); };
  const started = () => 'page redraw starts' in P.marks || 'request sent' in P.marks;
  const onInput = e => { if (P.sel !== null && !started()) P.marks.input = e.timeStamp; };  // the last one before
  for (const t of ['pointerdown', 'keydown']) document.addEventListener(t, onInput, true);
  const f = window.fetch;
  window.fetch = (...a) => {
    const url = String(a[0]);
    const queued = url.includes('queue/join');
    if (queued) mark('request sent');
    return f(...a).then(r => { if (queued) mark('request acknowledged'); return r; });
  };
  const wrap = () => {
    if (!window.camRedraw || window.camRedraw.__timed) return;
    const inner = window.camRedraw;
    window.camRedraw = async (...a) => {
      mark('page redraw starts');
      const out = await inner(...a);
      mark('page redraw returns');
      return out;
    };
    window.camRedraw.__timed = true;
  };
  new MutationObserver(ms => {
    wrap();
    for (const m of ms) {
      if (P.sel === null || !(m.target instanceof Element) || !m.target.closest(P.sel)) continue;
      if (m.target.tagName === 'IMG' && m.attributeName === 'src') {
        mark('new src set');
        m.target.decode().then(() => requestAnimationFrame(() => mark('picture shown'))).catch(() => {});
      }
    }
  }).observe(document, {subtree: true, attributes: true, attributeFilter: ['src'], childList: true});
  wrap();
  P.arm = (sel) => { P.sel = sel; P.marks = {}; };
})();
"""
ORDER = ("page redraw starts", "page redraw returns", "request sent", "request acknowledged", "new src set",
         "picture shown")  # fmt: skip


def phases(app: AppPage, sel: str, act: Any) -> dict[str, float]:
    page = app.page
    page.evaluate("sel => window.__phases.arm(sel)", sel)
    act()
    page.wait_for_function("() => 'picture shown' in window.__phases.marks", timeout=60_000)
    marks = page.evaluate("() => window.__phases.marks")
    settle(page)
    t0 = marks.get("input")
    return {k: v - t0 for k, v in marks.items() if k != "input" and t0 is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    env, _ = app_env(None)
    with tempfile.TemporaryDirectory() as tmp, Server(APP, Path(tmp), env) as server, chromium() as b:
        server.wait_ready()
        app = AppPage(b, server.url)
        app.page.evaluate(PHASES_JS)
        inside = lambda: app.open_tab("Inside the CAM", "#channels-sum-image")  # noqa: E731

        def topk() -> None:
            app.page.locator("#channels-sum-k input[type=range]").focus()
            app.page.keyboard.press("ArrowRight" if app.page.evaluate("() => Math.random() < 0.5") else "ArrowLeft")

        plan = [
            ("opacity step (drawn in the page)", "#cam-slider", lambda: app.change_opacity(), None),
            ("class change (drawn in the page)", "#cam-slider", lambda: app.change_class(), None),
            ("top-k step (the server's picture)", "#channels-sum-image", topk, inside),
        ]
        echo = [echo_once(app.page, echo_mode(app.page) or "page") for _ in range(args.repeats)]
        print(f"echo event, whole: {statistics.median(echo):.0f} ms (median of {args.repeats})")
        for title, sel, act, before in plan:
            if before is not None:
                before()
                settle(app.page)
            runs = [phases(app, sel, act) for _ in range(args.repeats)]
            print(f"\n{title}: ms after the input event, median of {args.repeats}")
            for key in ORDER:
                got = [r[key] for r in runs if key in r]
                if got:
                    print(f"  {key:22s} {statistics.median(got):7.0f}")
        app.close()


if __name__ == "__main__":
    main()
