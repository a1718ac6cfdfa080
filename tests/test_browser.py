"""A real Chromium drives the page: upload, class switch, layer switch, every tab (Methods and
Faithfulness with their buttons), an example, an error toast, and an HTML page embedding the app in an
iframe. Outputs must be FRESH after each action
(their image src changes and their text names the new class), not merely present.

Screenshots go to tests/artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.test_app import launched, load_app

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
ARTIFACTS = Path(__file__).parent / "artifacts"
TIMEOUT_MS = 60_000


def _browser_available() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; never `playwright install`)"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    return None


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return load_app(tmp_path_factory)


@pytest.fixture(scope="module")
def url(app: ModuleType) -> Iterator[str]:
    with launched(app) as served:
        yield served


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    missing = _browser_available()
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but no browser: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user-data-dir
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        pg = context.new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.errors = errors  # type: ignore[attr-defined]
        yield pg
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from cam.synthetic import draw_scene

    folder = tmp_path_factory.mktemp("browser-photos")
    out = []
    for species in range(2):
        p = folder / f"plant{species}.jpg"
        Image.fromarray(draw_scene(200 + species, species, size=512).image).save(p, quality=90)
        out.append(p)
    return out


def srcs(page: Any, selector: str) -> list[str]:
    return page.eval_on_selector_all(f"{selector} img", "els => els.map(e => e.currentSrc || e.src)")


def wait_fresh(page: Any, selector: str, before: list[str]) -> list[str]:
    """Wait until the images under ``selector`` are shown and differ from ``before``."""
    page.wait_for_function(
        """([sel, old]) => {
            const s = [...document.querySelectorAll(sel + ' img')].map(e => e.currentSrc || e.src);
            return s.length > 0 && s.every(x => x) && JSON.stringify(s) !== JSON.stringify(old);
        }""",
        arg=[selector, before],
        timeout=TIMEOUT_MS,
    )
    page.wait_for_function(  # and fully loaded, so screenshots show them
        "sel => [...document.querySelectorAll(sel + ' img')].every(e => e.complete && e.naturalWidth > 0)",
        arg=selector,
        timeout=TIMEOUT_MS,
    )
    return srcs(page, selector)


def wait_text(page: Any, selector: str, text: str) -> None:
    page.wait_for_function(
        "([sel, t]) => (document.querySelector(sel)?.innerText || '').includes(t)",
        arg=[selector, text],
        timeout=TIMEOUT_MS,
    )


def wait_idle(page: Any) -> None:
    """No output is pending (Gradio dims pending outputs with the class `pending`)."""
    page.wait_for_function("() => document.querySelectorAll('.pending').length === 0", timeout=TIMEOUT_MS)


def shot(page: Any, name: str) -> None:
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def test_page_flow(app: ModuleType, url: str, page: Any, photos: list[Path]) -> None:
    page.goto(url)
    page.wait_for_selector("#input-image")
    assert "Pot Plant CAM Explorer" in page.inner_text("body")
    assert app.MODEL.provenance.sha256 in page.inner_text("#provenance")
    shot(page, "01_start.png")

    # Upload: the prediction, the explained class and the CAM overlay appear.
    page.set_input_files("#input-image input[type=file]", str(photos[0]))
    cam1 = wait_fresh(page, "#cam-slider", [])
    wait_text(page, "#explained-class", "the predicted class")
    session_pred = page.inner_text("#explained-class")
    assert "Explaining" in session_pred
    wait_fresh(page, "#cam-heatmap", [])
    assert len(page.inner_text("#prediction")) > 0
    shot(page, "02_uploaded_cam.png")

    # Pick a class: the outputs are replaced, and name the class.
    name = app.MODEL.class_names[1]
    page.locator("#target input").click()
    page.get_by_role("option", name=name, exact=True).click()
    wait_text(page, "#explained-class", f"Explaining {name} (your choice")
    cam2 = wait_fresh(page, "#cam-slider", cam1)
    assert cam2 != cam1
    shot(page, "03_class_switched.png")

    # Every tab shows fresh output for this class.
    tab(page, "Grad-CAM")
    wait_fresh(page, "#gradcam-slider", [])
    shot(page, "04_gradcam.png")
    tab(page, "Compare")
    compare1 = wait_fresh(page, "#compare-image", [])
    wait_text(page, "#compare-numbers", f"Check for class {name}")
    wait_text(page, "#compare-numbers", "the two maps are the same map")
    shot(page, "05_compare_conv3.png")

    # Layer conv1: the comparison is recomputed and says why the maps now differ.
    page.locator("#layer").get_by_text("conv1", exact=True).click()
    wait_text(page, "#compare-numbers", "At conv1 the maps differ")
    compare2 = wait_fresh(page, "#compare-image", compare1)
    assert compare2 != compare1
    shot(page, "06_compare_conv1.png")
    with page.expect_download() as download:
        page.click("#download-compare")
    assert download.value.suggested_filename == f"compare_{name}_conv1.png"
    saved = ARTIFACTS / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.read_bytes()[:4] == b"\x89PNG"
    with page.expect_download() as download:
        page.click("#download-gradcam")
    assert download.value.suggested_filename == f"gradcam_{name}_conv1.npy"
    download.value.save_as(ARTIFACTS / download.value.suggested_filename)
    assert np.load(ARTIFACTS / download.value.suggested_filename).shape == (256, 256)

    tab(page, "All classes")
    for cls in app.MODEL.class_names:
        wait_fresh(page, f"#class-{cls}", [])
    shot(page, "07_all_classes.png")
    tab(page, "About")
    wait_text(page, "#about", "Zhou et al., 2016")
    assert "CC BY 4.0" in page.inner_text("#about") and "Selvaraju" in page.inner_text("#about")
    shot(page, "08_about.png")

    # Display settings re-render without a new upload.
    tab(page, "CAM")
    before = srcs(page, "#cam-slider")
    page.locator("#colormap input").click()
    page.get_by_role("option", name="viridis", exact=True).click()
    wait_fresh(page, "#cam-slider", before)
    shot(page, "09_viridis.png")
    assert not page.errors, page.errors


def inner(page: Any, selector: str) -> str:
    return page.inner_text(selector) if page.locator(selector).count() else ""


def test_methods_and_faithfulness_tabs(
    app: ModuleType, url: str, page: Any, photos: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app, "FAITHFULNESS_STEPS", 8)  # 15 passes a map instead of 63: same code, quicker
    page.goto(url)
    page.wait_for_selector("#input-image")
    page.set_input_files("#input-image input[type=file]", str(photos[1]))
    wait_fresh(page, "#cam-slider", [])
    wait_text(page, "#explained-class", "the predicted class")
    predicted = page.inner_text("#explained-class").split("Explaining ")[1].split(" ")[0]

    # Opening the tab computes every method; the page states the GAP identity from the numbers.
    tab(page, "Methods")
    tiles = wait_fresh(page, "#methods-gallery", [])
    assert len(tiles) == len(app.METHODS_ORDER)
    wait_text(page, "#methods-statement", f"for class {predicted}")
    wait_text(page, "#methods-statement", "equal CAM up to a positive scale")
    wait_text(page, "#methods-matrix", "Pearson correlation")
    matrix1 = page.inner_text("#methods-matrix")
    assert "HiResCAM" in matrix1 and "≡" in matrix1
    shot(page, "13_methods_conv3.png")

    # Another class: tiles, matrix and statement are replaced.
    name = next(c for c in app.MODEL.class_names if c != predicted)
    page.locator("#target input").click()
    page.get_by_role("option", name=name, exact=True).click()
    wait_text(page, "#methods-statement", f"for class {name}")
    wait_fresh(page, "#methods-gallery", tiles)
    wait_text(page, "#methods-matrix", f"for class {name}")
    assert page.inner_text("#methods-matrix") != matrix1
    shot(page, "14_methods_class_switched.png")

    # conv1: the methods part ways; Score-CAM on its button.
    page.locator("#layer").get_by_text("conv1", exact=True).click()
    wait_text(page, "#methods-statement", "At conv1 the methods part ways")
    assert "CAM (conv3)" in page.inner_text("#methods-matrix")
    before = srcs(page, "#methods-gallery")
    page.click("#compute-scorecam")
    wait_text(page, "#methods-matrix", "Score-CAM")
    wait_fresh(page, "#methods-gallery", before)
    shot(page, "15_methods_conv1_scorecam.png")

    # Faithfulness: nothing until the button, then two charts and a table; a class switch asks again.
    tab(page, "Faithfulness")
    wait_text(page, "#faith-note", f"Not computed yet for class {name} at conv1")
    page.click("#compute-faith")
    page.wait_for_function("() => document.querySelectorAll('#faith-plot svg').length === 2", timeout=TIMEOUT_MS)
    wait_text(page, "#faith-table", "Deletion AUC")
    wait_text(page, "#faith-table", "random map")
    plot1 = page.inner_html("#faith-plot")
    shot(page, "16_faithfulness.png")
    page.locator("#target input").click()
    page.get_by_role("option", name=predicted, exact=True).click()
    wait_text(page, "#faith-note", f"Not computed yet for class {predicted}")
    assert page.locator("#faith-plot svg").count() == 0
    page.click("#compute-faith")
    page.wait_for_function("() => document.querySelectorAll('#faith-plot svg').length === 2", timeout=TIMEOUT_MS)
    wait_text(page, "#faith-note", f"Class {predicted}, maps at conv1")
    assert page.inner_html("#faith-plot") != plot1
    shot(page, "17_faithfulness_class_switched.png")
    assert not page.errors, page.errors


def test_example_click(app: ModuleType, url: str, page: Any) -> None:
    if not app.EXAMPLES:
        pytest.skip("examples/ holds no photos yet")
    page.goto(url)
    page.wait_for_selector("#input-image")
    page.locator(".gallery-item, button.gallery").first.click()
    wait_fresh(page, "#cam-slider", [])
    first = app.EXAMPLES[0]
    if first.true_class:
        wait_text(page, "#explained-class", f"true class {first.true_class}")
    shot(page, "10_example.png")


def test_error_toast(url: str, page: Any, tmp_path: Path) -> None:
    page.goto(url)
    page.wait_for_selector("#input-image")
    notes = tmp_path / "notes.png"
    notes.write_text("this is text, not a photo")
    page.set_input_files("#input-image input[type=file]", str(notes))
    page.wait_for_selector("text=not an image", timeout=TIMEOUT_MS)
    shot(page, "11_error.png")


def test_embedded_in_an_iframe(url: str, page: Any) -> None:
    html = (Path(__file__).parent / "embed.html").read_text().replace("{URL}", url)
    page.set_content(html)
    frame = page.frame_locator("#space")
    frame.locator("#input-image").wait_for(timeout=TIMEOUT_MS)
    assert "Pot Plant CAM Explorer" in frame.locator("body").inner_text()
    shot(page, "12_embedded.png")


def test_photo_fixture_is_a_plant(photos: list[Path]) -> None:
    arr = np.asarray(Image.open(photos[0]))
    assert arr.shape == (512, 512, 3) and arr.std() > 10
