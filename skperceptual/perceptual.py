"""Frozen pretrained feature extractors and the perceptual loss built on them.

The paper's perceptual network is ImageNet AlexNet cut after its second ReLU,
``torchvision.models.alexnet().features[:5]``. The 14 torchvision networks of
the follow-up study, with named layers, are available through
:mod:`skperceptual.loss_networks` so that researchers can ablate the choice
of network and layer.
"""

import os

import torch
from torch import nn
from torch.nn import functional as F

from .loss_networks import (
    _IMAGENET_MEAN,
    _IMAGENET_STD,
    LOSS_NETWORKS,
    build_feature_stack,
    canonical_name,
    layer_names,
    resolve_layers,
    state_dict_prefix,
)

#: The loss networks, with named layers: see :mod:`skperceptual.loss_networks`.
PERCEPTUAL_NETS = LOSS_NETWORKS

def n_layers(name):
    """Return how many modules the feature stack of network ``name`` has.

    Parameters
    ----------
    name : str
        One of :data:`PERCEPTUAL_NETS`.

    Returns
    -------
    n : int
        The largest valid ``perceptual_layer`` for this network.

    Examples
    --------
    >>> n_layers("alexnet")
    13
    """
    return len(layer_names(name))


def check_perceptual_net(name, layer=None):
    """Raise ValueError, listing the valid values, for an unknown net or layer.

    ``layer`` may be an integer cut, a layer name or a list of them (see
    :func:`skperceptual.loss_networks.resolve_layers`).
    """
    if layer is None:
        layer_names(name)
    else:
        resolve_layers(name, layer)


def _imagenet_state_dict(name):
    """Fetch ``name``'s ImageNet weights through torchvision's weights API."""
    import torchvision

    weights = torchvision.models.get_model_weights(canonical_name(name)).DEFAULT
    cache = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    try:
        return weights.get_state_dict(progress=False, check_hash=False)
    except Exception as exc:  # urllib, ssl and socket errors differ by platform
        raise OSError(
            f"Could not load the ImageNet weights of {name!r}: they are not in the "
            f"torchvision cache ({cache}) and downloading them failed ({exc}). "
            "Either copy the file there (or set TORCH_HOME), pass "
            "perceptual_weights='/path/to/state_dict.pth' with a local copy, or "
            "pass perceptual_weights=None for a randomly initialised network."
        ) from exc


def _select_kept(state_dict, features, name, source):
    """Return the entries of ``state_dict`` that ``features`` needs, renamed."""
    prefix = state_dict_prefix(name)
    renamed = {
        (k[len(prefix):] if prefix and k.startswith(prefix) else k): v
        for k, v in state_dict.items()
    }
    wanted = features.state_dict().keys()
    missing = [k for k in wanted if k not in renamed]
    if missing:
        raise ValueError(
            f"The state_dict from {source} lacks {len(missing)} entries that "
            f"{name!r} cut at this layer needs, e.g. {prefix + missing[0]!r}. Pass a "
            f"state_dict of the full torchvision {name} model or of its feature "
            "layers, or perceptual_weights=None."
        )
    return {k: renamed[k] for k in wanted}


def load_perceptual_net(name="alexnet", layer=5, weights="imagenet"):
    """Build a frozen feature extractor: the first ``layer`` modules of ``name``.

    Parameters
    ----------
    name : str, default="alexnet"
        One of the 14 torchvision networks of :data:`PERCEPTUAL_NETS`.
    layer : int or str, default=5
        How many modules of the feature stack to keep, or the name of the
        last one kept (:func:`skperceptual.loss_networks.layer_names`). 5
        on AlexNet, ``"relu2"``, stops after the second ReLU, the paper's
        choice.
    weights : "imagenet", str, path-like or None, default="imagenet"
        ``"imagenet"`` uses torchvision's weights API (TORCH_HOME cache, then
        download). A path loads a local ``.pth`` state_dict of the full
        torchvision model or of its feature layers. None keeps the random
        initialisation, for tests and ablations. Only the kept layers are
        loaded.

    Returns
    -------
    net : torch.nn.Sequential
        In eval mode, with ``requires_grad=False`` on every parameter.

    Examples
    --------
    >>> net = load_perceptual_net("alexnet", layer=5, weights=None)
    >>> len(net), net.training
    (5, False)
    """
    (layer,) = resolve_layers(name, layer)
    features = build_feature_stack(name, layer)
    if weights is not None:
        if isinstance(weights, str) and weights == "imagenet":
            state_dict, source = _imagenet_state_dict(name), "torchvision"
        else:
            if not os.path.isfile(weights):
                raise FileNotFoundError(
                    f"perceptual_weights file {os.fspath(weights)!r} does not exist. "
                    "Pass the path of a .pth state_dict, 'imagenet' or None."
                )
            state_dict, source = torch.load(weights, map_location="cpu", weights_only=True), weights
        features.load_state_dict(_select_kept(state_dict, features, name, source))
    features.requires_grad_(False)
    return features.eval()


class PerceptualLoss(nn.Module):
    """MSE between sigmoid-squashed features of a frozen network.

    ``loss(x_hat, x) = mean((sigmoid(p(x_hat)) - sigmoid(p(x)))**2)``. The
    network ``p`` never trains: it stays in eval mode whatever ``train()`` is
    called with (skorch switches every criterion to train mode each epoch),
    and its parameters do not require gradients. Gradients still flow through
    ``p`` into ``x_hat``.

    Parameters
    ----------
    net : torch.nn.Module
        The frozen feature extractor, e.g. from :func:`load_perceptual_net`.
    normalize : bool, default=False
        Standardise images with ImageNet's mean and std before ``p``. The
        paper feeds [0, 1] images unnormalised.

    Examples
    --------
    >>> import torch
    >>> loss = PerceptualLoss(load_perceptual_net(weights=None))
    >>> x = torch.rand(2, 3, 64, 64)
    >>> float(loss(x, x))
    0.0
    """

    def __init__(self, net, normalize=False):
        super().__init__()
        self.net = net
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode=True):
        super().train(mode)
        self.net.eval()
        return self

    def features(self, x):
        """Return ``sigmoid(p(x))``, the squashed features compared by the loss."""
        if self.normalize:
            x = (x - self.mean) / self.std
        return torch.sigmoid(self.net(x))

    def forward(self, x_hat, x):
        with torch.no_grad():
            target = self.features(x)
        return F.mse_loss(self.features(x_hat), target)


class PixelLoss(nn.Module):
    """Pixel-wise MSE between a reconstruction and its input, both in [0, 1]."""

    def forward(self, x_hat, x):
        return F.mse_loss(x_hat, x)
