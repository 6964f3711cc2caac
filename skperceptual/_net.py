"""The skorch net that trains a :class:`~skperceptual._model.ConvAutoencoder`."""

import contextlib

import numpy as np
import torch
from skorch import NeuralNet
from skorch.utils import TeeGenerator

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
    precision : {"fp32", "bf16", "fp16"}, default="fp32"
        ``"bf16"`` / ``"fp16"`` run the module and the criterion under
        :func:`torch.autocast` (parameters and optimiser state stay float32).
        ``"fp16"`` on CUDA also scales the loss with a
        :class:`torch.amp.GradScaler` so that small gradients do not flush
        to zero.
    channels_last : bool, default=False
        Keep the module, the criterion and every batch in the
        ``torch.channels_last`` memory format, which oneDNN (CPU) and cuDNN
        (tensor cores) convolve faster than NCHW.

    Examples
    --------
    >>> import torch
    >>> from skperceptual._model import ConvAutoencoder
    >>> from skperceptual._data import batch_loader
    >>> from skperceptual.perceptual import PixelLoss
    >>> net = AutoencoderNet(ConvAutoencoder, criterion=PixelLoss, max_epochs=1,
    ...                      module__z_dim=4, module__image_size=(64, 64),
    ...                      iterator_train=batch_loader, iterator_valid=batch_loader,
    ...                      train_split=None, verbose=0)
    >>> _ = net.fit(ImageDataset(torch.zeros(4, 3, 64, 64, dtype=torch.uint8)))
    >>> net.encode(ImageDataset(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))).shape
    (2, 4)
    """

    def __init__(self, *args, kl_weight=0.01, precision="fp32", channels_last=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.kl_weight = kl_weight
        self.precision = precision
        self.channels_last = channels_last

    def initialize_module(self):
        super().initialize_module()
        if self.channels_last:
            self.module_ = self.module_.to(memory_format=torch.channels_last)
        return self

    def initialize_criterion(self):
        super().initialize_criterion()
        if self.channels_last:
            self.criterion_ = self.criterion_.to(memory_format=torch.channels_last)
        return self

    def initialize(self):
        super().initialize()
        # Loss scaling only matters for fp16's narrow exponent, and
        # GradScaler only exists for accelerators.
        use_scaler = self.precision == "fp16" and str(self.device).startswith("cuda")
        self.grad_scaler_ = torch.amp.GradScaler("cuda") if use_scaler else None
        return self

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(torch.device(self.device).type, dtype=dtype)

    def _to_device_float(self, x):
        x = to_unit_float(x.to(self.device, non_blocking=True))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def infer(self, x, **fit_params):
        x = self._to_device_float(x)
        with self._autocast():
            recon, mu, logvar = self.module_(x, **fit_params)
        # The float input travels with the prediction so that get_loss
        # compares against the very tensor the module saw, without a second
        # host-to-device copy and conversion.
        return recon, mu, logvar, x

    def get_loss(self, y_pred, y_true=None, X=None, training=False):
        recon, mu, logvar, x = y_pred
        with self._autocast():
            loss = self.criterion_(recon, x)
            if self.module_.variational:
                loss = loss + self.kl_weight * kl_divergence(mu.float(), logvar.float())
        # Report and backpropagate a float32 loss whatever autocast chose.
        return loss.float()

    def train_step(self, batch, **fit_params):
        if self.grad_scaler_ is None:
            return super().train_step(batch, **fit_params)
        # fp16 on CUDA: GradScaler cannot step through skorch's closure, so
        # this step computes the scaled gradients itself, unscales them
        # before callbacks see them (e.g. gradient clipping), and lets the
        # scaler skip non-finite steps and adapt its scale.
        self.optimizer_.zero_grad()
        self.module_.train()
        self.criterion_.train()
        x, _ = batch
        y_pred = self.infer(x, **fit_params)
        loss = self.get_loss(y_pred, None, X=x, training=True)
        self.grad_scaler_.scale(loss).backward()
        self.grad_scaler_.unscale_(self.optimizer_)
        self.notify("on_grad_computed", named_parameters=TeeGenerator(self.get_all_learnable_params()), batch=batch)
        self.grad_scaler_.step(self.optimizer_)
        self.grad_scaler_.update()
        return {"loss": loss, "y_pred": y_pred}

    def _batches(self, dataset):
        self._set_training(False)
        with torch.no_grad():
            for x, _ in self.get_iterator(dataset, training=False):
                yield self._to_device_float(x)

    def encode(self, dataset):
        """Return the embedding means of ``dataset`` as a float32 numpy array."""
        out = []
        for x in self._batches(dataset):
            with self._autocast():
                mu = self.module_.encode(x)[0]
            out.append(mu.float().cpu())
        return torch.cat(out).numpy()

    def decode(self, z, batch_size):
        """Decode embeddings ``z`` (float32 array) into images in [0, 1]."""
        self._set_training(False)
        z = torch.as_tensor(z, dtype=torch.float32)
        out = []
        with torch.no_grad():
            for chunk in torch.split(z, batch_size):
                with self._autocast():
                    images = self.module_.decode(chunk.to(self.device))
                out.append(images.float().contiguous().cpu())
        return torch.cat(out).numpy()

    def reconstruction_loss(self, dataset):
        """Mean criterion value over ``dataset``, reconstructing from the mean embedding."""
        total, count = 0.0, 0
        for x in self._batches(dataset):
            with self._autocast():
                recon = self.module_.decode(self.module_.encode(x)[0])
                total += float(self.criterion_(recon, x)) * len(x)
            count += len(x)
        return total / count


def as_dataset(images):
    """Wrap a CPU numpy image array (no copy) in an :class:`ImageDataset`."""
    return ImageDataset(torch.from_numpy(np.ascontiguousarray(images)))
