# The public import path of skperceptual.losses.weights, which implements it;
# that module's docstring is this module's page in the API reference.
from .losses import weights as _implementation
from .losses.weights import (
    MIRROR_REQUIREMENT,
    MIRROR_SHA256,
    fetch_weights,
    imagenet_state_dict,
    mirror_state_dict,
    read_state_dict,
    register_weights,
    registered_path,
    torchvision_cache_path,
    weights_source,
)

__doc__ = _implementation.__doc__

__all__ = [
    "MIRROR_REQUIREMENT",
    "MIRROR_SHA256",
    "fetch_weights",
    "imagenet_state_dict",
    "mirror_state_dict",
    "read_state_dict",
    "register_weights",
    "registered_path",
    "torchvision_cache_path",
    "weights_source",
]
