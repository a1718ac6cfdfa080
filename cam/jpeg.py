"""A JPEG's structure, read from its bytes before Pillow or libjpeg sees them, and the limits on its decode work.

    layout = read_layout(data)        # JpegLayout, or None if data is not a JPEG
    check_layout(layout, name)        # raises ImageError for what the loader refuses

Why. A JPEG's header does not show what decoding it costs. Four things do, and all are refused here
from the markers alone, in milliseconds:

  * Scans (SOS markers). Every scan of a progressive JPEG touches every block of its components at
    full resolution, even when the decoder outputs 1/8 scale, so the work is scans x pixels: a 290 KB
    7000x7000 grey JPEG with one tiny scan repeated 1,000 times took 50 s in Pillow (measured here
    ~4-75 ms per scan at 49 MP, depending on the scan). Limits: `MAX_SCANS` and `MAX_SCAN_PIXELS`.
  * The coefficient buffer. A progressive (or multi-scan) JPEG is decoded into a whole-image buffer
    of 2 bytes per sample before any pixel comes out: +283 MB for a 7000x7000 4:4:4 colour JPEG, +376 MB
    in CMYK (measured), whatever the output scale. Limit: `MAX_COEFFICIENT_BYTES`.
  * Marker segments and junk before the first scan. Pillow parses them in Python, one segment (and one
    junk or fill byte) at a time: 24 MB of fill bytes took 26 s, 6 million empty COM segments 17 s and
    +440 MB. Limits: `MAX_SEGMENTS`, `MAX_JUNK_BYTES`, `MAX_FILL_PAIRS`.
  * What libjpeg's 8-bit decoder cannot read at all: precision other than 8 bits (12-bit lossy,
    12/16-bit lossless), hierarchical (differential) frames, and 2-component or >4-component frames.
    They are refused by name instead of being called damaged. 8-bit lossless (SOF3) and
    arithmetic-coded (SOF9, SOF10) JPEGs decode fine and are accepted.

How the markers are found. Outside scans, a marker is 0xFF followed by a code other than 0x00 or 0xFF
(libjpeg skips any other byte, and any run of 0xFF fill bytes, as junk). Inside a scan's entropy-coded
data a 0xFF data byte is always followed by 0x00 (byte stuffing), and the restart markers RST0-7
(0xFFD0-0xFFD7) belong to the scan, so the next marker is 0xFF followed by anything else. Both are
one regular-expression search in C; the walk is exact (libjpeg sees the same scans) and stops at the
first EOI, where libjpeg stops (an MPO's further images are never decoded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cam.errors import ImageError

# libjpeg's standard progressive scripts have 10 scans (colour) and 6 (grey); jpegtran, mozjpeg and
# Photoshop write fewer than 20. 64 is three times the longest real script and still bounds the work.
MAX_SCANS = 64
# Scans x pixels: 32 scans of a 50 MP photo, or all 64 up to 25 MP. At the measured worst ~75 ms per
# scan at 49 MP this is ~2.5 s of decoding; an ordinary 48 MP progressive photo (10 scans) uses 30%.
MAX_SCAN_PIXELS = 1_600_000_000
# A 50 MP 4:2:0 colour progressive photo needs 150 MB (143 MiB) and is accepted; 4:4:4 colour is
# accepted up to ~28 MP, CMYK up to ~21 MP (re-saved as baseline they decode in a few MB).
MAX_COEFFICIENT_BYTES = 160 * 1024 * 1024
# Segments other than scans: a camera JPEG has ~10-30 (APPn, DQT, SOF, DHT, DRI, COM); a 16 MB ICC
# profile or an extended XMP block adds at most ~260 APP segments of 64 KB.
MAX_SEGMENTS = 1000
# Junk and fill bytes between segments before the first scan (libjpeg warns about "extraneous bytes").
MAX_JUNK_BYTES = 64 * 1024
# 0xFF 0xFF pairs anywhere: fill runs, which the marker search steps through at ~40 ns a byte (1 s for
# 24 MB). Entropy-coded data never has them and a large ICC profile a few thousand.
MAX_FILL_PAIRS = 1_000_000
_SCAN_WALK_STOP = 10_000  # scans counted exactly up to here, then "more than": the walk stays ~10 ms

_MARKER = re.compile(rb"\xff[^\x00\xff]")  # the last 0xFF of a (fill) run and a marker code
_SCAN_END = re.compile(rb"\xff[^\x00\xff\xd0-\xd7]")  # inside entropy-coded data: not stuffing, not RSTn
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RST0-7, SOI: no length field
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # DHT, JPG and DAC share the range
_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_HIERARCHICAL = frozenset({0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF})
_LOSSLESS = frozenset({0xC3, 0xC7, 0xCB, 0xCF})


@dataclass(frozen=True)
class JpegLayout:
    """What the markers of a JPEG say, up to its first EOI (or the end of the data)."""

    sof: int | None  # the frame's marker code (0xC0 baseline, 0xC2 progressive, ...), None if absent
    precision: int  # bits per sample
    width: int
    height: int
    sampling: tuple[tuple[int, int], ...]  # (horizontal, vertical) sampling factor of each component
    scans: int  # SOS markers, counted exactly up to _SCAN_WALK_STOP + 1
    segments: int  # marker segments other than SOS (counting stops past MAX_SEGMENTS)
    junk: int  # junk and fill bytes skipped before the first scan (or 2 x MAX_FILL_PAIRS+ anywhere)

    @property
    def coefficient_bytes(self) -> int:
        """Bytes of libjpeg's whole-image coefficient buffer (multi-scan JPEGs), 128 per 8x8 block, with
        each component's width and height in blocks rounded up to its sampling factor as libjpeg does."""
        if not self.sampling:
            return 0
        hmax = max(h for h, _ in self.sampling)
        vmax = max(v for _, v in self.sampling)
        total = 0
        for h, v in self.sampling:
            bw = _ceil(_ceil(self.width * h, hmax), 8)
            bh = _ceil(_ceil(self.height * v, vmax), 8)
            total += _ceil(bw, h) * h * _ceil(bh, v) * v * 128
        return total


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def read_layout(data: bytes) -> JpegLayout | None:
    """Walk a JPEG's markers (see the module docstring); None if ``data`` does not start with SOI."""
    if not data.startswith(b"\xff\xd8"):
        return None
    pairs = data.count(b"\xff\xff")  # C speed: ~10 ms for 25 MB
    if pairs > MAX_FILL_PAIRS:
        return JpegLayout(None, 0, 0, 0, (), 0, 0, 2 * pairs)
    n = len(data)
    pos = 2
    sof: int | None = None
    precision = width = height = 0
    sampling: tuple[tuple[int, int], ...] = ()
    scans = segments = junk = 0
    while segments <= MAX_SEGMENTS and scans <= _SCAN_WALK_STOP:
        m = _MARKER.search(data, pos)
        if m is None:
            break  # no EOI: a truncated file, which the decoder reports
        if scans == 0:
            junk += m.start() - pos
            if junk > MAX_JUNK_BYTES:
                break
        code = data[m.start() + 1]
        pos = m.end()
        if code == 0xD9:  # EOI: libjpeg stops here
            break
        if code in _STANDALONE:
            continue
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > n:
            break  # a cut or corrupt segment: the decoder reports it
        if code == 0xDA:
            scans += 1
            end = _SCAN_END.search(data, pos + length)
            if end is None:
                break
            pos = end.start()
            continue
        segments += 1
        if code in _SOF and sof is None and length >= 8:
            sof = code
            precision = data[pos + 2]
            height = int.from_bytes(data[pos + 3 : pos + 5], "big")
            width = int.from_bytes(data[pos + 5 : pos + 7], "big")
            count = data[pos + 7]
            body = data[pos + 8 : pos + length]
            if len(body) >= 3 * count:
                sampling = tuple((body[3 * k + 1] >> 4, body[3 * k + 1] & 15) for k in range(count))
        pos += length
    return JpegLayout(sof, precision, width, height, sampling, scans, segments, junk)


