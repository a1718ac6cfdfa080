"""A real Chromium (Debian's, through Playwright) that times what a reader sees.

Every measurement is taken inside the page with ``performance.now()``: ``t0`` is the timestamp of
the input event itself (captured by a listener armed just before the action, on the input element),
``t1`` is the first animation frame after the new output is shown -- for a picture, every image
under the output's selector has a ``src`` that differs from before, has loaded (``complete`` and
``naturalWidth > 0``) and has been decoded (``img.decode()``); for text, the element's text or
value contains the expected string. A MutationObserver and capture-phase ``load`` listeners drive
the checks, so nothing polls on a timer and no status tracker is trusted.

Launch: ``/usr/bin/chromium`` with the flags the browser tests use; never ``playwright install``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
TIMEOUT_MS = 120_000
VIEWPORT: Any = {"width": 1400, "height": 1000}  # a playwright ViewportSize

# Installed in every page before its own scripts. `__bench.arm` starts one measurement; `__bench.done`
# resolves with {t0, t1} once the output is shown. `__bench.first` times a first load from navigation.
PAGE_JS = r"""
(() => {
  const imgsOf = sel => [...document.querySelectorAll(sel)].flatMap(
    e => e.tagName === 'IMG' ? [e] : [...e.querySelectorAll('img')]);
  const srcsOf = sel => imgsOf(sel).map(i => i.currentSrc || i.src);
  const textOf = sel => [...document.querySelectorAll(sel)].map(e => {
    const f = e.matches('textarea, input') ? e : e.querySelector('textarea, input');
    return (f ? f.value : '') + '\n' + (e.innerText || '');
  }).join('\n');
  const frame = () => new Promise(r => requestAnimationFrame(() => r(performance.now())));
  const TOAST = '[data-testid="toast-body"], .toast-body';

  function watch(check) {  // resolves with check()'s truthy result; re-checked on DOM changes and loads
    return new Promise(resolve => {
      let busy = false, finished = false;
      const run = async () => {
        if (busy || finished) return;
        busy = true;
        try {
          const t = await check();
          if (t !== null && !finished) { finished = true; obs.disconnect();
            document.removeEventListener('load', run, true); clearInterval(iv); resolve(t); }
        } finally { busy = false; }
      };
      const obs = new MutationObserver(run);
      obs.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
      document.addEventListener('load', run, true);
      // A textarea's value changes without a DOM mutation: a slow safety net, never the first signal.
      const iv = setInterval(run, 250);
      run();
    });
  }

  async function imagesShown(sel, before) {
    const imgs = imgsOf(sel);
    const srcs = imgs.map(i => i.currentSrc || i.src);
    if (!imgs.length || srcs.some(s => !s) || JSON.stringify(srcs) === JSON.stringify(before)) return null;
    if (!imgs.every(i => i.complete && i.naturalWidth > 0)) return null;
    try { await Promise.all(imgs.map(i => i.decode())); } catch (e) { return null; }
    if (JSON.stringify(imgsOf(sel).map(i => i.currentSrc || i.src)) !== JSON.stringify(srcs)) return null;
    return await frame();
  }

  async function textShown(sel, text) {
    return textOf(sel).includes(text) ? await frame() : null;
  }

  window.__bench = {
    srcs: srcsOf,
    text: textOf,
    arm(inputSel, types, output, timeoutMs) {  // output: {kind: 'images', sel, before} | {kind: 'text', ...}
      const state = {t0: null, tsrc: undefined};
      const onEvent = e => {
        if (state.t0 === null && e.target instanceof Element &&
            (e.target.closest(inputSel) || [...document.querySelectorAll(inputSel)].includes(e.target)))
          state.t0 = e.timeStamp;
      };
      for (const t of types) document.addEventListener(t, onEvent, true);
      const toasts = new Set(document.querySelectorAll(TOAST));
      const shown = output.kind === 'images' ? () => imagesShown(output.sel, output.before)
                                             : () => textShown(output.sel, output.text);
      const check = async () => {  // a new error toast ends the wait at once, with its message
        const err = [...document.querySelectorAll(TOAST)].find(t => !toasts.has(t));
        if (err) return {error: (err.innerText || 'an error toast').replace(/[\s×]+/g, ' ').trim().slice(0, 300)};
        // When the answer arrived (the new src is set): splits the time into the event's round trip
        // and the picture's fetch + decode.
        if (output.kind === 'images' && state.tsrc === undefined &&
            JSON.stringify(srcsOf(output.sel)) !== JSON.stringify(output.before)) state.tsrc = performance.now();
        const t1 = await shown();
        return t1 === null ? null : {t1};
      };
      const late = new Promise(r => setTimeout(() => r({t1: null}), timeoutMs));
      window.__bench.done = Promise.race([watch(check), late]).then(res => {
        for (const t of types) document.removeEventListener(t, onEvent, true);
        return {t0: state.t0, tsrc: state.tsrc ?? null, ...res};
      });
      return true;
    },
    async first(sel) {  // ms from navigation start until the images under `sel` are shown, with splits
      let tsrc = null;
      const t1 = await watch(async () => {
        if (tsrc === null && srcsOf(sel).some(s => s)) tsrc = performance.now();
        return imagesShown(sel, ['\u0000never']);
      });
      const res = performance.getEntriesByType('resource');
      return {t1, tsrc, resources: res.length, kb: res.reduce((n, r) => n + (r.transferSize || 0), 0) / 1024,
              scripts: res.filter(r => r.initiatorType === 'script' || r.name.endsWith('.js')).length};
    },
    echoDep() {  // the echo event in the page's config, when its controls are not rendered
      const cfg = window.gradio_config || {};
      const btn = (cfg.components || []).find(c => c.props && c.props.elem_id === 'echo-btn');
      const dep = btn && cfg.dependencies.find(d => d.targets.some(t => t[0] === btn.id && t[1] === 'click'));
      return dep ? {fn: dep.id, trigger: btn.id, queue: dep.queue !== false} : null;
    },
    async echoFetch(token) {  // the request the page would send for the echo, then the text shown
      const e = window.__bench.echoDep();
      const root = location.origin + '/gradio_api';
      const session = window.__benchSession ||= Math.random().toString(36).slice(2, 13);
      const body = JSON.stringify({data: [token], event_data: null, fn_index: e.fn, trigger_id: e.trigger,
                                   session_hash: session});
      const json = {'Content-Type': 'application/json'};
      const post = (route) => fetch(root + route, {method: 'POST', headers: json, body});
      const t0 = performance.now();
      let out;
      if (!e.queue) {
        out = (await (await post('/run/predict')).json()).data[0];
      } else {
        const {event_id} = await (await post('/queue/join')).json();
        out = await new Promise((resolve, reject) => {
          const es = new EventSource(root + '/queue/data?session_hash=' + session);
          es.onmessage = m => { const msg = JSON.parse(m.data);
            if (msg.msg === 'process_completed' && msg.event_id === event_id) {
              es.close(); msg.success ? resolve(msg.output.data[0]) : reject(new Error('echo failed')); } };
        });
      }
      const el = document.createElement('div');
      el.textContent = out;
      document.body.appendChild(el);
      const t1 = await frame();
      el.remove();
      if (out !== token) throw new Error('echo returned ' + out);
      return t1 - t0;
    },
  };
})();
"""

TEXT_SETTER_JS = """([sel, value]) => {
  const el = document.querySelector(sel);
  const f = el && (el.matches('textarea, input') ? el : el.querySelector('textarea, input'));
  if (!f) return false;
  const proto = f.tagName === 'TEXTAREA' ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, 'value').set.call(f, value);
  f.dispatchEvent(new Event('input', {bubbles: true}));
  f.dispatchEvent(new Event('change', {bubbles: true}));
  return true;
}"""


def browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; never `playwright install`)"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    return None


class Browser:
    """One Chromium for a whole group of rows; `page()` opens a fresh context (own cache, cookies)."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self._profile = Path(tempfile.mkdtemp(prefix="cam-bench-chromium-"))
        self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)

    def context(self, extra_js: str = "") -> Any:
        ctx = self.browser.new_context(viewport=VIEWPORT)
        ctx.add_init_script(PAGE_JS + extra_js)  # one script: the order of several is undefined
        ctx.set_default_timeout(TIMEOUT_MS)
        return ctx

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()
        shutil.rmtree(self._profile, ignore_errors=True)


