"""The CUDA path on a real GPU; skipped where there is none, as in CI.

``tests/test_host_syncs.py`` forces the deferred paths on the CPU. Here they
run with real CUDA tensors, events, pinned batches and non-blocking copies,
and a CUDA fit is compared with the same fit on the CPU.
"""

import pickle

import numpy as np
import pytest
import torch

from skperceptual import PerceptualAETransformer
from skperceptual.training.data import PrefetchingLoader
from skperceptual.training.net import as_dataset

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

QUICK = dict(z_dim=4, max_epochs=2, batch_size=6, perceptual_weights=None,
             validation_fraction=0.25, random_state=0)


@pytest.fixture
def exact_fp32(monkeypatch):
    """cuDNN in plain fp32 (no TF32) and with deterministic algorithms."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)


def relative_error(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b))


@pytest.mark.parametrize("loss", ["pixel", "perceptual"])
def test_cuda_fit_trains_what_the_cpu_fit_trains(images, loss, exact_fp32):
    # Same seed, same initial weights and batches: only the kernels differ,
    # so losses and embeddings agree up to float32 rounding.
    cpu = PerceptualAETransformer(**QUICK, loss=loss, device="cpu").fit(images)
    gpu = PerceptualAETransformer(**QUICK, loss=loss, device="cuda").fit(images)
    for key in ("train_loss", "valid_loss"):
        on_gpu = [row[key] for row in gpu.history_]
        assert all(isinstance(value, float) for value in on_gpu), on_gpu
        assert relative_error(on_gpu, [row[key] for row in cpu.history_]) < 1e-4, key
    # Four Adam steps amplify the rounding differences in the weights: 1.1e-3
    # was measured for the embeddings on an H100.
    Z = gpu.transform(images)
    assert Z.dtype == np.float32 and Z.shape == (len(images), 4)
    assert relative_error(Z, cpu.transform(images)) < 5e-3
    decoded = gpu.inverse_transform(Z)
    assert decoded.shape == images.shape and 0 <= decoded.min() and decoded.max() <= 1
    assert relative_error(decoded, cpu.inverse_transform(Z)) < 5e-3


def test_deferred_losses_equal_skorchs_on_cuda(images, exact_fp32, capsys):
    # A verbose fit runs skorch's own loop (loss.item() per batch); a quiet
    # one defers the losses on the device and converts them per pass.
    quiet = PerceptualAETransformer(**QUICK, device="cuda").fit(images)
    assert quiet.net_._defers_loss_sync()
    assert isinstance(quiet.net_.get_iterator(as_dataset(images)), PrefetchingLoader)
    loud = PerceptualAETransformer(**QUICK, device="cuda", verbose=1).fit(images)
    assert not loud.net_._defers_loss_sync()
    for q, v in zip(quiet.net_.history, loud.net_.history):
        for key in ("train_loss", "valid_loss"):
            assert isinstance(q[key], float) and q[key] == pytest.approx(v[key], rel=1e-6)
        assert [b.keys() for b in q["batches"]] == [b.keys() for b in v["batches"]]
        for qb, vb in zip(q["batches"], v["batches"]):
            for key, value in qb.items():
                assert type(value) is type(vb[key]) and value == pytest.approx(vb[key], rel=1e-6)
    # The history holds no device tensor and no CUDA event: it pickles.
    again = pickle.loads(pickle.dumps(quiet))
    np.testing.assert_array_equal(again.transform(images), quiet.transform(images))


def test_divergence_is_caught_on_cuda_and_names_the_batch(images):
    # lr=1e30 makes the second batch's loss NaN. On CUDA the guard reads it
    # one batch later, from a pinned copy, and still names batch 2.
    est = PerceptualAETransformer(**{**QUICK, "validation_fraction": None, "batch_size": 4,
                                     "lr": 1e30}, device="cuda")
    with pytest.raises(FloatingPointError, match="epoch 1, batch 2: the training loss is nan"):
        est.fit(images)
    assert not hasattr(est, "net_")


@pytest.mark.parametrize("precision", ["auto", "bf16", "fp16"])
def test_mixed_precision_on_cuda(images, precision):
    ae = PerceptualAETransformer(**QUICK, loss="perceptual", precision=precision, device="cuda").fit(images)
    # "auto" is fp32 on CUDA: bf16 did not train these networks faster there.
    assert ae.net_.precision_ == ("fp32" if precision == "auto" else precision)
    assert (ae.net_.grad_scaler_ is not None) == (precision == "fp16")
    assert np.isfinite([row["train_loss"] for row in ae.history_]).all()
    Z = ae.transform(images)
    assert Z.dtype == np.float32 and np.isfinite(Z).all()


@pytest.mark.parametrize("precision, loss_precision", [("fp32", "fp16"), ("fp16", "fp32"), ("fp32", "bf16")])
def test_loss_precision_on_cuda(images, precision, loss_precision):
    # Loss scaling whenever either half computes in fp16.
    ae = PerceptualAETransformer(**QUICK, loss="perceptual", precision=precision,
                                 loss_precision=loss_precision, device="cuda").fit(images)
    assert (ae.net_.grad_scaler_ is not None) == ("fp16" in (precision, loss_precision))
    assert np.isfinite([row["train_loss"] for row in ae.history_]).all()
    assert np.isfinite(ae.transform(images)).all()


def test_fit_decoder_on_cuda_keeps_the_embedding(images, exact_fp32):
    ae = PerceptualAETransformer(**QUICK, loss="perceptual", device="cuda").fit(images)
    Z = ae.transform(images)
    ae.fit_decoder(images, max_epochs=2)
    np.testing.assert_array_equal(ae.transform(images), Z)
    assert all(isinstance(row["train_loss"], float) for row in ae.decoder_history_)
