"""The layout the README's Architecture section promises: app -> explorer -> cam, Gradio only in app.py,
no import cycle, and files small enough to read."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest

from explorer import page, views
from explorer.explorer import Explorer

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cam", "explorer")


def modules(package: str) -> dict[str, Path]:
    return {f"{package}.{p.stem}".removesuffix(".__init__"): p for p in sorted((ROOT / package).glob("*.py"))}


ALL = {name: path for package in PACKAGES for name, path in modules(package).items()}


def imports(path: Path) -> set[str]:
    """The modules this file imports: ``from x import y`` is module ``x.y`` when that is one of ours
    (a submodule), else ``x`` (a name defined in ``x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            named = {f"{node.module}.{a.name}" for a in node.names}
            found |= (named & set(ALL)) | ({node.module} if named - set(ALL) else set())
    return found


def test_app_py_is_thin() -> None:
    """A ratchet: 450 lines until the page-side overlay redraw's events (and their handler) came in."""
    assert len((ROOT / "app.py").read_text(encoding="utf-8").splitlines()) <= 460


@pytest.mark.parametrize(("folder", "limit"), [("cam", 500), ("explorer", 500), ("benchmarks", 400)])
def test_no_module_is_too_long_to_read(folder: str, limit: int) -> None:
    long = {
        p.name: n
        for p in (ROOT / folder).glob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > limit
    }
    assert not long, long


def test_only_app_py_imports_gradio() -> None:
    users = [
        str(p.relative_to(ROOT))
        for p in [*ALL.values(), *(ROOT / "scripts").glob("*.py")]
        if any(m == "gradio" or m.startswith("gradio.") for m in imports(p))
    ]
    assert users == []
    assert "gradio" in imports(ROOT / "app.py")


def test_dependencies_point_one_way() -> None:
    """cam never imports explorer or the app; nothing imports the app; scripts never import tests."""
    for name, path in ALL.items():
        got = imports(path)
        assert "app" not in got, name
        if name.startswith("cam"):
            assert not any(m.split(".")[0] == "explorer" for m in got), name
    for script in (ROOT / "scripts").glob("*.py"):
        assert not any(m.split(".")[0] == "tests" for m in imports(script)), script.name


def test_there_is_no_import_cycle() -> None:
    graph = {name: {m for m in imports(path) if m in ALL and m != name} for name, path in ALL.items()}
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", " -> ".join([*trail, node])
        state[node] = "open"
        for nxt in sorted(graph[node]):
            visit(nxt, [*trail, node])
        state[node] = "done"

    for name in sorted(graph):
        visit(name, [])


def names(parts: tuple[page.Part, ...]) -> list[str]:
    return [n for p in parts for n in ([p.name] if p.name else []) + names(p.parts)]


def test_the_page_shows_every_view_model_field_once(explorer: Explorer) -> None:
    """Each field a view-model fills has exactly one component of that name on the page (class tiles
    and the photo passed to the editor are the handlers' own); no two parts share a name."""
    shown = names(page.layout(explorer))
    assert len(shown) == len(set(shown)), sorted({n for n in shown if shown.count(n) > 1})
    view_models = [views.MainView, views.MethodsTab, views.FaithTab, views.ChannelsTab, views.SanityTab]
    view_models += [views.HideTab, views.PotTab]
    wanted = {f.name for vm in view_models for f in fields(vm)} - {"class_tiles", "photo", "example"}
    assert wanted <= set(shown), sorted(wanted - set(shown))
    assert set(page.COMPONENTS) <= set(shown), sorted(set(page.COMPONENTS) - set(shown))
