"""Exceptions raised by the `cam` package.

Every message says what happened, why, and what to do about it, so that the CLI and the app can show
it to a person unchanged. Refusals of user input are `ValueError` subclasses.
"""

from __future__ import annotations


class CamError(Exception):
    """Base class of every error this package raises on purpose."""


class ImageError(CamError, ValueError):
    """An image could not be read or was refused (corrupt, too large, not an image)."""


class CheckpointError(CamError, ValueError):
    """A checkpoint file is unsafe, corrupt or does not fit the course network."""


class HubError(CamError, OSError):
    """The Hugging Face Hub could not provide the checkpoint (offline, timeout, HTTP error)."""


class LayerError(CamError, ValueError):
    """A layer name is unknown, or a method cannot be computed at that layer."""


class TargetError(CamError, ValueError):
    """A target class is unknown."""


class MethodError(CamError, ValueError):
    """A method name is unknown."""