def check_layout(layout: JpegLayout, name: str) -> None:
    """Raise `ImageError` for a JPEG the loader refuses (the limits and formats in the module docstring).

    The pixel count and aspect ratio are checked by the caller; this checks the rest."""
    if layout.junk > MAX_JUNK_BYTES:
        raise ImageError(
            f"{name} is a JPEG with more than {MAX_JUNK_BYTES // 1024} KB of junk or fill bytes between its markers, "
            "which a camera or editor never writes and which would take a long time to skip. Re-save it "
            "as a JPEG or PNG and try again."
        )
    if layout.segments > MAX_SEGMENTS:
        raise ImageError(
            f"{name} is a JPEG with more than {MAX_SEGMENTS:,} metadata segments (a photo has a few dozen), "
            "which would take a long time to parse. Re-save it without metadata, as a JPEG or PNG, and try again."
        )
    if layout.sof is None:
        return  # no frame header: the decoder reports the file as damaged
    if layout.precision != 8:
        kind = "lossless " if layout.sof in _LOSSLESS else ""
        raise ImageError(
            f"{name} is a {layout.precision}-bit {kind}JPEG; only 8-bit JPEGs are supported (12- and 16-bit "
            "JPEGs come from medical and scientific cameras). Save it as an 8-bit JPEG or PNG and try again."
        )
    if layout.sof in _HIERARCHICAL:
        raise ImageError(
            f"{name} is a hierarchical JPEG, a rare variant that is not supported. Save it as an ordinary "
            "(baseline) JPEG or PNG and try again."
        )
    if len(layout.sampling) not in (1, 3, 4) or any(not (1 <= h <= 4 and 1 <= v <= 4) for h, v in layout.sampling):
        raise ImageError(
            f"{name} is a JPEG with {len(layout.sampling)} colour components or invalid sampling factors; "
            "only grey (1), colour (3) and CMYK (4) JPEGs are supported. Save it as an RGB JPEG or PNG and try again."
        )
    scans = layout.scans
    count = f"more than {_SCAN_WALK_STOP:,}" if scans > _SCAN_WALK_STOP else f"{scans:,}"
    resave = "Re-save it as a baseline (non-progressive) JPEG, or as PNG, and try again."
    if scans > MAX_SCANS:
        raise ImageError(
            f"{name}: this JPEG has {count} scans; at most {MAX_SCANS} are accepted (a progressive JPEG "
            f"normally has about 10), because every scan costs a pass over the whole image. {resave}"
        )
    pixels = layout.width * layout.height
    if scans * pixels > MAX_SCAN_PIXELS:
        most = max(1, MAX_SCAN_PIXELS // max(pixels, 1))
        raise ImageError(
            f"{name}: this JPEG has {count} scans at {pixels / 1e6:.0f} megapixels; at that size at most "
            f"{most} scans are accepted, because every scan costs a pass over the whole image. {resave}"
        )
    if (layout.sof in _PROGRESSIVE or scans > 1) and layout.coefficient_bytes > MAX_COEFFICIENT_BYTES:
        raise ImageError(
            f"{name} is a progressive JPEG of {pixels / 1e6:.0f} megapixels that needs "
            f"{layout.coefficient_bytes / 2**20:.0f} MB of memory to decode (the limit is "
            f"{MAX_COEFFICIENT_BYTES / 2**20:.0f} MB; a baseline JPEG of the same size needs a few MB). {resave}"
        )
