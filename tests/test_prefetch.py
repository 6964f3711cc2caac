"""Batches prepared in a background thread (on CUDA): same batches, same order, same fit.

There is no GPU in CI, so the prefetching loader is forced on the CPU, where
a fit must come out bit for bit as without it.
"""

import threading
import time

import numpy as np
import pytest
import torch

import skperceptual.estimators.perceptual_ae
from skperceptual import PerceptualAETransformer
from skperceptual.training.data import ImageDataset, PrefetchingLoader, batch_loader


def test_prefetching_loader_yields_the_loaders_batches_in_order():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 2, 2).contiguous()
    plain = batch_loader(ImageDataset(images), 3)
    ahead = batch_loader(ImageDataset(images), 3, prefetch=True)
    assert isinstance(ahead, PrefetchingLoader) and len(ahead) == len(plain) == 4
    for _ in range(2):  # a loader is iterated once per epoch
        got = [x[:, 0, 0, 0].tolist() for x, _ in ahead]
        assert got == [x[:, 0, 0, 0].tolist() for x, _ in plain] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


class Failing:
    def __len__(self):
        return 3

    def __iter__(self):
        yield 1
        raise OSError("disk gone")


def test_prefetching_loader_raises_the_loaders_error_and_can_stop_early():
    batches = iter(PrefetchingLoader(Failing()))
    assert next(batches) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(batches)
    # A pass abandoned after one batch (an exception in the training step)
    # shuts its thread down, without preparing the batches queued behind.
    prepared = []
    early = iter(PrefetchingLoader(SlowRange(100, prepared)))
    assert next(early) == 0
    early.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("skperceptual-batches")]
    assert len(prepared) <= 2  # the batch handed out and the one being prepared
    assert list(PrefetchingLoader(range(3), depth=5)) == [0, 1, 2]
    with pytest.raises(ValueError, match="depth=0: pass the number of batches"):
        PrefetchingLoader(range(3), depth=0)


class SlowRange:
    """range(n) that takes 50 ms per item and records what it produced."""

    def __init__(self, n, produced):
        self.n, self.produced = n, produced

    def __len__(self):
        return self.n

    def __iter__(self):
        for i in range(self.n):
            time.sleep(0.05)
            self.produced.append(i)
            yield i


def test_a_prefetching_fit_is_bit_identical(images, monkeypatch):
    params = dict(z_dim=4, max_epochs=2, batch_size=6, loss="pixel", perceptual_weights=None,
                  validation_fraction=0.25, random_state=0, device="cpu")
    plain = PerceptualAETransformer(**params).fit(images)
    # Only CUDA fits prefetch: on the CPU a step takes hundreds of
    # milliseconds, and its few of gathering are not worth a thread.
    assert not isinstance(plain.net_.get_iterator(ImageDataset(torch.from_numpy(images))), PrefetchingLoader)
    # The shuffling draws from torch's global generator in the thread: the
    # same draw, so the same batches.
    monkeypatch.setattr(skperceptual.estimators.perceptual_ae, "batch_loader",
                        lambda *args, prefetch=False, **kwargs: batch_loader(*args, prefetch=True, **kwargs))
    ahead = PerceptualAETransformer(**params).fit(images)
    assert isinstance(ahead.net_.get_iterator(ImageDataset(torch.from_numpy(images))), PrefetchingLoader)
    assert [r["train_loss"] for r in ahead.history_] == [r["train_loss"] for r in plain.history_]
    np.testing.assert_array_equal(ahead.transform(images), plain.transform(images))
