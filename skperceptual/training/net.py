"""The skorch net that trains a :class:`~skperceptual.models.autoencoder.ConvAutoencoder`."""

import contextlib
import functools
import warnings

import numpy as np
import torch
from skorch import NeuralNet
from skorch.dataset import get_len
from skorch.utils import TeeGenerator

from .allocator import retain_freed_memory
from .data import ImageDataset, to_unit_float


def kl_divergence(mu, logvar):
    """Mean (over batch and dimensions) KL divergence of N(mu, exp(logvar)) to N(0, I).

    The reference implementation omits the 1/2 factor, so its ``gamma`` weighs
    twice the divergence that the same ``kl_weight`` weighs here.
    """
    return -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())


def resolve_precision(precision, device):
    """Return the precision that ``precision`` means on ``device``.

    ``"auto"`` is ``"bf16"`` on a CPU that computes in bf16 natively
    (AVX512-BF16 or AMX, on which oneDNN runs bf16 convolutions and matrix
    products) and ``"fp32"`` elsewhere: other CPUs emulate bf16, which is
    slower than fp32. On CUDA GPUs it is ``"fp32"``: cuDNN already runs fp32
    convolutions on the tensor cores (TF32), and bf16 did not train faster
    on the GPU measured (see the benchmarks page).

    Parameters
    ----------
    precision : {"fp32", "bf16", "fp16", "auto"}
        The estimator's ``precision`` parameter.
    device : str or torch.device
        The device that trains, already resolved (not ``"auto"``).

    Returns
    -------
    precision : {"fp32", "bf16", "fp16"}
        ``precision`` itself unless it is ``"auto"``.

    Examples
    --------
    >>> resolve_precision("fp16", "cpu")
    'fp16'
    >>> resolve_precision("auto", "cpu") in ("bf16", "fp32")
    True
    >>> resolve_precision("auto", "cuda")
    'fp32'
    """
    if precision != "auto":
        return precision
    if torch.device(device).type != "cpu":
        return "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


