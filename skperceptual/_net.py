"""The skorch net that trains a :class:`~skperceptual._model.ConvAutoencoder`."""

import numpy as np
import torch
from skorch import NeuralNet

from ._data import ImageDataset, to_unit_float


def kl_divergence(mu, logvar):
    """Mean (over batch and dimensions) KL divergence of N(mu, exp(logvar)) to N(0, I).

    The reference implementation omits the 1/2 factor, so its ``gamma`` weighs
    twice the divergence that the same ``kl_weight`` weighs here.
    """
    return -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())


class AutoencoderNet(NeuralNet):
    """skorch ``NeuralNet`` for (variational) autoencoders of images.

    The module returns ``(reconstruction, mu, logvar)``; the criterion
    compares the reconstruction with the input (there is no target ``y``).
    Batches arrive in their storage dtype (usually uint8) and are converted to
    float on the device, once, in :meth:`infer`.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`skorch.NeuralNet`.
    kl_weight : float, default=0.01
        Weight of the KL term, added only when the module is variational.

    Examples
    --------
    >>> import torch
    >>> from skperceptual._model import ConvAutoencoder
    >>> from skperceptual.perceptual import PixelLoss
    >>> net = AutoencoderNet(ConvAutoencoder, criterion=PixelLoss, max_epochs=1,
    ...                      module__z_dim=4, module__image_size=(64, 64),
    ...                      train_split=None, verbose=0)
    >>> _ = net.fit(ImageDataset(torch.zeros(4, 3, 64, 64, dtype=torch.uint8)))
    >>> net.encode(ImageDataset(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))).shape
    (2, 4)
    """

    def __init__(self, *args, kl_weight=0.01, **kwargs):
        super().__init__(*args, **kwargs)
        self.kl_weight = kl_weight

    def _to_device_float(self, x):
        return to_unit_float(x.to(self.device, non_blocking=True))

    def infer(self, x, **fit_params):
        x = self._to_device_float(x)
        recon, mu, logvar = self.module_(x, **fit_params)
        # The float input travels with the prediction so that get_loss
        # compares against the very tensor the module saw, without a second
        # host-to-device copy and conversion.
        return recon, mu, logvar, x

    def get_loss(self, y_pred, y_true=None, X=None, training=False):
        recon, mu, logvar, x = y_pred
        loss = self.criterion_(recon, x)
        if self.module_.variational:
            loss = loss + self.kl_weight * kl_divergence(mu, logvar)
        return loss

    def _batches(self, dataset):
        self._set_training(False)
        with torch.no_grad():
            for x, _ in self.get_iterator(dataset, training=False):
                yield self._to_device_float(x)

    def encode(self, dataset):
        """Return the embedding means of ``dataset`` as a float32 numpy array."""
        out = [self.module_.encode(x)[0].cpu() for x in self._batches(dataset)]
        return torch.cat(out).numpy()

    def decode(self, z, batch_size):
        """Decode embeddings ``z`` (float32 array) into images in [0, 1]."""
        self._set_training(False)
        z = torch.as_tensor(z, dtype=torch.float32)
        out = []
        with torch.no_grad():
            for chunk in torch.split(z, batch_size):
                out.append(self.module_.decode(chunk.to(self.device)).cpu())
        return torch.cat(out).numpy()

    def reconstruction_loss(self, dataset):
        """Mean criterion value over ``dataset``, reconstructing from the mean embedding."""
        total, count = 0.0, 0
        for x in self._batches(dataset):
            recon = self.module_.decode(self.module_.encode(x)[0])
            total += float(self.criterion_(recon, x)) * len(x)
            count += len(x)
        return total / count


def as_dataset(images):
    """Wrap a CPU numpy image array (no copy) in an :class:`ImageDataset`."""
    return ImageDataset(torch.from_numpy(np.ascontiguousarray(images)))