@contextmanager
def chromium() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()


def srcs(page: Any, selector: str) -> list[str]:
    return list(page.evaluate("sel => window.__bench.srcs(sel)", selector))


# The last `timed` call's time from the input event to the answer's arrival (the new ``src`` set),
# before the picture was fetched and decoded: rows read it right after each measurement.
last_answer_ms: list[float | None] = [None]


def timed(
    page: Any,
    action: Callable[[], object],
    input_sel: str,
    types: tuple[str, ...],
    output: dict[str, Any],
) -> float:
    """Milliseconds from the first ``types`` event on ``input_sel`` to ``output`` shown (see module doc)."""
    page.evaluate("([i, t, o, ms]) => window.__bench.arm(i, t, o, ms)", [input_sel, list(types), output, TIMEOUT_MS])
    action()
    res = page.evaluate("() => window.__bench.done")
    if res.get("error"):
        raise RuntimeError(f"the page showed an error instead of {output['sel']}: {res['error']}")
    if res["t1"] is None:
        raise TimeoutError(f"{output['sel']} did not show a new {output['kind']} within {TIMEOUT_MS / 1e3:.0f} s")
    if res["t0"] is None:
        raise RuntimeError(f"no {'/'.join(types)} event reached {input_sel}: the action did not hit the control")
    last_answer_ms[0] = float(res["tsrc"] - res["t0"]) if res.get("tsrc") is not None else None
    return float(res["t1"] - res["t0"])


