"""skorch callbacks of the estimator: divergence checks and learning-curve checkpoints."""

import math

import numpy as np
import torch
from skorch.callbacks import Callback

# The loss alone cannot catch every divergence: the decoder ends in a sigmoid
# and the perceptual loss compares sigmoids, so the loss stays finite (and
# bounded) while the encoder's weights blow up. The embedding, a linear map of
# batch-normalised ReLU activations, shows it instead: its magnitude grows
# with the size of Adam's steps. Measured on 48 64x64 images, 8 epochs, for
# both losses: the peak |embedding| was 9 at lr=1e-3, 80 at lr=1e-2, 3e4 at
# lr=0.1 (still training), 5e6-1e7 at lr=1 and ~1e9 at lr=10; lr=1e6 reaches
# ~1e17. Such embeddings are useless downstream, where float32 sums of squares
# (StandardScaler, PCA, a ridge head) lose them to rounding or overflow. The
# bound sits between "aggressive but training" and "diverged".
MAX_ABS_EMBEDDING = 1e6


class DivergenceGuard(Callback):
    """Stop training at the first batch whose loss or embeddings are non-finite or absurd.

    Checked after every training and validation batch, so that a diverging
    fit fails within one batch instead of training on for all its epochs
    and returning NaN embeddings. On CUDA a batch is checked when the next
    one ends (the epoch's last batch when the epoch ends), so that the GPU
    never waits for the check; the error still names the batch that
    diverged.

    Parameters
    ----------
    max_abs_embedding : float, default=1e6
        Largest magnitude an embedding entry may reach; see the module's
        comment for why this bound.

    Raises
    ------
    FloatingPointError
        Saying which quantity went wrong, at which epoch and batch, and
        what to try: a lower ``lr``, and checking ``perceptual_weights``.
    """

    def __init__(self, max_abs_embedding=MAX_ABS_EMBEDDING):
        self.max_abs_embedding = max_abs_embedding

    def on_epoch_begin(self, net, **kwargs):
        self.batch_ = 0
        self.pending_ = None

    def on_batch_end(self, net, batch=None, training=None, loss=None, y_pred=None, **kwargs):
        self.batch_ = getattr(self, "batch_", 0) + 1
        values = _loss_and_largest_embedding(loss, y_pred)
        if values is None:
            return
        where = (len(net.history), self.batch_, training)
        if not self._defers(values):
            self._check(net, where, values.tolist())
            return
        # On CUDA, reading the numbers now would make the CPU wait for this
        # batch's last kernel, and the GPU would then idle while the next
        # batch is loaded and launched. So the previous batch's numbers are
        # checked (waiting for their copy lets the GPU work on this batch
        # meanwhile), and this batch's start an asynchronous copy to the
        # host. A divergence is still caught, one batch later.
        self._check_last(net)
        self.pending_ = (where, _start_copy_to_host(values))

    def on_epoch_end(self, net, **kwargs):
        # The epoch's last batch, before anything reads its results.
        self._check_last(net)

    def on_train_end(self, net, **kwargs):
        # An interrupted epoch (skorch's partial_fit swallows
        # KeyboardInterrupt) has an unchecked batch too, and its CUDA event
        # must not stay in the callback, which would then not pickle.
        self._check_last(net)

    def _check_last(self, net):
        """Check the batch whose values are still on their way to the host, if any."""
        pending, self.pending_ = getattr(self, "pending_", None), None
        if pending is None:
            return
        where, (host_values, copied) = pending
        if copied is not None:
            copied.synchronize()
        self._check(net, where, host_values.tolist())

    @staticmethod
    def _defers(values):
        """Whether to check ``values`` one batch later (they live on a CUDA device)."""
        return values.is_cuda

    def _check(self, net, where, values):
        epoch, batch, training = where
        loss, largest = values
        if not math.isfinite(loss):
            problem = f"the {'training' if training else 'validation'} loss is {loss}"
        elif not math.isfinite(largest):
            problem = "the embeddings contain non-finite values"
        elif largest > self.max_abs_embedding:
            problem = (
                f"the embeddings reached {largest:.3g}, beyond the sane bound of "
                f"{self.max_abs_embedding:g}"
            )
        else:
            return
        raise FloatingPointError(
            f"Training diverged at epoch {epoch}, batch {batch}: {problem}. "
            f"Try a lower lr than {net.lr:g} (e.g. 1e-3, Adam's usual value), and check "
            "that perceptual_weights holds finite, trained weights (a corrupt or "
            "NaN-filled file poisons the loss)."
        )


