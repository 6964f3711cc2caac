"""skorch callbacks that stop a training run which has gone numerically wrong."""

import math

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
    and returning NaN embeddings.

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

    def on_batch_end(self, net, batch=None, training=None, loss=None, y_pred=None, **kwargs):
        self.batch_ = getattr(self, "batch_", 0) + 1
        problem = None
        loss = None if loss is None else loss.detach()
        if loss is not None and not torch.isfinite(loss).all():
            problem = f"the {'training' if training else 'validation'} loss is {float(loss)}"
        elif y_pred is not None:
            # The module returns (reconstruction, mu, logvar, ...): mu is the
            # embedding that transform() returns.
            mu = y_pred[1].detach()
            top = float(mu.abs().max()) if mu.numel() else 0.0
            if not math.isfinite(top):
                problem = "the embeddings contain non-finite values"
            elif top > self.max_abs_embedding:
                problem = (
                    f"the embeddings reached {top:.3g}, beyond the sane bound of "
                    f"{self.max_abs_embedding:g}"
                )
        if problem is None:
            return
        epoch = len(net.history)
        raise FloatingPointError(
            f"Training diverged at epoch {epoch}, batch {self.batch_}: {problem}. "
            f"Try a lower lr than {net.lr:g} (e.g. 1e-3, Adam's usual value), and check "
            "that perceptual_weights holds finite, trained weights (a corrupt or "
            "NaN-filled file poisons the loss)."
        )
