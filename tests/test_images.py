"""cam.images.load_image on the hostile corpus, on arrays and PIL images in every mode, EXIF, draft
decoding, and a subprocess peak-memory check for a decompression bomb."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import GifImagePlugin, Image, ImageFile

import cam.images as images
from cam.errors import ImageError
from cam.images import MAX_ASPECT, MAX_BYTES, load_image
from tests.hostile.corpus import OVERSIZE_NAME, Case, exif_bytes, make_corpus, png_bomb, scene, smooth

REPO = Path(__file__).resolve().parents[1]

REQUIRED = {  # what the brief demands of the corpus -> a case name that provides it
    "png bomb": "png_bomb_10000x10000",
    "huge jpeg": "jpeg_huge_6000x4000",
    "jpeg over the pixel cap": "jpeg_bomb_header_9000x9000",
    "truncated png": "png_truncated",
    "truncated jpeg": "jpeg_truncated",
    "truncated gif": "gif_truncated",
    "zero bytes": "zero_bytes",
    "text named png": "text_named_png",
    "html named png": "html_named_png",
    "svg": "vector_svg",
    "16-bit png": "png_gray16",
    "float tiff": "tiff_float",
    "cmyk jpeg": "jpeg_cmyk",
    "rgba": "png_rgba",
    "la": "png_la",
    "p with transparency": "png_palette_transparent",
    "1-bit": "png_1bit",
    "exif 6": "jpeg_exif6",
    "exif 8": "jpeg_exif8",
    "animated gif": "gif_animated",
    "animated webp": "webp_animated",
    "1x1": "png_1x1",
    "8x5000": "strip_8x5000",
    "over size": OVERSIZE_NAME,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    cases = make_corpus(tmp_path_factory.mktemp("corpus"))
    return {c.name: c for c in cases}


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- corpus


def test_corpus_is_complete_and_deterministic(corpus: dict[str, Case], tmp_path: Path) -> None:
    assert len(corpus) >= 30
    missing = {k: v for k, v in REQUIRED.items() if v not in corpus}
    assert not missing
    again = make_corpus(tmp_path)
    for case in again:
        if case.name != OVERSIZE_NAME:
            assert case.path.read_bytes() == corpus[case.name].path.read_bytes(), case.name
    big = [c.name for c in again if c.path.stat().st_size > 1_000_000]
    assert big == [OVERSIZE_NAME]
    assert corpus[OVERSIZE_NAME].path.stat().st_size == MAX_BYTES + 1


def test_every_corpus_case(corpus: dict[str, Case]) -> None:
    """ok cases: right colours, orientation and original size; error cases: ImageError and message."""
    failures: list[str] = []
    for case in corpus.values():
        try:
            loaded = load_image(case.path)
        except ImageError as exc:
            if case.expect == "ok":
                failures.append(f"{case.name}: refused: {exc}")
            elif str(case.error) not in str(exc):
                failures.append(f"{case.name}: message lacks {case.error!r}: {exc}")
            elif not str(exc).startswith(f"'{case.path.name}'"):
                failures.append(f"{case.name}: message does not name the file: {exc}")
            continue
        if case.expect == "error":
            failures.append(f"{case.name}: loaded, expected an error containing {case.error!r}")
            continue
        assert loaded.model_input.shape == (256, 256, 3) and loaded.model_input.dtype == np.uint8
        err = mean_abs(loaded.model_input, case.expected_model_input())
        if err > case.tolerance:
            failures.append(f"{case.name}: mean abs error {err:.2f} > {case.tolerance}")
        if loaded.original_size != case.size:
            failures.append(f"{case.name}: original_size {loaded.original_size} != {case.size}")
        assert loaded.display is not None and loaded.display.mode == "RGB"
        w, h = case.size  # type: ignore[misc]
        dw, dh = loaded.display.size
        if max(dw, dh) != min(1024, max(w, h)) or abs(dw / dh - w / h) > 0.01:
            failures.append(f"{case.name}: display {dw}x{dh} for a {w}x{h} photo")
    assert not failures, "\n".join(failures)


def test_bytes_and_pil_inputs_match_paths(corpus: dict[str, Case]) -> None:
    for case in corpus.values():
        if case.expect != "ok":
            continue
        from_path = load_image(case.path)
        data = case.path.read_bytes()
        for src in (data, bytearray(data), memoryview(data)):
            assert np.array_equal(load_image(src).model_input, from_path.model_input), case.name
        with Image.open(case.path) as pil:
            before = (pil.size, pil.mode)
            from_pil = load_image(pil)
            assert (pil.size, pil.mode) == before, f"{case.name}: the caller's image was changed"
        # a caller's PIL image is never drafted, so large JPEGs differ by the decoder's downscaling only
        assert mean_abs(from_pil.model_input, from_path.model_input) <= 1.0, case.name
        assert from_pil.original_size == case.size


def test_error_cases_refuse_as_bytes_too(corpus: dict[str, Case]) -> None:
    for case in corpus.values():
        if case.expect == "error":
            with pytest.raises(ImageError, match=case.error):
                load_image(case.path.read_bytes())


def test_model_only_path_matches_display_path(corpus: dict[str, Case]) -> None:
    for case in corpus.values():
        if case.expect != "ok":
            continue
        fast = load_image(case.path, display_max_side=None)
        full = load_image(case.path)
        assert fast.display is None
        assert fast.original_size == full.original_size == case.size
        assert mean_abs(fast.model_input, case.expected_model_input()) <= case.tolerance, case.name


# ---------------------------------------------------------------------------------------------- memory


def test_png_bomb_is_refused_without_allocating(tmp_path: Path) -> None:
    """Peak-RSS growth (VmHWM, reset before each step) while refusing a 12 KB 10000x10000 PNG, in a
    fresh process; decoding it the naive way in the same process must cost hundreds of MB, which shows
    the measurement can fail."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(10_000, 10_000))
    code = textwrap.dedent(
        f"""
        import io, warnings
        from PIL import Image
        from cam.images import load_image, ImageError
        data = open({str(bomb)!r}, "rb").read()
        def status(key):  # KiB, from the kernel's view of this process
            for line in open("/proc/self/status"):
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        def reset_peak():  # importing torch set a high peak already: start the peak afresh
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        rss = lambda: status("VmHWM")
        reset_peak()
        before = status("VmRSS")
        for src in ({str(bomb)!r}, data):
            try:
                load_image(src)
                raise SystemExit("the bomb loaded")
            except ImageError as exc:
                assert "megapixels" in str(exc)
        refused = rss() - before
        reset_peak()
        before = status("VmRSS")
        warnings.simplefilter("ignore")
        img = Image.open(io.BytesIO(data))
        img.load()
        rgb = img.convert("RGB")  # what a loader without the header check would go on to do
        naive = rss() - before
        print(refused, naive)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    refused_kib, naive_kib = map(int, out.stdout.split())
    assert len(bomb.read_bytes()) < 13_000
    assert refused_kib < 10 * 1024, f"refusing the bomb grew the peak RSS by {refused_kib} KiB"
    assert naive_kib > 90 * 1024, f"decoding the bomb naively only cost {naive_kib} KiB"


# ---------------------------------------------------------------------------------------------- EXIF


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_exactly(orientation: int) -> None:
    want = scene(40, 24)  # what a viewer shows
    inverse = {  # the stored pixels: each transpose undone (5 and 7 are their own inverses, 6 <-> 8)
        1: None,
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    stored = Image.fromarray(want, "RGB")
    if inverse is not None:
        stored = stored.transpose(inverse)
    loaded = load_image(encode(stored, "PNG", exif=exif_bytes(orientation)))
    assert loaded.original_size == (40, 24)
    assert loaded.display is not None
    assert np.array_equal(np.asarray(loaded.display), want)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_broken_exif_is_ignored_not_refused() -> None:
    want = scene(40, 24)
    data = encode(Image.fromarray(want, "RGB"), "PNG", exif=b"Exif\x00\x00MM\x00*\xff\xff\xff\xff" + b"\x00" * 8)
    loaded = load_image(data)
    assert loaded.display is not None and np.array_equal(np.asarray(loaded.display), want)


@pytest.mark.parametrize("orientation, size", [(1, (4000, 3000)), (6, (3000, 4000)), (8, (3000, 4000))])
@pytest.mark.parametrize("display_max_side", [1024, None, 300])
def test_draft_decoded_jpeg_reports_true_size(
    orientation: int, size: tuple[int, int], display_max_side: int | None
) -> None:
    photo = Image.fromarray(smooth(4000, 3000, seed=5), "RGB")
    data = encode(photo, "JPEG", quality=85, exif=exif_bytes(orientation))
    with Image.open(io.BytesIO(data)) as probe:  # the same call the loader makes: it must downscale
        probe.draft("RGB", images._needed(4000, 3000, display_max_side))
        assert probe.size[0] < 4000
    loaded = load_image(data, display_max_side=display_max_side)
    assert loaded.original_size == size
    with Image.open(io.BytesIO(data)) as reference:  # a full decode through the PIL-input path (no draft)
        slow = load_image(reference, display_max_side=display_max_side)
    assert slow.original_size == size
    assert mean_abs(loaded.model_input, slow.model_input) < 1.5
    if display_max_side is None:
        assert loaded.display is None
    else:
        assert loaded.display is not None
        w, h = size
        s = display_max_side / max(w, h)
        assert loaded.display.size == (round(w * s), round(h * s))


# ---------------------------------------------------------------------------------------------- PIL modes


def test_pil_images_in_every_mode() -> None:
    rgb = scene(48, 32)
    base = Image.fromarray(rgb, "RGB")
    grey = np.asarray(base.convert("L"))
    opaque = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    half = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    bilevel = base.convert("1", dither=Image.Dither.NONE)
    expected = {
        "RGB": (base, rgb, 0.0),
        "RGBX": (base.convert("RGBX"), rgb, 0.0),
        "RGBA opaque": (Image.fromarray(opaque, "RGBA"), rgb, 0.0),
        "RGBA half": (Image.fromarray(half, "RGBA"), ((rgb.astype(int) * 128 + 255 * 127 + 127) // 255), 0.0),
        "RGBa": (
            Image.fromarray(half, "RGBA").convert("RGBa"),
            ((rgb.astype(int) * 128 + 255 * 127 + 127) // 255),
            1.0,
        ),
        "CMYK": (base.convert("CMYK"), rgb, 0.0),
        "YCbCr": (base.convert("YCbCr"), rgb, 2.0),
        "HSV": (base.convert("HSV"), rgb, 2.0),
        "L": (base.convert("L"), np.dstack([grey] * 3), 0.0),
        "LA": (Image.merge("LA", [base.convert("L"), Image.new("L", base.size, 255)]), np.dstack([grey] * 3), 0.0),
        "La": (
            Image.merge("LA", [base.convert("L"), Image.new("L", base.size, 255)]).convert("La"),
            np.dstack([grey] * 3),
            0.0,
        ),
        "1": (bilevel, np.dstack([np.where(np.asarray(bilevel), 255, 0)] * 3), 0.0),
        "P": (
            base.quantize(256, dither=Image.Dither.NONE),
            np.asarray(base.quantize(256, dither=Image.Dither.NONE).convert("RGB")),
            0.0,
        ),
        "I;16": (Image.fromarray(grey.astype(np.uint16) * 257), np.dstack([grey] * 3), 0.0),
        "I 16-bit values": (Image.fromarray(grey.astype(np.int32) * 257), np.dstack([grey] * 3), 0.0),
        "I 8-bit values": (Image.fromarray(grey.astype(np.int32)), np.dstack([grey] * 3), 0.0),
        "F [0, 1]": (Image.fromarray(grey.astype(np.float32) / 255), np.dstack([grey] * 3), 0.0),
        "F [0, 255]": (Image.fromarray(grey.astype(np.float32)), np.dstack([grey] * 3), 0.0),
    }
    for label, (img, want, tol) in expected.items():
        loaded = load_image(img)
        assert loaded.display is not None
        got = np.asarray(loaded.display)
        assert got.shape == (32, 48, 3), label
        assert float(np.abs(got.astype(int) - np.asarray(want).astype(int)).mean()) <= tol, label
        assert loaded.display is not img, "the caller's image must not be handed back"


def test_wide_range_images_are_stretched_and_nan_refused() -> None:
    ramp = np.linspace(-1000.0, 3000.0, 48 * 32, dtype=np.float32).reshape(32, 48)
    got = np.asarray(load_image(Image.fromarray(ramp, "F")).model_input)[..., 0]
    assert got.min() == 0 and got.max() == 255  # min-max stretch
    bad = ramp.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ImageError, match="NaN"):
        load_image(Image.fromarray(bad, "F"))


def test_p_with_transparency_and_palette_alpha_go_on_white() -> None:
    idx = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    pal = Image.fromarray(idx, "P")
    pal.putpalette([200, 0, 0, 0, 200, 0, 0, 0, 200, 9, 9, 9])
    pal.info["transparency"] = bytes([0, 255, 128, 255])  # per-entry alpha (tRNS)
    got = np.asarray(load_image(pal).display)
    assert got[0, 0].tolist() == [255, 255, 255]
    assert got[0, 1].tolist() == [0, 200, 0]
    assert got[1, 0].tolist() == [(255 * 127 + 127) // 255] * 2 + [(200 * 128 + 255 * 127 + 127) // 255]


def test_a_lazy_truncated_pil_image_is_refused() -> None:
    data = encode(Image.fromarray(smooth(64, 64, seed=2), "RGB"), "PNG")
    with Image.open(io.BytesIO(data[: len(data) // 2])) as lazy, pytest.raises(ImageError, match="damaged"):
        load_image(lazy)


def test_gifs_are_never_scanned_for_frames(monkeypatch: pytest.MonkeyPatch, corpus: dict[str, Case]) -> None:
    def forbidden(*_: object) -> None:
        raise AssertionError("seek/n_frames/is_animated called on an untrusted GIF")

    monkeypatch.setattr(GifImagePlugin.GifImageFile, "seek", forbidden)
    monkeypatch.setattr(GifImagePlugin.GifImageFile, "n_frames", property(forbidden))
    monkeypatch.setattr(GifImagePlugin.GifImageFile, "is_animated", property(forbidden))
    for name in ("gif_animated", "gif_animated_truncated_frame1", "gif_transparent"):
        case = corpus[name]
        assert mean_abs(load_image(case.path).model_input, case.expected_model_input()) <= case.tolerance


# ---------------------------------------------------------------------------------------------- arrays


def test_arrays_of_every_accepted_dtype_and_shape() -> None:
    rgb = scene(48, 32)
    grey = rgb[..., 1]
    alpha = np.full((32, 48), 51, np.uint8)
    cases: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "uint8 rgb": (rgb, rgb),
        "uint8 rgba": (np.dstack([rgb, alpha]), (rgb.astype(int) * 51 + 255 * 204 + 127) // 255),
        "uint8 (H, W)": (grey, np.dstack([grey] * 3)),
        "uint8 (H, W, 1)": (grey[..., None], np.dstack([grey] * 3)),
        "bool": (grey > 128, np.dstack([np.where(grey > 128, 255, 0)] * 3)),
        "uint16": (rgb.astype(np.uint16) * 257, rgb),
        "int64 in [0, 255]": (rgb.astype(np.int64), rgb),
        "float32 [0, 1]": (rgb.astype(np.float32) / 255, rgb),
        "float64 [0, 255]": (rgb.astype(np.float64), rgb),
        "float16 [0, 1]": (rgb.astype(np.float16) / 255, rgb),
        "reversed strides": (rgb[::-1, ::-1][::-1, ::-1], rgb),
        "fortran order": (np.asfortranarray(rgb), rgb),
    }
    for label, (arr, want) in cases.items():
        loaded = load_image(arr)
        assert loaded.original_size == (48, 32), label
        got = np.asarray(loaded.display).astype(int)
        assert np.abs(got - np.asarray(want).astype(int)).max() <= (1 if "16" in label else 0), label
    flipped = load_image(rgb[:, ::-1])
    assert np.array_equal(np.asarray(flipped.display), rgb[:, ::-1])


@pytest.mark.parametrize(
    "arr, message",
    [
        (np.zeros((3, 64, 64), np.uint8), "channels-first"),
        (np.zeros((1, 64, 64, 3), np.uint8), "batch of one"),
        (np.zeros((64, 64, 2), np.uint8), "got (64, 64, 2)"),
        (np.zeros((64,), np.uint8), "got (64,)"),
        (np.zeros((0, 64, 3), np.uint8), "is empty"),
        (np.zeros((64, 64, 3), np.int32) - 1, "from -1 to -1"),
        (np.full((64, 64, 3), 300, np.int64), "from 300 to 300"),
        (np.full((64, 64, 3), -0.5, np.float32), "normalised"),
        (np.full((64, 64, 3), np.nan, np.float32), "NaN"),
        (np.full((64, 64, 3), np.inf, np.float64), "NaN or infinite"),
        (np.zeros((64, 64, 3), np.complex64), "dtype complex64"),
        (np.zeros((64, 64, 3), object), "dtype object"),
        (np.zeros((64, 64, 3), "U1"), "dtype <U1"),
        (np.zeros((8, 5000), np.uint8), "elongated"),
        (np.zeros((8000, 8000), np.bool_), "megapixels"),
    ],
)
def test_bad_arrays_are_refused_clearly(arr: np.ndarray, message: str) -> None:
    with pytest.raises(ImageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_image(arr)


def test_aspect_limit_is_inclusive() -> None:
    assert load_image(np.zeros((10, 10 * MAX_ASPECT), np.uint8)).original_size == (10 * MAX_ASPECT, 10)
    with pytest.raises(ImageError, match="elongated"):
        load_image(np.zeros((10, 10 * MAX_ASPECT + 1), np.uint8))


# ---------------------------------------------------------------------------------------------- paths, types


def test_paths_that_are_not_files(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="No file at"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)
    with pytest.raises(ImageError, match="Cannot read the file"):
        load_image("bad\x00name.png")
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


def test_unsupported_source_types() -> None:
    for src in (42, None, [[0, 0, 0]], {"path": "x.png"}):
        with pytest.raises(ImageError, match="Cannot load an image from a"):
            load_image(src)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="display_max_side"):
        load_image(np.zeros((4, 4), np.uint8), display_max_side=0)


def test_formats_outside_the_whitelist_are_not_tried() -> None:
    icon = encode(Image.fromarray(scene(32, 32), "RGB"), "ICO")
    with Image.open(io.BytesIO(icon)) as probe:  # Pillow itself reads it ...
        probe.load()
    with pytest.raises(ImageError, match="not an image this app can read"):  # ... the loader does not
        load_image(icon)


def test_loaded_image_passes_through_and_tensor_format() -> None:
    loaded = load_image(scene(48, 32))
    assert load_image(loaded) is loaded
    t = loaded.tensor()
    assert t.shape == (1, 3, 256, 256) and t.dtype.is_floating_point
    assert np.allclose(t[0].permute(1, 2, 0).numpy() * 255, loaded.model_input, atol=1e-4)
    with pytest.raises(ValueError):
        loaded.model_input[0, 0, 0] = 1  # read-only: a shared input cannot be altered by a caller


def test_truncation_is_not_tolerated_globally() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# ---------------------------------------------------------------------------------------------- exceptions


@pytest.mark.parametrize(
    "exc",
    [
        struct.error("unpack requires a buffer of 4 bytes"),
        OSError("decoder error -2"),
        SyntaxError("broken PNG file"),
        ValueError("tile cannot extend outside image"),
        EOFError(),
        Image.DecompressionBombError("Image size (1 pixels) exceeds limit"),
        MemoryError(),
        IndexError("list index out of range"),
        TypeError("unsupported operand"),
        ZeroDivisionError("division by zero"),
        KeyError("transparency"),
        RecursionError("maximum recursion depth exceeded"),
    ],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("where", ["open", "load"])
def test_every_pillow_exception_becomes_image_error(
    monkeypatch: pytest.MonkeyPatch, exc: Exception, where: str
) -> None:
    def boom(*_: object, **__: object) -> None:
        raise exc

    if where == "open":
        monkeypatch.setattr(images.Image, "open", boom)
    else:
        monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
    data = encode(Image.fromarray(scene(32, 24), "RGB"), "PNG")
    with pytest.raises(ImageError) as info:
        load_image(data)
    message = str(info.value)
    assert message.startswith("The uploaded data ")
    if isinstance(exc, MemoryError):
        assert "too large to decode with the memory available" in message
    elif isinstance(exc, Image.DecompressionBombError):
        assert "megapixels" in message
    else:
        assert "is damaged or incomplete" in message
        assert str(exc) in message or type(exc).__name__ in message  # the detail is kept for a bug report