@functools.cache
def cpu_has_native_bf16():
    """Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX), from Linux's ``/proc/cpuinfo``.

    PyTorch has no public query for it; elsewhere than Linux the answer is
    False, and ``precision="auto"`` then means fp32.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


#: Optimisers with a ``fused`` implementation on both CPU and CUDA.
_FUSABLE_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW)


class TrainingInterrupted(Exception):
    """A Ctrl-C during training, carried past skorch's ``partial_fit``, which would swallow it."""


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
    precision : {"fp32", "bf16", "fp16", "auto"}, default="fp32"
        ``"bf16"`` / ``"fp16"`` run the module and the criterion under
        :func:`torch.autocast` (parameters and optimiser state stay float32).
        ``"auto"``: see :func:`resolve_precision`; the choice is stored in
        ``precision_`` by :meth:`initialize`.
        ``"fp16"`` on CUDA also scales the loss with a
        :class:`torch.amp.GradScaler` so that small gradients do not flush
        to zero.
    loss_precision : {"fp32", "bf16", "fp16", "auto"} or None, default=None
        Arithmetic of the criterion alone, e.g. a frozen loss network in
        bf16 behind a float32 autoencoder. None follows ``precision``. The
        choice is stored in ``loss_precision_`` by :meth:`initialize`.
    channels_last : bool, default=False
        Keep the module, the criterion and every batch in the
        ``torch.channels_last`` memory format, which oneDNN (CPU) and cuDNN
        (tensor cores) convolve faster than NCHW.

    Examples
    --------
    >>> import torch
    >>> from skperceptual.models.autoencoder import ConvAutoencoder
    >>> from skperceptual.training.data import batch_loader
    >>> from skperceptual.perceptual import PixelLoss
    >>> net = AutoencoderNet(ConvAutoencoder, criterion=PixelLoss, max_epochs=1,
    ...                      module__z_dim=4, module__image_size=(64, 64),
    ...                      iterator_train=batch_loader, iterator_valid=batch_loader,
    ...                      train_split=None, verbose=0)
    >>> _ = net.fit(ImageDataset(torch.zeros(4, 3, 64, 64, dtype=torch.uint8)))
    >>> net.encode(ImageDataset(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))).shape
    (2, 4)
    """

    def __init__(self, *args, kl_weight=0.01, precision="fp32", loss_precision=None,
                 channels_last=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.kl_weight = kl_weight
        self.precision = precision
        self.loss_precision = loss_precision
        self.channels_last = channels_last

    def __setstate__(self, state):
        # A net pickled before loss_precision existed computed its loss in
        # the module's precision, which is what None means.
        state.setdefault("loss_precision", None)
        if "precision_" in state:
            state.setdefault("loss_precision_", state["precision_"])
        super().__setstate__(state)

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

    def get_params_for_optimizer(self, prefix, named_parameters):
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        # torch's Adam defaults to a per-parameter loop on the CPU, which
        # stepped this model in ~700 ms; the fused kernel computes the same
        # update in a few ms (measured in benchmarks/). Only when the user
        # chose neither implementation.
        if (prefix == "optimizer" and self.optimizer in _FUSABLE_OPTIMIZERS
                and not {"fused", "foreach"} & kwargs.keys()):
            kwargs["fused"] = True
        return args, kwargs

    def initialize(self):
        self.precision_ = resolve_precision(self.precision, self.device)
        loss_precision = self.precision if self.loss_precision is None else self.loss_precision
        self.loss_precision_ = resolve_precision(loss_precision, self.device)
        super().initialize()
        # Loss scaling only matters for fp16's narrow exponent, and
        # GradScaler only exists for accelerators.
        use_scaler = "fp16" in (self.precision_, self.loss_precision_) and str(self.device).startswith("cuda")
        self.grad_scaler_ = torch.amp.GradScaler("cuda") if use_scaler else None
        return self

    def _autocast(self, precision=None):
        """The autocast region of ``precision`` (default: the module's, ``precision_``)."""
        precision = self.precision_ if precision is None else precision
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(torch.device(self.device).type, dtype=dtype)

    def _criterion(self, recon, x):
        """The criterion of ``recon`` against ``x`` in ``loss_precision_``."""
        if self.loss_precision_ != self.precision_:
            # A reduced-precision reconstruction meets a float32 criterion's
            # weights: autocast casts down where asked, never up.
            recon = recon.float()
        with self._autocast(self.loss_precision_):
            return self.criterion_(recon, x)

    def _to_device_float(self, x):
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.shape[1] != 1:
            # Re-lay out the 1-byte images rather than their float copy:
            # the conversion below keeps the memory format.
            x = x.contiguous(memory_format=torch.channels_last)
        x = to_unit_float(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)  # no-op unless grey
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
        loss = self._criterion(recon, x)
        with self._autocast():
            if self.module_.variational:
                loss = loss + self.kl_weight * kl_divergence(mu.float(), logvar.float())
        # Report and backpropagate a float32 loss whatever autocast chose.
        return loss.float()

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # Each CPU step frees and re-allocates large activations; see
        # skperceptual.training.allocator for why glibc should keep them. CUDA
        # tensors come from PyTorch's own caching allocator.
        on_cpu = torch.device(self.device or "cpu").type == "cpu"
        try:
            with retain_freed_memory() if on_cpu else contextlib.nullcontext():
                return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt as exc:
            # skorch's partial_fit ends training quietly on Ctrl-C and keeps
            # the half-trained net; carried past it, the estimator re-raises.
            # Callbacks still get the on_train_end that skorch gives them
            # after a Ctrl-C (progress bars close before the caller reports
            # the interrupt, files close).
            try:
                self.notify("on_train_end", X=X, y=y)
            finally:
                raise TrainingInterrupted from exc

    def _defers_loss_sync(self):
        """Whether batch losses reach the history as device tensors (see :meth:`run_single_epoch`)."""
        # A verbose fit shows each batch's loss in its progress bar, which
        # needs the number on the host anyway.
        on_cuda = self.device is not None and torch.device(self.device).type == "cuda"
        return on_cuda and not self.verbose

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """Run one training or validation pass, as skorch does, without a host sync per batch on CUDA.

        skorch records each batch's loss with ``loss.item()``, which makes
        the CPU wait for the GPU after every batch: the next batch's data
        loading and kernel launches then cannot overlap the GPU's work. On
        CUDA (unless ``verbose``), the loss is recorded as a detached 0-dim
        device tensor instead, and all of the pass's losses become floats
        with one copy when it ends (also when it is interrupted), before
        ``on_epoch_end`` callbacks average them. A callback that reads a
        batch's loss from the history during the pass gets that tensor.
        Elsewhere this is skorch's loop.
        """
        if iterator is None or not self._defers_loss_sync():
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        rows, losses = [], []
        try:
            for batch in iterator:
                self.notify("on_batch_begin", batch=batch, training=training)
                step = step_fn(batch, **fit_params)
                rows.append(self.history[-1]["batches"][-1])
                losses.append(step["loss"].detach())
                self.history.record_batch(prefix + "_loss", losses[-1])
                batch_size = get_len(batch[0]) if isinstance(batch, (tuple, list)) else get_len(batch)
                self.history.record_batch(prefix + "_batch_size", batch_size)
                self.notify("on_batch_end", batch=batch, training=training, **step)
        finally:
            # Floats in the history even after an interrupt (skorch's
            # partial_fit swallows KeyboardInterrupt), so that it stays
            # picklable and JSON-serialisable.
            if losses:
                for row, value in zip(rows, torch.stack(losses).tolist()):
                    row[prefix + "_loss"] = value
        self.history.record(prefix + "_batch_count", len(losses))

    def train_step_single(self, batch, **fit_params):
        return _slim(super().train_step_single(batch, **fit_params))

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
        return _slim({"loss": loss, "y_pred": y_pred})

    def _batches(self, dataset):
        self.module_.eval()
        self.criterion_.eval()
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
        self.module_.eval()
        self.criterion_.eval()
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
            # Summed on the device: one host sync at the end, not per batch.
            total = total + self._criterion(recon, x).float() * len(x)
            count += len(x)
        return float(total) / count


def _slim(step):
    """What a training step hands on: the loss without its graph and only the embedding means.

    skorch keeps a step's result alive until the next step has returned; the
    reconstructions and float inputs in ``y_pred`` (50 MB at batch 512) are
    read by no callback of this estimator, while the embedding means are
    checked by :class:`~skperceptual.callbacks.DivergenceGuard`.
    """
    recon, mu, logvar, x = step["y_pred"]
    return {"loss": step["loss"].detach(), "y_pred": (None, mu.detach(), None, None)}


def as_dataset(images):
    """Wrap a CPU numpy image array (no copy) in an :class:`ImageDataset`."""
    images = np.ascontiguousarray(images)
    with warnings.catch_warnings():
        # joblib hands large arrays to worker processes as read-only memory
        # maps; torch warns that writing to such a tensor is undefined, but
        # batches are only ever read (gathered with index_select).
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return ImageDataset(torch.from_numpy(images))
