"""No host sync per batch on CUDA: deferred batch losses and a one-batch-late divergence check.

There is no GPU in CI, so each deferred path is forced on the CPU, where it
must give the same results as the immediate one.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skperceptual import PerceptualAETransformer
from skperceptual._net import AutoencoderNet
from skperceptual.callbacks import DivergenceGuard

QUICK = dict(z_dim=4, max_epochs=2, batch_size=6, loss="pixel", perceptual_weights=None,
             validation_fraction=0.25, random_state=0)


class BatchLosses(Callback):
    """Records what ``on_batch_end`` finds in the history for the batch's loss."""

    def initialize(self):
        self.seen_ = []
        return self

    def on_batch_end(self, net, training=None, **kwargs):
        key = "train_loss" if training else "valid_loss"
        self.seen_.append(net.history[-1, "batches", -1, key])


def fit_history(images, defer, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(AutoencoderNet, "_defers_loss_sync", lambda self: defer)
        seen = BatchLosses()
        ae = PerceptualAETransformer(**QUICK, callbacks=[("seen", seen)]).fit(images)
    return ae.net_.history, seen.seen_


def test_deferred_batch_losses_give_skorchs_history(images, monkeypatch):
    plain, plain_seen = fit_history(images, False, monkeypatch)
    deferred, deferred_seen = fit_history(images, True, monkeypatch)
    for before, after in zip(plain, deferred):
        for key in ("train_loss", "valid_loss", "train_batch_count", "valid_batch_count"):
            assert after[key] == before[key]
        assert len(after["batches"]) == len(before["batches"]) == 3  # 12 + 4 images, batches of 6
        for b, a in zip(before["batches"], after["batches"]):
            assert a == b and all(type(v) is type(b[k]) for k, v in a.items())
    # During the epoch a callback sees the loss as a 0-dim tensor of the
    # same value; skorch's own loop hands it a float.
    assert all(isinstance(v, float) for v in plain_seen)
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in deferred_seen)
    np.testing.assert_array_equal([float(v) for v in deferred_seen], plain_seen)


def test_losses_are_deferred_only_on_cuda_and_when_quiet():
    def net(device, verbose):
        return AutoencoderNet(torch.nn.Identity, criterion=torch.nn.MSELoss, device=device, verbose=verbose)

    assert net("cuda", 0)._defers_loss_sync()
    assert not net("cuda:0", 1)._defers_loss_sync()  # the progress bar shows each loss
    assert not net("cpu", 0)._defers_loss_sync()


def run_guard(losses, defer, embeddings=None, monkeypatch=None):
    """Feed ``losses`` (one epoch) through a DivergenceGuard; return the error message or None."""
    guard = DivergenceGuard().initialize()
    if defer:
        monkeypatch.setattr(DivergenceGuard, "_defers", staticmethod(lambda values: True))
    net = SimpleNamespace(history=[{}, {}], lr=0.5)  # epoch 2
    embeddings = embeddings or [1.0] * len(losses)
    try:
        guard.on_epoch_begin(net)
        for i, (loss, top) in enumerate(zip(losses, embeddings)):
            mu = torch.full((3, 4), top)
            guard.on_batch_end(net, training=i < 3, loss=torch.tensor(loss), y_pred=(None, mu, None, None))
        guard.on_epoch_end(net)
    except FloatingPointError as error:
        return str(error)
    return None


@pytest.mark.parametrize("bad", [1, 3, 4])  # the first, the last training and the last batch
def test_deferred_divergence_check_names_the_same_batch(bad, monkeypatch):
    losses = [0.1] * 4  # three training batches, one validation batch
    losses[bad - 1] = float("nan")
    immediate = run_guard(losses, defer=False)
    assert f"epoch 2, batch {bad}:" in immediate
    assert ("training" if bad <= 3 else "validation") + " loss is nan" in immediate
    assert run_guard(losses, defer=True, monkeypatch=monkeypatch) == immediate


def test_deferred_divergence_check_of_embeddings(monkeypatch):
    big = run_guard([0.1] * 4, defer=True, embeddings=[1, 1, 1, 1e7], monkeypatch=monkeypatch)
    assert "epoch 2, batch 4: the embeddings reached 1e+07" in big
    nan = run_guard([0.1] * 4, defer=True, embeddings=[1, float("nan"), 1, 1], monkeypatch=monkeypatch)
    assert "epoch 2, batch 2: the embeddings contain non-finite values" in nan
    assert run_guard([0.1] * 4, defer=True, monkeypatch=monkeypatch) is None
