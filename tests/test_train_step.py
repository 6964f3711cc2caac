"""AutoencoderNet.train_step: fp16 loss scaling through skorch's public extension point."""

import copy

import pytest
import torch

from skperceptual import PerceptualAETransformer
from skperceptual.training.net import as_dataset


def test_grad_scaler_step_matches_plain_step(images):
    # GradScaler is only created for fp16 on CUDA; a CPU scaler exercises
    # the same train_step here. Scaling by a power of two and unscaling is
    # exact, so both nets must take the very same steps.
    if not hasattr(torch.amp, "GradScaler"):
        pytest.skip("torch.amp.GradScaler not available")
    ae = PerceptualAETransformer(z_dim=4, max_epochs=1, batch_size=8, loss="pixel", perceptual_weights=None,
                                 validation_fraction=None, random_state=0).fit(images)
    plain, scaled = ae.net_, copy.deepcopy(ae.net_)
    scaled.grad_scaler_ = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    seen, notify = [], scaled.notify

    def counting_notify(name, **kwargs):
        seen.append(name)
        return notify(name, **kwargs)

    scaled.notify = counting_notify
    for net in (plain, scaled):
        with torch.random.fork_rng():
            torch.manual_seed(0)
            net.partial_fit(as_dataset(images), epochs=1)
    for p, q in zip(plain.module_.parameters(), scaled.module_.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert seen.count("on_grad_computed") == 2  # 16 images, batches of 8
    assert scaled.history[-1]["train_loss"] == pytest.approx(plain.history[-1]["train_loss"], rel=1e-5)
