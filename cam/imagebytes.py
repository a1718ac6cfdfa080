"""What an image file's bytes declare, read before Pillow parses them: format, size, and structure limits.

    fmt = format_of(data)                      # "PNG", "JPEG", ... or None
    size = header_size(data)                   # (width, height) declared by the header, or None
    data = prepare(data, name)                 # the bytes to give Pillow, or ImageError

Pillow parses the structure of some formats in Python, one block at a time, before its C decoder runs;
there a small count of bytes can cost seconds and hundreds of MB (all measured here, Pillow 12.3):

  * JPEG: see `cam.jpeg` (scans, coefficient memory, segments, junk, unsupported variants).
  * PNG: 2 million empty ancillary chunks (24 MB) took 7.7 s and +260 MB, 2 million empty IDAT chunks
    2.4 s. Refused above `MAX_PNG_CHUNKS`. Also, Pillow refuses a compressed ICC profile (iCCP) or
    compressed text (zTXt, iTXt) that inflates past 1 MB as if the file were damaged; the loader never
    uses colour profiles or text (except XMP, which can carry the orientation), so those chunks are
    dropped before Pillow sees them and such images load. Pixels are unchanged.
  * GIF: the blocks before the first image are read in Python, and comment text is joined byte string
    by byte string (quadratic): 8 million empty comment extensions took more than 100 s. Refused above
    `MAX_GIF_BLOCKS` sub-blocks, `MAX_GIF_EXTENSION_BYTES` or `MAX_JUNK_BYTES` before the first image.
    Only the first image is ever decoded, so later frames cost nothing.

A structure that cannot be walked (cut short, lengths past the end) is passed on unchanged: Pillow
then reports it as damaged, with its own detail.
"""

from __future__ import annotations

import re
import struct
import zlib

from cam import jpeg
from cam.errors import ImageError

# libpng writes 8 KB IDAT chunks, so a 25 MB PNG has ~3,200; 50,000 leaves room for writers that emit
# one chunk per row, and Pillow walks that many in ~0.2 s.
MAX_PNG_CHUNKS = 50_000
# Before a GIF's first image: a header, the NETSCAPE loop block, an XMP packet and a comment take a
# few hundred sub-blocks; 20,000 cost Pillow ~0.1 s.
MAX_GIF_BLOCKS = 20_000
MAX_GIF_EXTENSION_BYTES = 512 * 1024  # comments and XMP before the first image (joined quadratically)
MAX_JUNK_BYTES = 64 * 1024  # bytes between GIF blocks, which Pillow skips one at a time
# Pillow decodes a WebP whole through libwebp's RGBA canvas and two copies: +751 MB for 7000x7000
# (~15 bytes a pixel, measured). 16 MP keeps it near 250 MB; WebP images are rarely over 4 MP.
MAX_WEBP_PIXELS = 16_000_000
# Run-length BMPs (BI_RLE8, BI_RLE4) are decoded by a pure-Python decoder at ~1 us a byte: 19 s for
# an 18 MB file. 512 KB is ~0.5 s; such BMPs are rare (old Windows icons and screenshots).
MAX_BMP_RLE_BYTES = 512 * 1024
# A TIFF strip or tile is decoded into a buffer of its own before it is copied into the image: a
# compressed 7000x7000 TIFF stored as one strip cost +377 MB against +229 MB in ordinary strips.
MAX_TIFF_BLOCK_BYTES = 64 * 1024 * 1024

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_DROPPED = frozenset({b"iCCP", b"zTXt", b"tEXt", b"iTXt"})  # unless kept by _keep_chunk
_XMP_KEY = b"XML:com.adobe.xmp\x00"
_GIF_BLOCK = re.compile(rb"[!,;]")  # extension, image descriptor, trailer: what Pillow's walk looks for

