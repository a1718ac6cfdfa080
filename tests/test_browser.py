"""A real Chromium drives the page: upload, class switch, layer switch, every tab, an example, an
error toast, and an HTML page embedding the app in an iframe. Outputs must be FRESH after each action
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
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
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
            str(profile), executable_path=CHROMIUM, args=ARGS, headless=True,
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
        arg=[selector, before], timeout=TIMEOUT_MS,
    )
    page.wait_for_function(  # and fully loaded, so screenshots show them
        "sel => [...document.querySelectorAll(sel + ' img')].every(e => e.complete && e.naturalWidth > 0)",
        arg=selector, timeout=TIMEOUT_MS,
    )
    return srcs(page, selector)


def wait_text(page: Any, selector: str, text: str) -> None:
    page.wait_for_function(
        "([sel, t]) => (document.querySelector(sel)?.innerText || '').includes(t)", arg=[selector, text],
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
    assert not page.errors, page.errors  # type: ignore[attr-defined]


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
