"""Simulated browser tabs: the page's own events over HTTP, without a browser.

`PageEvents` reads the running app's ``/config`` (components, their values, and the event graph:
which dependency a component's event triggers, and which run after it with ``.then``/``.success``).
`UISession` is one tab: one ``session_hash``, the component values the page would hold, and
`fire(component, event)` runs the dependency and its follow-ups exactly as the front end does --
queued events through ``queue/join`` + the ``queue/data`` stream, the others through ``run/predict``,
``gr.State`` inputs sent as null (the server keeps them per session), outputs written back into the
values. Nothing here knows app.py's handlers: events are found by element id and event name.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any


class EventError(RuntimeError):
    """An event finished with an error message (a refusal is an answer, not a crash)."""


class PageEvents:
    """The page's components and event graph, from ``/config``."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        with urllib.request.urlopen(url + "config", timeout=timeout) as r:
            self._read(json.load(r), url)

    def _read(self, config: dict[str, Any], url: str) -> None:
        self.url = url
        comps = config["components"]
        self.types = {c["id"]: c["type"] for c in comps}
        self.initial = {c["id"]: c.get("props", {}).get("value") for c in comps}
        self.by_elem = {c["props"]["elem_id"]: c["id"] for c in comps if c.get("props", {}).get("elem_id")}
        self.tabs = {c["props"]["id"]: c["id"] for c in comps if c["type"] == "tabitem" and "id" in c["props"]}
        self.props = {c["id"]: c.get("props", {}) for c in comps}
        self.deps = {d["id"]: d for d in config["dependencies"]}
        self.after: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self.on: dict[tuple[int | None, str], list[dict[str, Any]]] = defaultdict(list)
        for d in config["dependencies"]:
            if d.get("trigger_after") is not None:
                self.after[d["trigger_after"]].append(d)
                continue
            for target, event in d["targets"]:
                self.on[(target, event)].append(d)
        self.load_target = next((t for (t, e) in self.on if e == "load"), None)

    def elem(self, elem_id: str) -> int:
        try:
            return self.by_elem[elem_id]
        except KeyError:
            raise LookupError(f"the page has no component with elem_id {elem_id!r}") from None

    def choices(self, comp: int) -> list[Any]:
        """The values a Radio/Dropdown/CheckboxGroup offers (``choices`` are [label, value] pairs)."""
        return [c[1] if isinstance(c, list | tuple) else c for c in self.props[comp].get("choices", [])]


class UISession:
    """One simulated browser tab on the page (see the module docstring)."""

    def __init__(self, page: PageEvents, timeout: float = 600.0, client: str | None = None) -> None:
        """``client``: an address sent as X-Forwarded-For (the app trusts it only with SYSTEM=spaces,
        as behind the Spaces proxy), so sessions can stand for different users."""
        self.page = page
        self.headers = {"X-Forwarded-For": client} if client else {}
        self.url = page.url
        self.values: dict[int, Any] = dict(page.initial)
        self.session_hash = uuid.uuid4().hex[:11]
        self.timeout = timeout
        self.calls = 0
        self.errors: list[str] = []
        self.seconds: dict[str, float] = defaultdict(float)  # api_name -> wall seconds spent in it

    # -- what a reader does

    def load(self) -> None:
        self.fire(self.page.load_target, "load")

    def set(self, elem_id: str, value: Any) -> int:
        comp = self.page.elem(elem_id)
        self.values[comp] = value
        return comp

    def fire(self, comp: int | None, event: str, event_data: Any = None) -> bool:
        """Run what ``event`` on ``comp`` triggers, with its follow-ups; False when one failed."""
        ok = True
        for dep in self.page.on.get((comp, event), []):
            ok = self._chain(dep, event_data) and ok
        return ok

    def fire_elem(self, elem_id: str, event: str, event_data: Any = None) -> bool:
        return self.fire(self.page.elem(elem_id), event, event_data)

    def open_tab(self, tab_id: str) -> bool:
        return self.fire(self.page.tabs[tab_id], "select", {"id": tab_id, "selected": True})

    def upload(self, path: Path) -> dict[str, Any]:
        """POST a file to the upload route; returns the FileData payload the page would send."""
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{path.name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + path.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        req = urllib.request.Request(
            f"{self.url}gradio_api/upload?upload_id={uuid.uuid4().hex[:11]}",
            data=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **self.headers},
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            (stored,) = json.load(r)
        return {
            "path": stored,
            "orig_name": path.name,
            "size": path.stat().st_size,
            "mime_type": "image/png" if path.suffix == ".png" else "image/jpeg",
            "meta": {"_type": "gradio.FileData"},
        }

    def upload_photo(self, elem_id: str, path: Path) -> bool:
        """Choose a file in image input ``elem_id``: upload it, then its ``upload`` event."""
        comp = self.set(elem_id, self.upload(path))
        return self.fire(comp, "upload")

    # -- the front end's protocol

    def _chain(self, dep: dict[str, Any], event_data: Any) -> bool:
        ok = self._run(dep, event_data) if dep.get("backend_fn") else True
        for child in self.page.after.get(dep["id"], []):
            if (child.get("trigger_only_on_success") and not ok) or (child.get("trigger_only_on_failure") and ok):
                continue
            self._chain(child, None)
        return ok

    def _run(self, dep: dict[str, Any], event_data: Any) -> bool:
        data = [None if self.page.types.get(i) == "state" else self.values.get(i) for i in dep["inputs"]]
        payload = {
            "data": data,
            "event_data": event_data,
            "fn_index": dep["id"],
            "trigger_id": None,
            "session_hash": self.session_hash,
        }
        self.calls += 1
        t0 = time.perf_counter()
        try:
            out = self._queued(payload) if dep.get("queue", True) else self._direct(payload)
        except EventError as exc:
            self.errors.append(f"{dep.get('api_name')}: {str(exc)[:300]}")
            return False
        finally:
            self.seconds[str(dep.get("api_name"))] += time.perf_counter() - t0
        for comp, value in zip(dep["outputs"], out, strict=False):
            if isinstance(value, dict) and value.get("__type__") == "update":
                if "value" in value:
                    self.values[comp] = value["value"]
            elif self.page.types.get(comp) != "state":
                self.values[comp] = value
        return True

    def _post(self, route: str, payload: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            f"{self.url}gradio_api/{route}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", **self.headers},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return json.load(r)
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace")[:300]
            raise EventError(f"HTTP {exc.code} from {route}: {body}") from None

    def _direct(self, payload: dict[str, Any]) -> list[Any]:
        return list(self._post("run/predict", payload)["data"])

    def _queued(self, payload: dict[str, Any]) -> list[Any]:
        event_id = self._post("queue/join", payload)["event_id"]
        stream = urllib.request.Request(
            f"{self.url}gradio_api/queue/data?session_hash={self.session_hash}", headers=self.headers
        )
        with urllib.request.urlopen(stream, timeout=self.timeout) as r:
            for raw in r:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("event_id") not in (None, event_id):
                    continue
                if msg.get("msg") == "process_completed":
                    if not msg.get("success", False):
                        out = msg.get("output") or {}
                        raise EventError(str(out.get("error") or "the event failed without a message"))
                    return list(msg["output"]["data"])
        raise EventError("the event stream closed before the event completed")