def _loss_and_largest_embedding(loss, y_pred):
    """A float32 tensor ``[loss, max |embedding|]`` on the batch's device, without a host sync.

    A missing loss or embedding counts as 0 (nothing to check). None when
    the batch has neither.
    """
    # The module returns (reconstruction, mu, logvar, ...): mu is the
    # embedding that transform() returns.
    mu = None if y_pred is None else y_pred[1]
    if loss is None and mu is None:
        return None
    device = (loss if loss is not None else mu).device
    zero = torch.zeros((), device=device)
    loss = zero if loss is None else loss.detach().float().reshape(())
    largest = zero if mu is None or not mu.numel() else mu.detach().abs().max().float()
    return torch.stack([loss, largest])


def _start_copy_to_host(values):
    """Start copying ``values`` to host memory; return the copy and the event that marks it done.

    For a CUDA tensor the copy lands in pinned memory and runs behind the
    batch's kernels. A CPU tensor is its own copy, with no event.
    """
    if not values.is_cuda:
        return values, None
    host = values.to("cpu", non_blocking=True)
    copied = torch.cuda.Event()
    # On the stream that runs the copy: that of the tensor's device, which
    # need not be the current device.
    copied.record(torch.cuda.current_stream(values.device))
    return host, copied


class EmbeddingCheckpoints(Callback):
    """Embed fixed image sets at chosen points of training, for learning curves.

    After the training batch at which the number of training images seen
    first reaches each value of ``at``, every image set in ``images`` is
    embedded (the embedding means, as ``transform`` returns them) with the
    autoencoder as it is at that moment. Training then goes on unchanged:
    embedding runs in evaluation mode without gradients and draws no random
    numbers, and skorch puts the module back into training mode before the
    next step.

    Parameters
    ----------
    images : dict of str to array-like of shape (n_samples, C, H, W)
        The image sets to embed, e.g. ``{"predictor": X_pred, "test": X_test}``,
        in the layout and dtype given to ``fit``.
    at : sequence of int
        Numbers of training images seen (counting repeats over epochs) at
        which to embed. Values past the end of training are never reached.

    Attributes
    ----------
    checkpoints_ : list of (int, dict)
        One ``(n_images_seen, {name: embeddings})`` pair per checkpoint
        reached, in training order; the embeddings are float32 arrays of
        shape (n_samples, z_dim).

    Examples
    --------
    >>> import numpy as np
    >>> from skperceptual import PerceptualAETransformer
    >>> from skperceptual.callbacks import EmbeddingCheckpoints
    >>> X = np.random.default_rng(0).integers(0, 256, (16, 3, 64, 64), dtype=np.uint8)
    >>> curve = EmbeddingCheckpoints({"train": X[:4]}, at=[8, 16, 32])
    >>> ae = PerceptualAETransformer(z_dim=4, loss="pixel", max_epochs=2, batch_size=8,
    ...                              validation_fraction=None, callbacks=[("curve", curve)],
    ...                              random_state=0).fit(X)
    >>> [(n, z["train"].shape) for n, z in curve.checkpoints_]
    [(8, (4, 4)), (16, (4, 4)), (32, (4, 4))]
    """

    def __init__(self, images, at):
        self.images = images
        self.at = at

    def initialize(self):
        self.checkpoints_ = []
        self.n_seen_ = 0
        self._pending = sorted(int(n) for n in self.at)
        return self

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if not training:
            return
        self.n_seen_ += len(batch[0])
        if not self._pending or self.n_seen_ < self._pending[0]:
            return
        # One snapshot serves every checkpoint this batch reached.
        while self._pending and self.n_seen_ >= self._pending[0]:
            self._pending.pop(0)
        from .net import as_dataset

        embeddings = {name: net.encode(as_dataset(np.asarray(X))) for name, X in self.images.items()}
        self.checkpoints_.append((self.n_seen_, embeddings))
