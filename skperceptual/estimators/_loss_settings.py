"""From the estimator's loss parameters to its criterion and autoencoder module.

One place turns ``loss``, ``perceptual_net``, ``perceptual_layer``,
``perceptual_layer_weights``, ``perceptual_squash`` and
``perceptual_normalize`` into what skorch trains, and checks them (cheaply,
on the meta device) before any work starts.
"""

from dataclasses import dataclass

from ..losses.feature_prediction import FeaturePredictionAutoencoder, FeaturePredictionLoss
from ..losses.networks import (
    LossNetwork,
    MultiLayerPerceptualLoss,
    feature_shapes,
    resolve_layer_weights,
    resolve_layers,
)
from ..losses.perceptual import PerceptualLoss, PixelLoss, load_perceptual_net
from ..models.autoencoder import ConvAutoencoder

#: The values of ``loss``.
LOSSES = ("perceptual", "pixel", "feature_prediction")


@dataclass(frozen=True)
class LossSettings:
    """The loss parameters of a :class:`~skperceptual.PerceptualAETransformer`, checked.

    Build it with :meth:`from_estimator`, which validates every combination
    and raises ValueError naming the parameter and the fix.

    Attributes
    ----------
    loss : {"perceptual", "pixel", "feature_prediction"}
    net : str
    cuts : tuple of int
        The layers as cuts (see :func:`skperceptual.loss_networks.resolve_layers`).
    layer_weights : tuple of float
        Normalised per-layer weights.
    weights, squash, normalize
        ``perceptual_weights``, ``perceptual_squash``, ``perceptual_normalize``.
    feature_shape : tuple of int or None
        ``(C, h, w)`` that feature prediction predicts; None otherwise.
    """

    loss: str
    net: str
    cuts: tuple
    layer_weights: tuple
    weights: object
    squash: str
    normalize: bool
    feature_shape: tuple = None

    @classmethod
    def from_estimator(cls, estimator, image_size):
        """Check ``estimator``'s loss parameters for images of ``(H, W)``.

        Examples
        --------
        >>> from skperceptual import PerceptualAETransformer
        >>> s = LossSettings.from_estimator(
        ...     PerceptualAETransformer(perceptual_layer=["relu1", "relu2"]), (64, 64))
        >>> s.cuts, s.layer_weights
        ((2, 5), (0.5, 0.5))
        """
        loss = estimator.loss
        settings = dict(
            loss=loss, net=estimator.perceptual_net, weights=estimator.perceptual_weights,
            squash=estimator.perceptual_squash, normalize=estimator.perceptual_normalize,
        )
        if loss == "pixel":
            return cls(cuts=(), layer_weights=(), **settings)
        cuts = resolve_layers(estimator.perceptual_net, estimator.perceptual_layer)
        layer_weights = resolve_layer_weights(cuts, estimator.perceptual_layer_weights)
        # Raises, naming the deepest usable layer, when the images are too small.
        shapes = feature_shapes(estimator.perceptual_net, cuts, image_size)
        feature_shape = None
        if loss == "feature_prediction":
            if len(cuts) != 1:
                raise ValueError(
                    "loss='feature_prediction' predicts the features of one layer, but "
                    f"perceptual_layer={estimator.perceptual_layer!r} lists {len(cuts)}; pass one layer "
                    "(a multi-layer loss is available with loss='perceptual')."
                )
            feature_shape = shapes[0]
        return cls(cuts=cuts, layer_weights=layer_weights, feature_shape=feature_shape, **settings)

    @property
    def is_papers_loss(self):
        """A single-layer sigmoid perceptual loss: the 2020 paper's form."""
        return self.loss == "perceptual" and len(self.cuts) == 1 and self.squash == "sigmoid"

    def criterion(self):
        """Build the training criterion (loads the loss network's weights).

        Returns
        -------
        criterion : torch.nn.Module
            :class:`~skperceptual.perceptual.PixelLoss`,
            :class:`~skperceptual.perceptual.PerceptualLoss` (one layer,
            sigmoid), :class:`~skperceptual.loss_networks.MultiLayerPerceptualLoss`
            or :class:`~skperceptual.losses.feature_prediction.FeaturePredictionLoss`.
        """
        if self.loss == "pixel":
            return PixelLoss()
        stack = load_perceptual_net(self.net, max(self.cuts), self.weights)
        if self.is_papers_loss:
            return PerceptualLoss(stack, normalize=self.normalize)
        network = LossNetwork(stack, self.cuts, squash=self.squash, normalize=self.normalize)
        if self.loss == "feature_prediction":
            return FeaturePredictionLoss(network)
        return MultiLayerPerceptualLoss(network, self.layer_weights)

    def module(self):
        """The autoencoder class and its extra skorch ``module__`` arguments.

        Returns
        -------
        module : type
        kwargs : dict
        """
        if self.loss == "feature_prediction":
            return FeaturePredictionAutoencoder, {"module__feature_shape": self.feature_shape}
        return ConvAutoencoder, {}
