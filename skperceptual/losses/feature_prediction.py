"""Feature prediction: the decoder predicts the loss network's features of the input.

Pihlgren, Sandin and Liwicki, "Pretraining image encoders without
reconstruction via feature prediction loss" (ICPR 2021): instead of
reconstructing the image and passing the reconstruction through the loss
network ``p``, the decoder emits a tensor shaped like ``p(x)`` and is
trained with the MSE to ``p(x)``. The loss network then only ever sees real
images, without gradients, so training skips the forward and backward pass
of ``p`` on the reconstruction.

The encoder, and therefore ``transform``, is the paper's. The module keeps
the paper's pixel decoder too, untrained, so that a decoder retraining with
pixel loss (run inside :func:`pixel_output`) can give it an
``inverse_transform``.

The targets ``p(x)`` are recomputed for every batch rather than cached:
they are a small part of a training step
(``benchmarks/bench_feature_targets.py`` measures it), while a cache would
hold several times the uint8 images' memory at most layers. Recomputing
keeps memory at the uint8 images and one batch of features.
"""

import contextlib

from sklearn.exceptions import NotFittedError
from torch import nn
from torch.nn import functional as F

from ..models.autoencoder import ConvAutoencoder
from .mse import mse_loss
from .networks import squash

#: Side of the largest seed map the feature head starts from; larger
#: feature maps are reached by upsampling, so that the linear layer does not
#: grow with the square of the feature map (a 64x64 VGG map would need 10^8
#: weights).
MAX_SEED = 8


class FeatureHead(nn.Module):
    """Decoder head that maps an embedding to a ``(C, h, w)`` feature map.

    A linear layer fills a seed map of 256 channels (at most ``MAX_SEED``
    on a side), bilinear upsampling brings it to ``(h, w)`` where needed, a
    3x3 convolution with BatchNorm and ReLU mixes neighbouring locations,
    and a 1x1 convolution emits the ``C`` channels, unsquashed.

    Parameters
    ----------
    z_dim : int
    feature_shape : tuple of int
        ``(C, h, w)`` of the loss network's features.
    hidden : int, default=256

    Examples
    --------
    >>> import torch
    >>> FeatureHead(8, (192, 7, 7))(torch.zeros(2, 8)).shape
    torch.Size([2, 192, 7, 7])
    """

    def __init__(self, z_dim, feature_shape, hidden=256):
        super().__init__()
        channels, height, width = feature_shape
        self.size = (height, width)
        self.seed_shape = (hidden, min(height, MAX_SEED), min(width, MAX_SEED))
        self.seed = nn.Sequential(nn.Linear(z_dim, hidden * self.seed_shape[1] * self.seed_shape[2]), nn.ReLU())
        self.mix = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
        )

    def forward(self, z):
        h = self.seed(z).view(-1, *self.seed_shape)
        if self.seed_shape[1:] != self.size:
            h = F.interpolate(h, size=self.size, mode="bilinear", align_corners=False)
        return self.mix(h)


class FeaturePredictionAutoencoder(ConvAutoencoder):
    """The paper's encoder with a decoder that predicts loss-network features.

    ``decode`` (and so ``forward``) emits the unsquashed feature prediction
    while :attr:`output` is ``"features"``; inside :func:`pixel_output` it
    emits images from the paper's pixel decoder, which is what a decoder
    retraining with pixel loss trains and ``inverse_transform`` uses.

    Parameters
    ----------
    z_dim : int
    image_size : tuple of int
        ``(H, W)``, each 64 + 16 n.
    feature_shape : tuple of int
        ``(C, h, w)`` of the features to predict.
    variational : bool, default=False

    Attributes
    ----------
    output : {"features", "pixels"}
        What ``decode`` emits.
    pixel_decoder_fitted : bool
        Whether the pixel decoder was trained; set by the retraining.

    Examples
    --------
    >>> import torch
    >>> ae = FeaturePredictionAutoencoder(8, (64, 64), (192, 7, 7))
    >>> ae(torch.rand(2, 3, 64, 64))[0].shape
    torch.Size([2, 192, 7, 7])
    >>> with pixel_output(ae):
    ...     ae.decode(torch.zeros(2, 8)).shape
    torch.Size([2, 3, 64, 64])
    """

    def __init__(self, z_dim, image_size, feature_shape, variational=False):
        super().__init__(z_dim, image_size, variational=variational)
        self.feature_shape = tuple(feature_shape)
        self.feature_decoder = FeatureHead(z_dim, self.feature_shape)
        self.output = "features"
        self.pixel_decoder_fitted = False

    def decode(self, z):
        """Predicted features (``output="features"``) or images in [0, 1]."""
        if self.output == "features":
            return self.feature_decoder(z)
        return super().decode(z)


@contextlib.contextmanager
def pixel_output(module):
    """Within this block, a :class:`FeaturePredictionAutoencoder` decodes images.

    A no-op for any other autoencoder, whose decoder always emits images, so
    that callers need not tell them apart.
    """
    if not isinstance(module, FeaturePredictionAutoencoder):
        yield module
        return
    previous, module.output = module.output, "pixels"
    try:
        yield module
    finally:
        module.output = previous


def has_pixel_decoder(module):
    """Whether ``module`` can decode images: any autoencoder but an untrained feature predictor."""
    return not isinstance(module, FeaturePredictionAutoencoder) or module.pixel_decoder_fitted


def check_pixel_decoder(module, retrain="fit_decoder(X)"):
    """Raise if ``module`` predicts features and its pixel decoder was never trained.

    Parameters
    ----------
    module : torch.nn.Module
    retrain : str, default="fit_decoder(X)"
        The call that trains the pixel decoder, for the message.
    """
    if not has_pixel_decoder(module):
        # NotFittedError: the pixel decoder is a part of the model that was
        # never fitted, and callers can tell this case from any other error.
        raise NotFittedError(
            "This autoencoder was trained with loss='feature_prediction': its decoder predicts "
            "loss-network features, not images, and its pixel decoder is untrained. Call "
            f"{retrain} first, which trains the pixel decoder on the frozen embedding with "
            "pixel loss (transform() is unchanged), then inverse_transform()."
        )


class FeaturePredictionLoss(nn.Module):
    """MSE between a squashed feature prediction and the squashed features of ``x``.

    ``loss(f_hat, x) = mean((s(f_hat) - s(p(x)))**2)``: the target depends
    on the input alone and is computed without gradients; ``p`` never sees
    the prediction.

    Parameters
    ----------
    network : skperceptual.loss_networks.LossNetwork
        Reading exactly one layer; its squash ``s`` applies to both sides.

    Examples
    --------
    >>> import torch
    >>> from skperceptual.loss_networks import LossNetwork, build_feature_stack
    >>> loss = FeaturePredictionLoss(LossNetwork(build_feature_stack("alexnet", 5), (5,), squash="none"))
    >>> x = torch.rand(2, 3, 64, 64)
    >>> float(loss(loss.network(x)[0], x))
    0.0
    """

    def __init__(self, network):
        super().__init__()
        if len(network.cuts) != 1:
            raise ValueError(
                "loss='feature_prediction' predicts the features of one layer; pass a single "
                f"perceptual_layer instead of {len(network.cuts)}."
            )
        self.network = network

    def forward(self, predicted, x):
        (target,) = self.network.targets(x)
        return mse_loss(squash(predicted, self.network.squash), target)
