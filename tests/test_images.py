"""cam.images.load_image on the hostile corpus, on arrays and PIL images in every mode, EXIF, draft
decoding, and a subprocess peak-memory check for a decompression bomb."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import GifImagePlugin, Image, ImageFile

import cam.images as images
from cam.errors import ImageError
from cam.images import MAX_ASPECT, MAX_BYTES, load_image
from tests.hostile.corpus import (
    OVERSIZE_NAME,
    Case,
    exif_bytes,
    gif_with_blocks,
    jpeg_repeat_scan,
    jpeg_segments,
    make_corpus,
    png_bomb,
    png_chunk,
    png_with_chunks,
    scene,
    smooth,
)

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
    "1,000 repeated scans": "jpeg_scans_1000",
    "progressive coefficient memory": "jpeg_progressive_444_6000x5000",
    "12-bit jpeg": "jpeg_12bit",
    "lossless 16-bit jpeg": "jpeg_lossless_16bit",
    "lossless 8-bit jpeg": "jpeg_lossless_8bit",
    "arithmetic jpeg": "jpeg_arithmetic",
    "2 MB icc profile": "png_icc_2mb",
    "png chunk count": "png_60000_chunks",
    "gif blocks": "gif_30000_comments",
    "webp pixels": "webp_5000x4000",
    "tiff strip size": "tiff_one_strip_6000x4000",
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


# Files that Pillow's own Image.open refuses (metadata over its 1 MB text limit) and the loader accepts
# by dropping that metadata from the bytes first: there is no PIL image of them to pass in.
PILLOW_CANNOT_OPEN = {"png_icc_2mb", "png_ztxt_2mb"}


def test_bytes_and_pil_inputs_match_paths(corpus: dict[str, Case]) -> None:
    for case in corpus.values():
        if case.expect != "ok":
            continue
        if case.name in PILLOW_CANNOT_OPEN:
            with pytest.raises(ValueError, match="MAX_TEXT_CHUNK"):
                Image.open(case.path)
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


# ---------------------------------------------------------------------------------------------- decode work


@pytest.fixture(scope="module")
def big_progressive() -> bytes:
    """A 7000x7000 grey progressive JPEG (~0.3 MB, 6 scans): the attack's base."""
    return encode(Image.linear_gradient("L").resize((7000, 7000)), "JPEG", quality=75, progressive=True)


def _scans(data: bytes) -> int:
    return sum(code == 0xDA for code, _, _ in jpeg_segments(data))


def test_a_thousand_repeated_scans_are_refused_in_milliseconds(big_progressive: bytes) -> None:
    """The issue's attack: one scan repeated 1,000 times (50 s in Pillow). Refused from the markers,
    ~10 ms; the control shows the construction is a valid JPEG whose decode cost grows with the scans."""
    attack = jpeg_repeat_scan(big_progressive, 1000)
    assert len(attack) < 400_000 and _scans(attack) == _scans(big_progressive) + 1000
    t0 = time.perf_counter()
    with pytest.raises(ImageError) as info:
        load_image(attack)
    refused = time.perf_counter() - t0
    message = str(info.value)
    assert f"this JPEG has {_scans(attack):,} scans; at most 64 are accepted" in message
    assert "re-save it as a baseline" in message.lower()
    assert refused < 0.5, f"refusing took {refused:.2f} s"
    control = jpeg_repeat_scan(big_progressive, 20)  # under every limit: decoded, 20 extra passes
    t0 = time.perf_counter()
    with Image.open(io.BytesIO(control)) as img:
        img.draft("L", (256, 256))
        img.load()
    assert time.perf_counter() - t0 > 5 * refused


def test_scan_limit_scales_with_pixels(big_progressive: bytes) -> None:
    """Scans x pixels: at 49 MP at most 32 scans (1.6e9 / 49e6), however few the 64-scan cap allows."""
    base = _scans(big_progressive)
    with pytest.raises(ImageError, match="at that size at most 32 scans are accepted"):
        load_image(jpeg_repeat_scan(big_progressive, 33 - base))
    assert load_image(jpeg_repeat_scan(big_progressive, 32 - base), display_max_side=None).original_size == (
        7000,
        7000,
    )


def test_small_progressive_jpeg_at_the_scan_cap() -> None:
    prog = encode(Image.fromarray(smooth(64, 48, seed=3), "RGB"), "JPEG", progressive=True)
    load_image(jpeg_repeat_scan(prog, 64 - _scans(prog)))
    with pytest.raises(ImageError, match="has 65 scans; at most 64"):
        load_image(jpeg_repeat_scan(prog, 65 - _scans(prog)))


