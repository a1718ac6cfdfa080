"""Which images a client may make this server read: its own uploads and the shipped examples.

Gradio 6.31 checks "was this file uploaded?" only for payloads that carry its ``meta`` marker
(``{"_type": "gradio.FileData"}``); a payload ``{"path": "/any/file"}`` without it reaches the
component's ``preprocess`` untouched. So every path that arrives from a client goes through
`trusted_image_path` before anything opens, stats or hashes it.

A refused path always gets the same message, whatever the reason (outside the folders, missing, a
folder, a symlink that leads out, not a string): the reply must not tell a client which files exist.

`decode_data_url` is the other way an image arrives from an API client: a ``data:`` URL, whose size
is checked on its encoded length before anything is decoded.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from cam.errors import CamError, ImageError

UNTRUSTED_PATH_MESSAGE = (
    "This app only reads images it received as uploads. "
    "Upload the image (in Python: gradio_client.handle_file(path)) and try again."
)
IMAGE_NOT_A_FILE = (
    'The image must be a file object ({"path": ...} from /gradio_api/upload), not a bare value. '
    "In Python: gradio_client.handle_file(path)."
)


class UntrustedPathError(CamError, ValueError):
    """A client named a file that this server did not receive as an upload (or ship as an example)."""

    def __init__(self) -> None:
        super().__init__(UNTRUSTED_PATH_MESSAGE)


class DataUrlError(ImageError):
    """A ``data:`` URL is not base64, is empty, or is larger than the app accepts."""


def _is_strictly_inside(path: str, root: str) -> bool:
    # Both are realpaths. `commonpath` compares whole components, so /tmp/gradio2 is not inside /tmp/gradio.
    return path != root and os.path.commonpath([path, root]) == root


def trusted_image_path(path: object, allowed_roots: Sequence[Path]) -> Path:
    """``path`` resolved, if it names a regular file strictly inside one of ``allowed_roots``.

    Symlinks and ``..`` are resolved first (`os.path.realpath`), in the path and in the roots alike,
    so a link inside a root that points out of it is refused, and the caller gets the resolved path
    to open (nothing but this server writes into the roots, so it cannot be swapped afterwards).
    Relative paths are taken from the working directory, as the loader would.

    Raises `UntrustedPathError`, always with `UNTRUSTED_PATH_MESSAGE`, otherwise. The containment test
    runs before any ``stat`` of the file itself, so a path outside the roots costs the same few
    ``lstat`` calls of `os.path.realpath` whether it exists or not.
    """
    if not isinstance(path, str | os.PathLike) or not allowed_roots:
        raise UntrustedPathError()
    try:
        real = os.path.realpath(os.fspath(path))
        inside = any(_is_strictly_inside(real, os.path.realpath(root)) for root in allowed_roots)
        if not inside or not stat.S_ISREG(os.stat(real).st_mode):
            raise UntrustedPathError()
    except (OSError, ValueError, TypeError):  # missing, too long, NUL byte, mixed str/bytes, ...
        raise UntrustedPathError() from None
    return Path(real)


def encoded_length_limit(max_bytes: int) -> int:
    """Characters of base64 that encode ``max_bytes`` bytes (padding included)."""
    return 4 * ((max_bytes + 2) // 3)


def decode_data_url(url: str, max_bytes: int) -> bytes:
    """The bytes of a base64 ``data:`` URL, at most ``max_bytes`` of them.

    The size is checked on the encoded text before anything is decoded, so an oversized URL costs
    no extra memory. The MIME type in the header is not trusted (the image loader reads the bytes
    themselves); only ``;base64`` is required. Raises `DataUrlError` with what to do.
    """
    limit_mb = max_bytes / (1024 * 1024)
    if not isinstance(url, str) or not url.startswith("data:"):
        raise DataUrlError("This is not a data: URL. Send the image as data:image/...;base64,... or upload it.")
    header, comma, b64 = url.partition(",")
    if not comma or ";base64" not in header.lower():
        raise DataUrlError(
            "The data: URL is not base64-encoded. Send the image as data:image/png;base64,... (or upload it)."
        )
    if len(b64) > encoded_length_limit(max_bytes):
        raise DataUrlError(
            f"The image in the data: URL is about {len(b64) * 3 / 4 / (1024 * 1024):.1f} MB, over this app's "
            f"{limit_mb:g} MB limit. Send a smaller file (a photo of 1-2 MB is plenty: the model sees 256x256 pixels)."
        )
    if not b64:
        raise DataUrlError("The data: URL holds no data. Send the image's bytes after 'base64,'.")
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise DataUrlError(
            "The data: URL is not valid base64 (only A-Z, a-z, 0-9, + and / with = padding; no spaces or "
            "line breaks). Check how the image was encoded."
        ) from None
    if len(data) > max_bytes:  # the encoded-length bound is approximate by up to two bytes
        raise DataUrlError(
            f"The image in the data: URL is {len(data) / (1024 * 1024):.1f} MB, over this app's {limit_mb:g} MB "
            "limit. Send a smaller file."
        )
    return data


def save_data_url(url: str, folder: Path, max_bytes: int) -> Path:
    """`decode_data_url`'s bytes in a new file in ``folder`` (the upload folder), undecoded as an image."""
    target = folder / f"cam-upload-{os.urandom(8).hex()}"
    target.write_bytes(decode_data_url(url, max_bytes))
    return target
