"""FrozenFeatureTransformer: a frozen pretrained network's activations as a scikit-learn transformer.

This is what a perceptual autoencoder competes with. The perceptual loss
compares what a frozen ImageNet network sees at one layer; the same
activations, taken directly and reduced by PCA, are an embedding that needs
no training at all. This transformer returns them, with the loss networks,
layer names, weight resolution and uint8 handling of the perceptual loss.
"""

import os
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..losses.networks import SQUASHES, LossNetwork, feature_shapes, resolve_layers
from ..losses.perceptual import PERCEPTUAL_NETS, load_perceptual_net
from ..training.data import batch_loader, to_unit_float
from ..training.net import as_dataset
from ._validation import check_device, check_images, resolve_device


def _renamed(exc):
    """``exc``, of the same type, with the perceptual loss's parameter names replaced by this estimator's."""
    message = str(exc).replace("perceptual_layer", "layer").replace("perceptual_weights", "weights")
    return type(exc)(message)


class FrozenFeatureTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Embed images with a frozen pretrained network's activations at a named layer.

    Nothing is learned from the data: ``fit`` validates the images, loads
    the network's weights and records the output shape. ``transform`` runs
    the images through the network's feature stack, batch by batch on the
    device, and returns the activations at ``layer``, flattened, or
    averaged or maxed over space. Follow it with
    :class:`~sklearn.decomposition.PCA` for a compact embedding: with
    ``net="alexnet"`` and ``layer="relu2"`` that is the training-free
    counterpart of a perceptual autoencoder with the paper's loss.

    Parameters
    ----------
    net : str, default="alexnet"
        torchvision network whose feature stack is used: one of the 14 of
        :data:`skperceptual.perceptual.PERCEPTUAL_NETS`.
    layer : int, str or list, default="relu2"
        Where the features are read: an integer cut (how many modules of
        the feature stack to keep), a layer name such as ``"relu2"`` or
        ``"conv3_3"`` (:func:`skperceptual.loss_networks.layer_names`), or
        a list of them, concatenated in that order from one forward pass.
        AlexNet's ``"relu2"`` (cut 5) is the perceptual loss's layer in the
        paper.
    weights : "imagenet", str, path-like or None, default="imagenet"
        As ``perceptual_weights`` of
        :class:`~skperceptual.PerceptualAETransformer`: ``"imagenet"``
        resolves torchvision's ImageNet weights (cache, registered file,
        download, package-index mirror for AlexNet), a path loads a local
        state_dict, None keeps a random initialisation seeded by
        ``random_state``.
    squash : {"none", "sigmoid", "unit"}, default="none"
        Applied to the activations before pooling: ``"none"`` returns them
        as the network computes them, ``"sigmoid"`` as the paper's
        perceptual loss compares them, ``"unit"`` with each location's
        channel vector normalised to unit length (as LPIPS does).
    pooling : {"avg", "max"} or None, default=None
        None returns every activation, ``C * h * w`` values per layer;
        ``"avg"`` or ``"max"`` pools each channel over space, ``C`` values
        per layer.
    normalize : bool, default=False
        Standardise images with ImageNet's mean and std before the network.
        The paper's perceptual loss feeds unnormalised [0, 1] images.
    batch_size : int, default=256
        Images per forward pass.
    device : str or torch.device, default="auto"
        Where the network runs. ``"auto"`` picks CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds the random initialisation when ``weights=None``; unused
        otherwise.
    image_shape : tuple of int or None, default=None
        ``(channels, height, width)`` of flat 2-D input. When None, flat
        input is read as square 3-channel images.

    Attributes
    ----------
    network_ : skperceptual.loss_networks.LossNetwork
        The frozen network, on the CPU between calls.
    layers_ : tuple of int
        The layers read, as integer cuts.
    feature_shapes_ : list of tuple of int
        ``(C, h, w)`` of the activations at each layer, before pooling.
    n_features_in_ : int
        Number of values per input image, ``C * H * W``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a DataFrame ``X``; only defined if it had string names.
    image_shape_ : tuple of int
        ``(C, H, W)`` of the images seen in ``fit``.

    See Also
    --------
    skperceptual.PerceptualAETransformer : An autoencoder trained through the
        same network.
    sklearn.decomposition.PCA : Reduces the features to a compact embedding.

    Notes
    -----
    Images are (n, C, H, W) or flat (n, C*H*W) arrays or tensors, uint8 in
    [0, 255] or floating in [0, 1], with C in {1, 3} (one channel is
    replicated). Any height and width the network can downsample to at
    least one pixel at ``layer`` work. uint8 input is converted to float
    batch by batch on the device, never as a whole.

    Examples
    --------
    >>> import numpy as np
    >>> from skperceptual import FrozenFeatureTransformer
    >>> X = np.random.default_rng(0).integers(0, 256, (4, 3, 64, 64), dtype=np.uint8)
    >>> frozen = FrozenFeatureTransformer(layer="relu2", weights=None, random_state=0)
    >>> frozen.fit_transform(X).shape
    (4, 9408)
    >>> frozen.set_params(pooling="avg").fit_transform(X).shape
    (4, 192)
    """

    _parameter_constraints = {
        "net": [StrOptions(set(PERCEPTUAL_NETS))],
        "layer": [Interval(Integral, 1, None, closed="left"), str, list, tuple],
        "weights": [str, os.PathLike, None],
        "squash": [StrOptions(set(SQUASHES))],
        "pooling": [StrOptions({"avg", "max"}), None],
        "normalize": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "image_shape": [tuple, list, None],
    }

    def __init__(
        self,
        net="alexnet",
        layer="relu2",
        *,
        weights="imagenet",
        squash="none",
        pooling=None,
        normalize=False,
        batch_size=256,
        device="auto",
        random_state=None,
        image_shape=None,
    ):
        self.net = net
        self.layer = layer
        self.weights = weights
        self.squash = squash
        self.pooling = pooling
        self.normalize = normalize
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.image_shape = image_shape

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Load the network and check that it can read images like ``X``.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, C, H, W) or (n_samples, C*H*W)
            Images, uint8 in [0, 255] or floating in [0, 1].
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : FrozenFeatureTransformer
            The fitted transformer.
        """
        # Checks that need no data first, then the images, then the weights:
        # a bad parameter or image costs no weight resolution.
        try:
            cuts = resolve_layers(self.net, self.layer)
        except ValueError as exc:
            raise _renamed(exc) from None
        check_device(resolve_device(self.device), self.device)
        images = check_images(self, X, reset=True, image_shape=self.image_shape, any_size=True)
        shapes = feature_shapes(self.net, cuts, images.shape[2:])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max)))
            try:
                stack = load_perceptual_net(self.net, max(cuts), self.weights)
            except (ValueError, OSError) as exc:
                raise _renamed(exc) from None
        # The loss network reads several layers in one forward pass and
        # applies the squash; no ImageNet standardisation unless asked.
        self.network_ = LossNetwork(stack, cuts, squash=self.squash, normalize=self.normalize)
        self.layers_ = cuts
        self.feature_shapes_ = shapes
        self.image_shape_ = tuple(images.shape[1:])
        # What transform returns is fixed at fit: set_params(pooling=...) afterwards needs a refit.
        self._pooling = self.pooling
        self._n_features_out = sum(c if self.pooling else c * h * w for c, h, w in shapes)
        return self

    def _features(self, maps):
        if self._pooling == "avg":
            return [m.mean(dim=(2, 3)) for m in maps]
        if self._pooling == "max":
            return [m.amax(dim=(2, 3)) for m in maps]
        return [m.flatten(1) for m in maps]

    def transform(self, X):
        """Return the activations of ``X`` at ``layer``.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, C, H, W) or (n_samples, C*H*W)
            Images of the fitted shape, uint8 in [0, 255] or floating in [0, 1].

        Returns
        -------
        features : ndarray of shape (n_samples, n_features), dtype float32
            Per layer, ``C * h * w`` activations in (channel, row, column)
            order, or ``C`` pooled ones; layers in the order of ``layer``.
        """
        check_is_fitted(self)
        images = check_images(self, X, reset=False, any_size=True)
        device = check_device(resolve_device(self.device), self.device)
        network = self.network_.to(device)
        out = np.empty((len(images), self._n_features_out), dtype=np.float32)
        try:
            start = 0
            with torch.inference_mode():
                for x, _ in batch_loader(as_dataset(images), self.batch_size):
                    x = to_unit_float(x.to(device))
                    features = torch.cat(self._features(network(x)), dim=1)
                    out[start : start + len(x)] = features.float().cpu().numpy()
                    start += len(x)
        finally:
            # The fitted estimator stays on the CPU: it pickles and clones
            # the same wherever it last ran.
            self.network_.to("cpu")
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