_BIG = 24 * 1024 * 1024
_JPEG = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
_PNG = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "PNG")
_GIF = encode(Image.new("P", (64, 64)), "GIF")


@pytest.mark.parametrize(
    "data, message",
    [  # each took Pillow 8-100+ s (and up to +640 MB) before these limits, measured on 2 cores
        (_JPEG[:2] + b"\xff" * _BIG + _JPEG[2:], "junk or fill bytes"),
        (_JPEG[:2] + b"\xff\xfe\x00\x02" * (_BIG // 4) + _JPEG[2:], "metadata segments"),
        (_JPEG[:2] + b"\xff\xe5\x00\x02" * (_BIG // 4) + _JPEG[2:], "metadata segments"),
        (png_with_chunks(_PNG, png_chunk(b"abCd", b"") * (_BIG // 12)), "chunks"),
        (png_with_chunks(_PNG, png_chunk(b"IDAT", b"") * (_BIG // 12)), "chunks"),
        (gif_with_blocks(_GIF, b"\x21\xfe\x00" * (_BIG // 3)), "metadata blocks"),
        (gif_with_blocks(_GIF, b"\x21\xfe" + b"\x01a" * (_BIG // 2) + b"\x00"), "metadata blocks"),
        (gif_with_blocks(_GIF, b"\x21\xfe" + (b"\xff" + b"c" * 255) * 3000 + b"\x00"), "KB of comments"),
        (gif_with_blocks(_GIF, b"\x00" * (1 << 20)), "stray bytes"),
    ],
    ids=[
        "jpeg-fill",
        "jpeg-com",
        "jpeg-app",
        "png-ancillary",
        "png-idat",
        "gif-comments",
        "gif-subblocks",
        "gif-long-comment",
        "gif-junk",
    ],
)
def test_structure_bombs_are_refused_fast(data: bytes, message: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(ImageError, match=message):
        load_image(data)
    assert time.perf_counter() - t0 < 0.5


def test_ordinary_files_pass_the_structure_walks() -> None:
    """A real PNG with many IDAT chunks, a GIF with XMP and comments, a JPEG with ICC and EXIF segments."""
    rgb = smooth(300, 200, seed=8)
    img = Image.fromarray(rgb, "RGB")
    many = encode(img, "PNG")  # re-chunk its IDAT into 3,000 pieces (a writer flushing often)
    body = b"".join(c[8:-4] for c in _chunks(many) if c[4:8] == b"IDAT")
    step = -(-len(body) // 3000)
    idats = b"".join(png_chunk(b"IDAT", body[k : k + step]) for k in range(0, len(body), step))
    rechunked = many[:33] + idats + png_chunk(b"IEND", b"")
    assert np.array_equal(load_image(rechunked).model_input, load_image(many).model_input)
    gif = encode(img.quantize(64), "GIF", comment=b"plant " * 2000)
    load_image(gif)
    icc = bytes(range(256)) * 4000  # ~1 MB: 16 APP2 segments
    load_image(encode(img, "JPEG", icc_profile=icc, exif=exif_bytes(1), progressive=True))


def _chunks(data: bytes) -> list[bytes]:
    out, i = [], 8
    while i + 12 <= len(data):
        n = struct.unpack(">I", data[i : i + 4])[0]
        out.append(data[i : i + 12 + n])
        i += 12 + n
    return out


def test_dropped_png_metadata_keeps_pixels_and_xmp_orientation() -> None:
    """iCCP/zTXt/tEXt are dropped before Pillow parses them, XMP (iTXt) is kept: it can rotate the photo."""
    want = scene(40, 24)
    stored = Image.fromarray(want, "RGB").transpose(Image.Transpose.ROTATE_90)  # shown with orientation 6
    xmp = b'<x:xmpmeta><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    itxt = png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp)
    icc = png_chunk(b"iCCP", b"p\x00\x00" + zlib.compress(bytes(3 << 20)))
    data = png_with_chunks(encode(stored, "PNG"), icc + itxt + png_chunk(b"tEXt", b"k\x00v"))
    loaded = load_image(data)
    assert loaded.display is not None and np.array_equal(np.asarray(loaded.display), want)


# ---------------------------------------------------------------------------------------------- memory per mode


def _png_rows(path: Path, w: int, h: int, depth: int, ctype: int, row: bytes, extra: bytes = b"") -> None:
    """A w x h PNG whose every row is ``row`` (filter Up after the first: a few KB however large)."""
    z = zlib.compressobj(1)  # level 1: 5x faster on these zero rows, ~1 MB at most
    up = b"\x02" + bytes(len(row))
    parts = [z.compress(b"\x00" + row)] + [z.compress(up * 100) for _ in range((h - 1) // 100)]
    parts += [z.compress(up * ((h - 1) % 100)), z.flush()]
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
    idat = png_chunk(b"IDAT", b"".join(parts))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + extra + idat + png_chunk(b"IEND", b""))


_PALETTE = bytes([220, 30, 30, 30, 180, 40, 40, 60, 220, 240, 220, 40])


def _mode_rows(w: int) -> dict[str, tuple[str, Image.Image]]:
    """For each mode: (file name, a one-row image of the row every row of that file repeats)."""
    x = np.arange(w) % 64
    rgba = np.stack([x * 4, x * 2, (x * 3) % 256, 255 - x * 3], 1).astype(np.uint8)
    pal = Image.fromarray(((np.arange(w) // 50) % 4).astype(np.uint8)[None], "P")
    pal.putpalette(_PALETTE)
    pal.info["transparency"] = bytes([0, 128, 255, 255])
    return {
        "I;16": ("gray16.png", Image.fromarray((x * 1000).astype(np.uint16)[None])),
        "P+tRNS": ("palette_trns.png", pal),
        "LA": ("la.png", Image.fromarray(np.stack([x * 4, 255 - x * 3], 1).astype(np.uint8)[None], "LA")),
        "RGBA": ("rgba.png", Image.fromarray(rgba[None], "RGBA")),
        "RGB": ("rgb.png", Image.fromarray(rgba[None, :, :3], "RGB")),
        "1": ("bilevel.png", Image.fromarray(((np.arange(w) // 25) % 2 == 0)[None])),
        "CMYK": ("cmyk.tif", Image.fromarray(rgba[None], "CMYK")),
        "I": ("int32.tif", Image.fromarray((x * 900).astype(np.int32)[None], "I")),
        "F": ("float.tif", Image.fromarray((x / 64).astype(np.float32)[None], "F")),
    }


def _write_mode_file(path: Path, row: Image.Image, h: int) -> None:
    w = row.size[0]
    if path.suffix == ".png":
        if row.mode == "P":
            trns = png_chunk(b"PLTE", _PALETTE) + png_chunk(b"tRNS", row.info["transparency"])
            _png_rows(path, w, h, 8, 3, row.tobytes(), trns)
        elif row.mode == "1":
            _png_rows(path, w, h, 1, 0, row.tobytes())
        elif row.mode == "I;16":
            _png_rows(path, w, h, 16, 0, np.asarray(row).astype(">u2").tobytes())
        else:
            ctype = {"LA": 4, "RGBA": 6, "RGB": 2}[row.mode]
            _png_rows(path, w, h, 8, ctype, row.tobytes())
    else:  # TIFF through Pillow: deflate in ~64 KB strips, as an editor writes them
        row.resize((w, h), Image.Resampling.NEAREST).save(path, "TIFF", compression="tiff_adobe_deflate")


def naive_rgb(img: Image.Image) -> np.ndarray:
    """The module docstring's conversion rules applied to the whole image at once (no reduction)."""
    mode = img.mode
    if mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA")).astype(np.int64)
        c, a = rgba[..., :3], rgba[..., 3:]
        return ((c * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)
    if mode.startswith("I;16"):
        return np.repeat((np.asarray(img) / 257.0).round().astype(np.uint8)[..., None], 3, axis=2)
    if mode in ("I", "F"):
        v = np.asarray(img, dtype=np.float64)
        v = v * 255 if mode == "F" and v.max() <= 1 else (v / 257.0 if v.max() > 255 else v)
        return np.repeat(v.round().astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"))


@pytest.mark.parametrize("mode", list(_mode_rows(8)))
def test_each_mode_matches_a_naive_full_conversion(tmp_path: Path, mode: str) -> None:
    """On a 2100x1500 image (reduced by 2 for the display, by 5 for the model-only path), strip-wise
    conversion with early reduction gives what converting the whole image first gives."""
    name, row = _mode_rows(2100)[mode]
    rng = np.random.default_rng(1)
    path = tmp_path / name
    _write_mode_file(path, row, 1500)
    with Image.open(path) as img:  # make rows differ: a random row permutation of columns per band
        full = img.copy()
    bands = [full.crop((0, y, 2100, y + 100)).transpose(Image.Transpose.FLIP_LEFT_RIGHT) for y in range(0, 1500, 100)]
    for k, band in enumerate(bands):
        if rng.random() < 0.5:
            full.paste(band, (0, 100 * k))
    full.save(path, **({"transparency": row.info["transparency"]} if "transparency" in row.info else {}))
    with Image.open(path) as img:
        assert img.mode.startswith(mode.split("+")[0]), img.mode
        reference = naive_rgb(img)
    for dms in (1024, None):
        got = load_image(path, display_max_side=dms)
        want = load_image(Image.fromarray(reference, "RGB"), display_max_side=dms)  # the same reduce + resize
        assert mean_abs(got.model_input, want.model_input) <= 1.0, (mode, dms)  # rounding only
        if dms:
            assert got.display is not None and want.display is not None
            assert mean_abs(np.asarray(got.display), np.asarray(want.display)) <= 1.0, mode


_PEAK_SCRIPT = """
import ctypes, gc, json, sys, numpy as np
from PIL import Image
from cam.images import load_image
def status(key):  # KiB, the kernel's view of this process
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
trim = ctypes.CDLL("libc.so.6").malloc_trim
def reset_peak():  # hand freed memory back (else the next load reuses it unseen), then restart the peak
    gc.collect()
    trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
out = {}
for mode, path in json.loads(sys.argv[1]).items():
    reset_peak()
    before = status("VmRSS")
    loaded = load_image(path)  # the app's call (display 1024): the most it converts
    out[mode] = [status("VmHWM") - before, loaded.model_input.reshape(-1, 3).mean(0).tolist()]
    del loaded
reset_peak()
before = status("VmRSS")
img = Image.open(json.loads(sys.argv[1])["I;16"])
grey = np.asarray(img).astype(np.float64) / 257.0  # what the loader used to do at full size
out["naive I;16"] = [status("VmHWM") - before, []]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_peak_memory_of_every_mode_at_7000x7000(tmp_path: Path) -> None:
    """Peak-RSS growth (VmHWM, reset before each load) in a fresh process for 49 MP images in every mode
    and a 16 MP WebP: at most 300 MB, the decoded image (<= 4 bytes a pixel) plus one strip. The naive full-size
    conversion of the 16-bit PNG in the same process costs far more, so the measurement can fail."""
    paths = {}
    expected = {}
    for mode, (name, row) in _mode_rows(7000).items():
        path = tmp_path / name
        _write_mode_file(path, row, 7000)
        assert path.stat().st_size < 3_000_000, (name, path.stat().st_size)
        paths[mode] = str(path)
        expected[mode] = naive_rgb(row.resize((7000, 2), Image.Resampling.NEAREST)).reshape(-1, 3).mean(0)
    webp_row = _mode_rows(4000)["RGBA"][1]  # WebP is decoded whole: accepted up to 16 MP, the worst case
    webp_row.resize((4000, 4000), Image.Resampling.NEAREST).save(tmp_path / "rgba.webp", lossless=True, method=0)
    paths["WebP 16 MP"] = str(tmp_path / "rgba.webp")
    expected["WebP 16 MP"] = naive_rgb(webp_row).reshape(-1, 3).mean(0)
    run = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, json.dumps(paths)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"},  # large blocks mmapped: freed ones leave RSS
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    naive_kib = result.pop("naive I;16")[0]
    report = ", ".join(f"{k}: +{v[0] // 1024} MB" for k, v in result.items())
    print(report)
    for key, (kib, mean) in result.items():
        assert kib <= 300 * 1024, f"{key} grew the peak RSS by {kib // 1024} MB ({report})"
        assert np.abs(np.array(mean) - expected[key]).max() <= 2.0, (key, mean)
    assert naive_kib > 400 * 1024, f"the naive conversion only cost {naive_kib // 1024} MB"


# ---------------------------------------------------------------------------------------------- messages


def test_messages_are_plain_text(corpus: dict[str, Case]) -> None:
    """Refusals carry no HTML entities (the app escapes what it shows) and no traceback text."""
    for case in corpus.values():
        if case.expect == "error":
            with pytest.raises(ImageError) as info:
                load_image(case.path)
            text = str(info.value)
            assert not re.search(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", text, re.I), (case.name, text)
            assert "Traceback" not in text and len(text) < 600, (case.name, len(text))


def test_echoed_names_and_paths_are_truncated(tmp_path: Path) -> None:
    long = tmp_path / ("p" * 240 + ".png")
    long.write_bytes(b"plain text, not a picture\n" * 4)
    with pytest.raises(ImageError) as info:
        load_image(long)
    shown = str(info.value).split(" is not an image")[0]
    assert len(shown) <= 84 and shown.endswith(".png'") and "..." in shown
    with pytest.raises(ImageError) as info:
        load_image(str(tmp_path / ("d" * 200) / ("q" * 5000)))
    assert len(str(info.value)) < 200
    with pytest.raises(ImageError) as info:
        load_image("x" * 5000 + ".png")  # ENAMETOOLONG: the OS error repeats the path; it is not echoed
    assert len(str(info.value)) < 200


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
