# The public import path of skperceptual.losses.networks, which implements it;
# that module's docstring is this module's page in the API reference.
from .losses import networks as _implementation
from .losses.networks import (
    ALIASES,
    LOSS_NETWORKS,
    NETWORKS,
    SQUASHES,
    LossNetwork,
    MultiLayerPerceptualLoss,
    build_feature_stack,
    canonical_name,
    check_perceptual_net,
    feature_shapes,
    layer_names,
    meta_feature_stack,
    n_layers,
    network_spec,
    resolve_layer_weights,
    resolve_layers,
    squash,
    state_dict_prefix,
    studied_layers,
)

__doc__ = _implementation.__doc__

__all__ = [
    "ALIASES",
    "LOSS_NETWORKS",
    "LossNetwork",
    "MultiLayerPerceptualLoss",
    "NETWORKS",
    "SQUASHES",
    "build_feature_stack",
    "canonical_name",
    "check_perceptual_net",
    "feature_shapes",
    "layer_names",
    "meta_feature_stack",
    "n_layers",
    "network_spec",
    "resolve_layer_weights",
    "resolve_layers",
    "squash",
    "state_dict_prefix",
    "studied_layers",
]
