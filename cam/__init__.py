"""Class Activation Maps for the XAI-for-CV course's GAP pot-plant classifier.

from cam import load_model, explain
model = load_model()
r = explain(model, "examples/rudo_1.jpg")
r.maps["cam"], r.maps["gradcam"]
"""

from cam.errors import (
    CamError,
    CheckpointError,
    HubError,
    ImageError,
    LayerError,
    MapError,
    MergeError,
    MethodError,
    SettingError,
    TargetError,
)
from cam.explain import PREDICTED_KEYWORDS, Explanation, explain, explain_batch
from cam.images import LoadedImage, load_image
from cam.loading import load_model
from cam.methods import METHODS, display_name, method_title
from cam.model import CamModel, Provenance
from cam.network import CLASS_NAMES, INPUT_SIZE, PotPlantGAP

__all__ = [
    "CLASS_NAMES",
    "INPUT_SIZE",
    "METHODS",
    "PREDICTED_KEYWORDS",
    "CamError",
    "CamModel",
    "CheckpointError",
    "Explanation",
    "HubError",
    "ImageError",
    "LayerError",
    "LoadedImage",
    "MapError",
    "MergeError",
    "MethodError",
    "PotPlantGAP",
    "Provenance",
    "SettingError",
    "TargetError",
    "display_name",
    "explain",
    "explain_batch",
    "load_image",
    "load_model",
    "method_title",
]
