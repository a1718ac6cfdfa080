"""Exceptions raised by the `cam` package.

Every message says what happened, why, and what to do about it, so that the CLI and the app can show
it to a person unchanged. Refusals of caller input are `ValueError` subclasses too, so code written
against plain ``ValueError`` keeps working.
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
    """A method name is unknown, or a method was called without the inputs it needs."""


class MapError(CamError, ValueError):
    """A saliency map cannot be used as given: wrong shape, NaN or infinite values, or not computed."""


class MergeError(CamError, ValueError):
    """Two explanations cannot be merged: they are of different images, models or classes."""


class SettingError(CamError, ValueError):
    """A numeric or named setting is out of range: a step count, a batch size, a seed, a baseline."""