ACCEPTED = "JPEG, PNG, WebP, GIF, BMP or TIFF"
_SIGNATURES = (
    (_PNG_SIGNATURE, "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def format_of(data: bytes) -> str | None:
    """The format that ``data``'s signature claims ("PNG", "JPEG", "GIF", "TIFF", "WebP", "BMP"), or None."""
    for sig, fmt in _SIGNATURES:
        if data.startswith(sig):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    bmp_header = int.from_bytes(data[14:18], "little")
    if data[:2] == b"BM" and len(data) >= 26 and bmp_header in (12, 40, 52, 56, 64, 108, 124):
        return "BMP"
    return None


def foreign(data: bytes) -> str | None:
    """A message template for data that is certainly not a raster image we read, else None."""
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<svg", b"<?xml", b"<!doctype svg")) and b"<svg" in head:
        return (
            "{name} is an SVG drawing: vector images are not supported, the model needs pixels. "
            "Export it as a PNG (any browser or Inkscape can) and try again."
        )
    if head.startswith((b"<!doctype html", b"<html")) or (head.startswith(b"<") and b"<html" in head):
        return (
            "{name} is not an image: it is an HTML web page (often saved from a link to an image rather "
            f"than the image itself). Open the image itself and save that, as {ACCEPTED}."
        )
    if data[4:8] == b"ftyp" and data[8:12] in (
        b"heic",
        b"heix",
        b"hevc",
        b"heim",
        b"heis",
        b"hevx",
        b"mif1",
        b"msf1",
        b"avif",
        b"avis",
    ):
        return (
            "{name} is a HEIC/HEIF or AVIF photo (the iPhone's default format), which is not supported. "
            "Export it as JPEG (on an iPhone: Settings > Camera > Formats > Most Compatible) and try again."
        )
    return None


def unidentified(data: bytes, name: str) -> str:
    fmt = format_of(data)
    if fmt is not None:
        return (
            f"{name} starts like a {fmt} file but is damaged: its header could not be read. The file may "
            "be cut off or corrupted; re-save or re-export it and try again."
        )
    if data.startswith(b"%PDF"):
        what = "it is a PDF document"
    elif _looks_like_text(data[:2048]):
        what = "it contains text"
    else:
        what = "its contents match no supported image format"
    return f"{name} is not an image this app can read: {what}. Use a {ACCEPTED} file."


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\t\r\n" for ch in text)


def header_size(data: bytes, layout: jpeg.JpegLayout | None = None) -> tuple[int, int] | None:
    """(width, height) declared by a PNG, GIF, WebP, BMP or JPEG header, or None if not parsed here.

    ``layout``: the JPEG's `cam.jpeg.read_layout`, if the caller already has it."""
    try:
        if data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR":
            if zlib.crc32(data[12:29]) != int.from_bytes(data[29:33], "big"):
                return None  # a corrupt IHDR: Pillow refuses it as damaged
            w, h = struct.unpack(">II", data[16:24])
            return int(w), int(h)
        if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
            w, h = struct.unpack("<HH", data[6:10])
            return int(w), int(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
            chunk = data[12:16]
            if chunk == b"VP8X":
                return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return int(w) & 0x3FFF, int(h) & 0x3FFF
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        if data[:2] == b"BM" and len(data) >= 26:
            if int.from_bytes(data[14:18], "little") == 12:  # OS/2 BITMAPCOREHEADER
                w, h = struct.unpack("<HH", data[18:22])
            else:
                w, h = struct.unpack("<ii", data[18:26])
            return abs(int(w)), abs(int(h))  # negative height = top-down rows
        if data[:3] == b"\xff\xd8\xff":
            layout = layout or jpeg.read_layout(data)
            return (layout.width, layout.height) if layout is not None and layout.sof is not None else None
    except struct.error:
        return None
    return None


def prepare(data: bytes, name: str) -> bytes:
    """The bytes to hand to Pillow: PNG chunks it would misread dropped; ImageError for structure bombs.

    JPEGs are checked by the caller (`cam.jpeg`), which also needs their layout for the pixel count."""
    if data.startswith(_PNG_SIGNATURE):
        return _prepare_png(data, name)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        _check_gif(data, name)
    fmt = format_of(data)
    size = header_size(data) if fmt == "WebP" else None
    if size is not None and size[0] * size[1] > MAX_WEBP_PIXELS:
        raise ImageError(
            f"{name} is a WebP image of {size[0]}x{size[1]} pixels ({size[0] * size[1] / 1e6:.0f} megapixels); "
            f"WebP images are accepted up to {MAX_WEBP_PIXELS / 1e6:.0f} megapixels, because they are "
            "decoded whole at full size. Save it as a JPEG or PNG, or smaller, and try again."
        )
    rle = fmt == "BMP" and data[14] >= 40 and int.from_bytes(data[30:34], "little") in (1, 2)  # BI_RLE8/4
    if rle and len(data) > MAX_BMP_RLE_BYTES:
        raise ImageError(
            f"{name} is a run-length compressed BMP of {len(data) / 2**20:.1f} MB; such BMPs are accepted "
            f"up to {MAX_BMP_RLE_BYTES // 1024} KB, because they decode slowly. Save it as PNG and try again."
        )
    return data


def check_tiff(img: object, name: str) -> None:
    """Refuse a TIFF whose strips or tiles (each decoded whole into a buffer) exceed MAX_TIFF_BLOCK_BYTES.

    ``img``: an opened (header read) Pillow image; anything but a TIFF passes."""
    tags = getattr(img, "tag_v2", None)
    size = getattr(img, "size", None)
    if tags is None or size is None:
        return
    w, h = size
    try:
        tiled = 322 in tags and 323 in tags  # TileWidth, TileLength; else RowsPerStrip
        block = int(tags[322]) * int(tags[323]) if tiled else min(int(tags.get(278, h)), h) * w
        bits = tags.get(258, (8,))  # BitsPerSample, per sample
        # libtiff unpacks JPEG-compressed TIFFs (6, 7) to 4-byte RGBA; others keep their packed samples
        per_pixel = 4.0 if tags.get(259) in (6, 7) else sum(bits if isinstance(bits, tuple) else (bits,)) / 8
    except (TypeError, ValueError, OverflowError):
        return  # unreadable tags: the decoder reports the file
    if block * per_pixel > MAX_TIFF_BLOCK_BYTES:  # (+ the image: 4 bytes a pixel at most)
        raise ImageError(
            f"{name} is a TIFF stored in blocks of {block * per_pixel / 2**20:.0f} MB each (the limit is "
            f"{MAX_TIFF_BLOCK_BYTES / 2**20:.0f} MB; editors write blocks of a few KB). Re-save it as PNG, "
            "JPEG or an ordinary TIFF and try again."
        )


def _prepare_png(data: bytes, name: str) -> bytes:
    """Walk the chunks: refuse more than MAX_PNG_CHUNKS, drop the metadata chunks Pillow could refuse."""
    n = len(data)
    pos = len(_PNG_SIGNATURE)
    kept: list[bytes] = []
    dropped = False
    start = 0  # the first byte not yet copied into ``kept``
    chunks = 0
    while pos + 12 <= n:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > n:
            break  # cut short: left for Pillow to report
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise ImageError(
                f"{name} is a PNG made of more than {MAX_PNG_CHUNKS:,} chunks (an ordinary PNG has a few "
                "dozen to a few thousand), which would take a long time to read. Re-save it with any image "
                "editor and try again."
            )
        if kind in _PNG_DROPPED and not _keep_chunk(kind, data, pos + 8):
            kept.append(data[start:pos])
            start = end
            dropped = True
        pos = end
        if kind == b"IEND":
            break
    if not dropped:
        return data
    kept.append(data[start:])
    return b"".join(kept)


def _keep_chunk(kind: bytes, data: bytes, body: int) -> bool:
    """XMP (an iTXt chunk) can hold the orientation; every other text or profile chunk is unused."""
    return kind == b"iTXt" and data.startswith(_XMP_KEY, body)


def _check_gif(data: bytes, name: str) -> None:
    """Count what Pillow reads in Python before the first image; refuse a GIF over the limits."""
    n = len(data)
    pos = 13
    if n >= 13 and data[10] & 0x80:  # a global colour table follows the logical screen descriptor
        pos += 3 << ((data[10] & 7) + 1)
    blocks = ext_bytes = junk = 0
    while pos < n:
        m = _GIF_BLOCK.search(data, pos)
        if m is None:
            return
        junk += m.start() - pos
        pos = m.start() + 1
        if junk > MAX_JUNK_BYTES:
            raise ImageError(
                f"{name} is a GIF with more than {MAX_JUNK_BYTES // 1024} KB of stray bytes before its "
                "first image, which a GIF encoder never writes. Re-save it as PNG or GIF and try again."
            )
        if data[m.start()] != 0x21:  # "," the first image (decoded in C from here) or ";" the end
            return
        pos += 1  # the extension's label
        while pos < n:  # sub-blocks: a length byte, that many bytes; a zero length ends the extension
            size = data[pos]
            pos += 1 + size
            ext_bytes += size
            blocks += 1
            if blocks > MAX_GIF_BLOCKS or ext_bytes > MAX_GIF_EXTENSION_BYTES:
                raise ImageError(
                    f"{name} is a GIF with more than {MAX_GIF_BLOCKS:,} metadata blocks or "
                    f"{MAX_GIF_EXTENSION_BYTES // 1024} KB of comments before its first image, which would "
                    "take a long time to read. Re-save it as PNG or GIF without comments and try again."
                )
            if size == 0:
                break
