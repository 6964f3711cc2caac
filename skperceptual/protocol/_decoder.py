"""Table VIII: retrain a fitted autoencoder's decoder alone with pixel loss.

The encoder (convolutions and both embedding heads) is frozen, so the
embedding stays exactly the one that was evaluated; only the decoder learns
to reconstruct pixels from it. Comparing the resulting L1 errors across
variants shows how much pixel information each embedding kept.
"""

import copy

import numpy as np
import torch
from torch import nn

from .._net import as_dataset
from ..perceptual import PixelLoss
from ._metrics import mean_l1


class FrozenModule(nn.Module):
    """Wrap a module so that it neither learns nor changes its statistics.

    Its parameters stop requiring gradients, and it stays in eval mode
    whatever ``train()`` skorch calls each batch, so BatchNorm keeps the
    running statistics the embedding was evaluated with.

    Parameters
    ----------
    module : torch.nn.Module
    """

    def __init__(self, module):
        super().__init__()
        self.module = module
        self.module.requires_grad_(False)
        self.module.eval()

    def train(self, mode=True):
        super().train(mode)
        self.module.eval()
        return self

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def retrain_decoder(ae, X, max_epochs=50, lr=1e-3, patience=10, random_state=0):
    """Return a copy of a fitted autoencoder whose decoder was retrained with pixel MSE.

    The copy's encoder, ``fc_mu`` and ``fc_logvar`` are frozen, it is no
    longer variational (the decoder sees the mean embedding, which is what
    ``transform`` returns), and training continues through skorch's
    ``partial_fit`` with :class:`~skperceptual.perceptual.PixelLoss`, the
    estimator's own validation split and early stopping.

    Parameters
    ----------
    ae : PerceptualAETransformer
        Fitted; left untouched.
    X : array of shape (n, C, H, W)
        Images to retrain on (the autoencoder set).
    max_epochs : int, default=50
    lr : float, default=1e-3
    patience : int, default=10
        Early-stopping patience; applies only if ``ae`` validates.
    random_state : int, default=0

    Returns
    -------
    retrained : PerceptualAETransformer
        With ``decoder_history_`` (skorch history rows of the retraining) and
        ``decoder_fit_time_``.
    """
    import time

    retrained = copy.deepcopy(ae)
    net = retrained.net_
    module = net.module_
    for name in ("encoder", "fc_mu", "fc_logvar"):
        setattr(module, name, FrozenModule(getattr(module, name)))
    module.variational = False
    retrained.variational = False
    retrained.loss = "pixel"
    net.criterion_ = PixelLoss().to(net.device)
    for _, cb in net.callbacks_:
        if hasattr(cb, "patience") and patience is not None:
            cb.patience = patience
    net.lr = lr
    # A fresh optimizer: Adam's moments from the first training belong to
    # another loss, and frozen parameters get no gradient so Adam skips them.
    net.initialize_optimizer()
    n_before = len(net.history)
    device = torch.device(net.device) if str(net.device).startswith("cuda") else None
    with torch.random.fork_rng(devices=[device] if device is not None else []):
        torch.manual_seed(int(random_state))
        start = time.perf_counter()
        net.partial_fit(as_dataset(np.asarray(X)), y=None, epochs=max_epochs)
        retrained.decoder_fit_time_ = time.perf_counter() - start
    retrained.decoder_history_ = [
        {k: row[k] for k in ("epoch", "train_loss", "valid_loss", "dur") if k in row}
        for row in net.history[n_before:]
    ]
    return retrained


def reconstruction_l1(ae, X, batch_size=256):
    """Mean L1 error (on the [0, 1] scale) of ``ae``'s reconstructions of ``X``.

    Reconstructs from the mean embedding, batch by batch.
    """
    total, count = 0.0, 0
    for start in range(0, len(X), batch_size):
        chunk = X[start : start + batch_size]
        recon = ae.inverse_transform(ae.transform(chunk))
        total += mean_l1(chunk, recon) * len(chunk)
        count += len(chunk)
    return total / count