def timed_images(page: Any, action: Callable[[], object], input_sel: str, types: tuple[str, ...], out: str) -> float:
    return timed(page, action, input_sel, types, {"kind": "images", "sel": out, "before": srcs(page, out)})


def echo_mode(page: Any) -> str | None:
    """How the echo can be measured on this page: "page" (its hidden controls are rendered), "fetch"
    (only the event exists: a gr.Column(visible=False) leaves its controls out of the page), or None."""
    if all(has(page, s) for s in ("#echo-in", "#echo-btn", "#echo-out")):
        return "page"
    return "fetch" if page.evaluate("() => window.__bench.echoDep() !== null") else None


ECHO_NOTES = {
    "page": "echo: #echo-in -> #echo-btn click -> token shown in #echo-out",
    "fetch": (
        "echo: the page's own request for the echo event (fetch from the page, then the token drawn); its "
        "controls are not rendered (visible=False), so the page cannot be clicked: visible='hidden' would"
    ),
}


def echo_once(page: Any, mode: str = "page") -> float:
    """One round of the hidden echo event: type a fresh token into ``#echo-in``, click ``#echo-btn``,
    wait until ``#echo-out`` shows it. The controls are hidden, so they are driven from page JS.
    With ``mode="fetch"`` the page sends the echo event's request itself (see `echo_mode`)."""
    token = uuid.uuid4().hex[:12]
    if mode == "fetch":
        return float(page.evaluate("t => window.__bench.echoFetch(t)", token))
    if not page.evaluate(TEXT_SETTER_JS, ["#echo-in", token]):
        raise RuntimeError("#echo-in has no text field")
    page.wait_for_timeout(30)  # let the component take the value before the click reads it
    return timed(
        page,
        lambda: page.evaluate("() => document.querySelector('#echo-btn').click()"),
        "#echo-btn",
        ("click",),
        {"kind": "text", "sel": "#echo-out", "text": token},
    )


def has(page: Any, selector: str) -> bool:
    return bool(page.evaluate("sel => !!document.querySelector(sel)", selector))


def first_load(b: Browser, url: str, selector: str, splits: list[dict[str, float]] | None = None) -> float:
    """Milliseconds from navigation start (fresh context: empty cache) until ``selector``'s images show;
    ``splits`` gets when the pictures' src arrived and what the page fetched (count, KB)."""
    ctx = b.context(f"\nwindow.__benchFirst = window.__bench.first({json.dumps(selector)});")
    try:
        page = ctx.new_page()
        page.goto(url, wait_until="commit")
        res = page.evaluate("() => window.__benchFirst")
        if splits is not None:
            splits.append({k: float(v) for k, v in res.items() if v is not None and k != "t1"})
        return float(res["t1"])
    finally:
        ctx.close()
