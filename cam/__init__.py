"""Class Activation Maps for the XAI-for-CV course's GAP pot-plant classifier.

from cam import load_model, explain
model = load_model()
r = explain(model, "examples/rudo_1.jpg")
r.maps["cam"], r.maps["gradcam"]
"""

from cam.errors import CamError, CheckpointError, HubError, ImageError, LayerError, MethodError, TargetError
from cam.explain import Explanation, explain, explain_batch
from cam.images import LoadedImage, load_image
from cam.loading import load_model
from cam.methods import METHODS
from cam.model import CamModel, Provenance
from cam.network import CLASS_NAMES, INPUT_SIZE, PotPlantGAP

__all__ = [
    "CLASS_NAMES",
    "INPUT_SIZE",
    "METHODS",
    "CamError",
    "CamModel",
    "CheckpointError",
    "Explanation",
    "HubError",
    "ImageError",
    "LayerError",
    "LoadedImage",
    "MethodError",
    "PotPlantGAP",
    "Provenance",
    "TargetError",
    "explain",
    "explain_batch",
    "load_image",
    "load_model",
]
