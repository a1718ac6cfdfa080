"""A reader's whole session over HTTP, event by event as the page sends them (`benchmarks.uisession`):
arrive, upload a photo, then change the layer and open tabs.

Gradio 6.31 rebuilt every output a handler left unchanged from its constructor arguments and kept the
copy in the session. The photo input's copy lost the folders it may read from, so the reader's own
upload was refused on every event after the first; and ~100 copies a session piled up in memory.
app.py's `_postprocess_data` lets unchanged outputs pass by.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest
from gradio.data_classes import ImageData

import app
from benchmarks.uisession import PageEvents, UISession
from cam import CamModel
from tests.conftest import References, make_explorer_for, serve


@pytest.fixture(scope="module")
def served(fixture_model: CamModel) -> Iterator[tuple[str, gr.Blocks]]:
    demo = app.build_demo(make_explorer_for(fixture_model, faithfulness_steps=4))
    with serve(demo) as url:
        yield url, demo


def test_an_uploaded_photo_serves_every_later_event(
    served: tuple[str, gr.Blocks], photos: dict[str, Path], refs: References, fixture_model: CamModel
) -> None:
    page = PageEvents(served[0])
    s = UISession(page)
    s.load()
    assert s.upload_photo("input-image", photos["teal"]), s.errors
    for layer in ("conv1", "conv3"):
        s.set("layer", layer)
        assert s.fire_elem("layer", "input"), s.errors
    for tab in ("methods", "inside-the-cam", "compare", "cam"):
        assert s.open_tab(tab), s.errors
    assert s.errors == []
    # The page shows the uploaded photo's probabilities (an independent float64 forward pass).
    shown = s.values[page.elem("prediction")]
    got = {c["label"]: c["confidence"] for c in shown["confidences"]}
    want = dict(zip(fixture_model.class_names, refs["teal"].probabilities, strict=True))
    assert got.keys() == want.keys()
    assert max(abs(got[k] - want[k]) for k in got) < 1e-4


def test_unchanged_outputs_are_not_copied_into_the_session(
    served: tuple[str, gr.Blocks], photos: dict[str, Path]
) -> None:
    """Only outputs sent a real property update (the four class tiles' captions, the scatter plot's
    axis title, the selected tab) may have a per-session copy."""
    url, demo = served
    page = PageEvents(url)
    s = UISession(page)
    s.load()
    s.upload_photo("input-image", photos["blue"])
    for tab in page.tabs:
        s.open_tab(tab)
    assert s.errors == []
    state = demo.state_holder[s.session_hash]
    copies = [type(b).__name__ for k, b in state.blocks_config.blocks.items() if b is not demo.blocks.get(k)]
    assert len(copies) <= 6, copies


def test_a_copy_gradio_rebuilds_still_reads_uploads(served: tuple[str, gr.Blocks], photos: dict[str, Path]) -> None:
    """A prop update (an example clicked in gr.Examples) makes Gradio rebuild the photo input from its
    constructor arguments; the copy must read uploads as the original does, and nothing else."""
    _, demo = served
    original = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "input-image")
    copy = type(original)(**original.constructor_args)
    upload = Path(gr.utils.get_upload_folder()) / "rebuilt-copy-test.png"
    upload.write_bytes(photos["olive"].read_bytes())
    try:
        payload = ImageData(path=str(upload), meta={"_type": "gradio.FileData"})
        assert copy.preprocess(payload) == str(upload.resolve())
        with pytest.raises(gr.Error, match="only reads images it received as uploads"):
            copy.preprocess(ImageData(path=str(photos["olive"]), meta={"_type": "gradio.FileData"}))
    finally:
        upload.unlink()
