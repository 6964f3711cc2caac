# The public import path of skperceptual.losses.perceptual, which implements it;
# that module's docstring is this module's page in the API reference.
from .losses import perceptual as _implementation
from .losses.perceptual import (
    PERCEPTUAL_NETS,
    PerceptualLoss,
    PixelLoss,
    check_perceptual_net,
    load_perceptual_net,
    n_layers,
)

__doc__ = _implementation.__doc__

__all__ = [
    "PERCEPTUAL_NETS",
    "PerceptualLoss",
    "PixelLoss",
    "check_perceptual_net",
    "load_perceptual_net",
    "n_layers",
]
