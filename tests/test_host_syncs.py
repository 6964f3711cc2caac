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
from skperceptual.training.callbacks import DivergenceGuard
from skperceptual.training.net import AutoencoderNet

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


class InterruptAt(Callback):
    """Presses Ctrl-C after the ``at``-th training batch."""

    def __init__(self, at):
        self.at = at

    def initialize(self):
        self.batches_ = 0
        return self

    def on_batch_end(self, net, training=None, **kwargs):
        self.batches_ += training
        if self.batches_ == self.at:
            self.net_ = net  # the estimator re-raises and keeps no net: look at it here
            raise KeyboardInterrupt


def test_interrupted_deferred_pass_leaves_floats(images, monkeypatch):
    # A pass cut short must not leave device tensors in the history, or it
    # would not pickle or serialise.
    monkeypatch.setattr(AutoencoderNet, "_defers_loss_sync", lambda self: True)
    stop = InterruptAt(2)
    with pytest.raises(KeyboardInterrupt):
        PerceptualAETransformer(**QUICK, callbacks=[("stop", stop)]).fit(images)
    rows = stop.net_.history[-1]["batches"]
    assert len(rows) == 2 and all(type(row["train_loss"]) is float for row in rows)


def test_losses_are_deferred_only_on_cuda_and_when_quiet():
    def net(device, verbose):
        return AutoencoderNet(torch.nn.Identity, criterion=torch.nn.MSELoss, device=device, verbose=verbose)

    assert net("cuda", 0)._defers_loss_sync()
    assert not net("cuda:0", 1)._defers_loss_sync()  # the progress bar shows each loss
    assert not net("cpu", 0)._defers_loss_sync()
    assert not net(None, 0)._defers_loss_sync()  # skorch's "leave the module where it is"


def run_guard(losses, defer, monkeypatch, embeddings=None, end="on_epoch_end"):
    """Feed one epoch of ``losses`` through a DivergenceGuard.

    Returns the error message and the call that raised it: a batch's number
    or ``end``; ``(None, None)`` if nothing raised.
    """
    guard = DivergenceGuard().initialize()
    monkeypatch.setattr(DivergenceGuard, "_defers", staticmethod(lambda values: defer))
    net = SimpleNamespace(history=[{}, {}], lr=0.5)  # epoch 2
    embeddings = embeddings or [1.0] * len(losses)
    guard.on_epoch_begin(net)
    for i, (loss, top) in enumerate(zip(losses, embeddings)):
        mu = torch.full((3, 4), top)
        try:
            guard.on_batch_end(net, training=i < 3, loss=torch.tensor(loss), y_pred=(None, mu, None, None))
        except FloatingPointError as error:
            return str(error), i + 1
    try:
        getattr(guard, end)(net)
    except FloatingPointError as error:
        return str(error), end
    assert guard.pending_ is None  # nothing left to check, nothing unpicklable
    return None, None


@pytest.mark.parametrize("bad", [1, 3, 4])  # the first, the last training and the last batch
def test_deferred_divergence_check_names_the_same_batch(bad, monkeypatch):
    losses = [0.1] * 4  # three training batches, one validation batch
    losses[bad - 1] = float("nan")
    immediate, raised_at = run_guard(losses, False, monkeypatch)
    assert raised_at == bad and f"epoch 2, batch {bad}:" in immediate
    assert ("training" if bad <= 3 else "validation") + " loss is nan" in immediate
    deferred, raised_at = run_guard(losses, True, monkeypatch)
    assert deferred == immediate
    assert raised_at == (bad + 1 if bad < 4 else "on_epoch_end")  # one batch later


def test_deferred_divergence_check_of_embeddings(monkeypatch):
    big, at = run_guard([0.1] * 4, True, monkeypatch, embeddings=[1, 1, 1, 1e7], end="on_train_end")
    assert "epoch 2, batch 4: the embeddings reached 1e+07" in big and at == "on_train_end"
    nan, at = run_guard([0.1] * 4, True, monkeypatch, embeddings=[1, float("nan"), 1, 1])
    assert "epoch 2, batch 2: the embeddings contain non-finite values" in nan and at == 3
    assert run_guard([0.1] * 4, True, monkeypatch) == (None, None)


def test_deferred_guard_stops_a_diverging_fit(images, monkeypatch):
    # One Adam step of lr=1e30 makes the second batch's loss NaN; checked a
    # batch later, the error still names it.
    monkeypatch.setattr(DivergenceGuard, "_defers", staticmethod(lambda values: True))
    est = PerceptualAETransformer(**{**QUICK, "validation_fraction": None, "batch_size": 4, "lr": 1e30})
    with pytest.raises(FloatingPointError, match="epoch 1, batch 2: the training loss is nan"):
        est.fit(images)
