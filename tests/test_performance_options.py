"""The speed options: mixed precision and the channels-last memory format."""

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from skperceptual import PerceptualAETransformer


def _ae(**params):
    defaults = dict(z_dim=4, max_epochs=1, batch_size=8, validation_fraction=None,
                    device="cpu", random_state=0)
    return PerceptualAETransformer(**{**defaults, **params})


def test_bf16_precision_trains_with_finite_loss(images, alexnet_weights):
    if not hasattr(torch, "autocast"):
        pytest.skip("no autocast in this torch")
    ae = _ae(precision="bf16", loss="perceptual", perceptual_weights=alexnet_weights).fit(images)
    assert np.isfinite(ae.history_[-1]["train_loss"])
    Z = ae.transform(images)
    assert Z.shape == (16, 4) and Z.dtype == np.float32 and np.isfinite(Z).all()
    recon = ae.inverse_transform(Z)
    assert recon.shape == images.shape and recon.dtype == np.float32
    assert np.isfinite(ae.score(images))


def test_fp16_on_cpu_uses_no_grad_scaler(images):
    # GradScaler is for CUDA; on CPU fp16 autocast runs unscaled.
    ae = _ae(precision="fp16", loss="pixel").fit(images)
    assert ae.net_.grad_scaler_ is None
    assert ae.transform(images).shape == (16, 4)


@pytest.mark.parametrize("loss", ["pixel", "perceptual"])
def test_channels_last_matches_contiguous(images, loss):
    params = dict(loss=loss, perceptual_weights=None)
    a = _ae(channels_last=True, **params).fit(images)
    b = _ae(channels_last=False, **params).fit(images)
    assert a.net_.module_.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not b.net_.module_.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
    Za, Zb = a.transform(images), b.transform(images)
    assert Za.shape == Zb.shape == (16, 4)
    # Same seed, same maths: only the float summation order differs, which
    # two Adam steps amplify a little.
    np.testing.assert_allclose(Za, Zb, rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(a.history_[0]["train_loss"], b.history_[0]["train_loss"], rtol=1e-4)
    assert a.inverse_transform(Za).shape == images.shape


@pytest.mark.parametrize("params", [{"precision": "fp64"}, {"precision": None}, {"channels_last": "yes"},
                                    {"loss_precision": "float16"}])
def test_invalid_performance_options_raise(images, params):
    with pytest.raises(InvalidParameterError):
        _ae(**params).fit(images)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mse_loss_matches_torch_and_keeps_the_gradient_channels_last(channels_last, dtype):
    # F.mse_loss's gradient comes back NCHW even for channels-last inputs,
    # which slows every elementwise backward after it; ours keeps the
    # input's layout with the same values, under autocast too.
    from skperceptual.losses.mse import mse_loss

    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    a = torch.rand(4, 3, 8, 8, dtype=dtype).contiguous(memory_format=fmt).requires_grad_()
    b = torch.rand(4, 3, 8, 8, dtype=dtype).contiguous(memory_format=fmt)
    for autocast in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            ours, stock = mse_loss(a, b), torch.nn.functional.mse_loss(a, b)
        assert ours.dtype == stock.dtype
        assert torch.equal(ours, stock)
        (got,) = torch.autograd.grad(ours, a, create_graph=True)
        (want,) = torch.autograd.grad(stock, a, create_graph=True)
        assert got.dtype == dtype and torch.equal(got, want)
        assert got.is_contiguous(memory_format=fmt)
        # Twice differentiable, as F.mse_loss is.
        (second,) = torch.autograd.grad(got.sum(), a)
        torch.testing.assert_close(second, torch.autograd.grad(want.sum(), a)[0])
    # Under vmap, over any dimension, like F.mse_loss.
    batched = torch.stack([a.detach(), b], dim=2)
    torch.testing.assert_close(
        torch.func.vmap(mse_loss, in_dims=2)(batched, batched.flip(2)),
        torch.func.vmap(torch.nn.functional.mse_loss, in_dims=2)(batched, batched.flip(2)),
    )


def test_adam_is_fused_unless_the_user_chose(images):
    ae = _ae(loss="pixel").fit(images)
    assert ae.net_.optimizer_.defaults["fused"] is True
    # An explicit implementation choice is left alone.
    net = ae.net_
    named = list(net.module_.named_parameters())
    net.optimizer__foreach = True
    _, kwargs = net.get_params_for_optimizer("optimizer", named)
    assert kwargs["foreach"] is True and "fused" not in kwargs


def test_auto_precision_picks_bf16_only_with_native_support(images, monkeypatch):
    from skperceptual.training import net as _net

    monkeypatch.setattr(_net, "cpu_has_native_bf16", lambda: True)
    assert _net.resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(_net, "cpu_has_native_bf16", lambda: False)
    assert _net.resolve_precision("auto", "cpu") == "fp32"
    assert _net.resolve_precision("bf16", "cpu") == "bf16"
    # Without native bf16 the fit is exactly the fp32 fit.
    a = _ae(precision="auto", loss="pixel").fit(images)
    b = _ae(precision="fp32", loss="pixel").fit(images)
    assert a.net_.precision_ == "fp32"
    np.testing.assert_array_equal(a.transform(images), b.transform(images))


def _conv_output_dtypes(ae, images):
    """The dtypes the autoencoder's first convolution and the loss network's convolutions compute in."""
    seen = {}

    def watch(name):
        def hook(module, inputs, output):
            seen[name] = output.dtype  # returns None: the output is left alone
        return hook

    ae.fit(images[:8])  # builds net_; the hooks then watch a second fit's steps
    net = ae.net_
    hooks = [net.module_.encoder[0].register_forward_hook(watch("ae"))]
    for i in (0, 3):  # AlexNet's two convolutions
        hooks.append(net.criterion_.net[i].register_forward_hook(watch(f"conv{i}")))
    net.partial_fit(images)
    for hook in hooks:
        hook.remove()
    return seen


@pytest.mark.parametrize("precision, loss_precision", [("fp32", "bf16"), ("bf16", "fp32")])
def test_loss_precision_sets_the_loss_networks_arithmetic_alone(images, precision, loss_precision):
    ae = _ae(loss="perceptual", perceptual_weights=None, precision=precision, loss_precision=loss_precision)
    seen = _conv_output_dtypes(ae, images)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}
    assert seen == {"ae": dtype[precision], "conv0": dtype[loss_precision], "conv3": dtype[loss_precision]}
    assert (ae.net_.precision_, ae.net_.loss_precision_) == (precision, loss_precision)
    assert np.isfinite(ae.history_[-1]["train_loss"])
    assert ae.transform(images).dtype == np.float32


def test_loss_precision_none_follows_precision(images):
    seen = _conv_output_dtypes(_ae(loss="perceptual", perceptual_weights=None, precision="bf16"), images)
    assert set(seen.values()) == {torch.bfloat16}
    # Naming the same precision twice is the same fit, bit for bit.
    for precision in ("fp32", "bf16"):
        a = _ae(loss="perceptual", perceptual_weights=None, precision=precision).fit(images)
        b = _ae(loss="perceptual", perceptual_weights=None, precision=precision,
                loss_precision=precision).fit(images)
        assert a.net_.loss_precision_ == precision
        np.testing.assert_array_equal(a.transform(images), b.transform(images))
        assert a.score(images) == b.score(images)


def test_bf16_loss_network_changes_the_loss_by_rounding_only(images):
    # The float32 autoencoder trained through a bf16 loss network: the
    # same loss up to bf16 rounding of the features, not the same bits.
    a = _ae(loss="perceptual", perceptual_weights=None, max_epochs=2).fit(images)
    b = _ae(loss="perceptual", perceptual_weights=None, max_epochs=2, loss_precision="bf16").fit(images)
    for row_a, row_b in zip(a.history_, b.history_):
        assert row_a["train_loss"] != row_b["train_loss"]
        np.testing.assert_allclose(row_b["train_loss"], row_a["train_loss"], rtol=1e-2)
    assert a.score(images) == pytest.approx(b.score(images), rel=2e-2)


@pytest.mark.parametrize("params", [
    dict(loss="feature_prediction", perceptual_layer=2),
    dict(loss="perceptual", perceptual_layer=["relu1", "relu2"], variational=True),
])
def test_bf16_loss_network_for_the_other_losses(images, params):
    a = _ae(perceptual_weights=None, **params).fit(images)
    b = _ae(perceptual_weights=None, loss_precision="bf16", **params).fit(images)
    assert b.net_.loss_precision_ == "bf16"
    assert b.history_[0]["train_loss"] != a.history_[0]["train_loss"]
    np.testing.assert_allclose(b.history_[0]["train_loss"], a.history_[0]["train_loss"], rtol=2e-2)
    assert np.isfinite(b.transform(images)).all()


def test_models_pickled_before_loss_precision_load_and_score(images):
    import pickle

    ae = _ae(loss="perceptual", perceptual_weights=None, precision="bf16").fit(images)
    expected = ae.score(images)
    # What an estimator pickled by an earlier release lacks.
    del ae.loss_precision, ae.net_.loss_precision, ae.net_.loss_precision_
    old = pickle.loads(pickle.dumps(ae))
    assert old.get_params()["loss_precision"] is None
    assert old.net_.loss_precision_ == "bf16"
    assert old.score(images) == expected


def test_mixed_precisions_score_in_the_loss_precision(images):
    # score() computes the criterion in loss_precision_ too.
    ae = _ae(loss="perceptual", perceptual_weights=None, precision="bf16", loss_precision="fp32").fit(images)
    mixed = ae.score(images)
    ae.net_.loss_precision_ = "bf16"
    assert np.isfinite(mixed) and mixed != ae.score(images)
    assert mixed == pytest.approx(ae.score(images), rel=2e-2)


def test_auto_loss_precision_follows_the_cpus_bf16_support(images, monkeypatch):
    from skperceptual.training import net as _net

    monkeypatch.setattr(_net, "cpu_has_native_bf16", lambda: True)
    ae = _ae(loss="pixel", loss_precision="auto").fit(images)
    assert (ae.net_.precision_, ae.net_.loss_precision_) == ("fp32", "bf16")


def test_native_bf16_is_read_from_the_cpu_flags(monkeypatch, tmp_path):
    import builtins

    from skperceptual.training import net as _net

    real_open = builtins.open
    for flags, native in (("fpu sse2 avx512f avx512_bf16", True), ("fpu amx_bf16 amx_tile", True),
                          ("fpu sse2 avx2 avx512f", False)):
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(builtins, "open", lambda path, *a, **k: real_open(cpuinfo if path == "/proc/cpuinfo" else path, *a, **k))
        _net.cpu_has_native_bf16.cache_clear()
        assert _net.cpu_has_native_bf16() is native, flags
    monkeypatch.setattr(builtins, "open", real_open)
    _net.cpu_has_native_bf16.cache_clear()


def test_perceptual_loss_supports_double_backward_and_torch_func():
    # The loss network's frozen convolutions keep the loss twice
    # differentiable (gradient penalties) and usable under torch.func.
    from skperceptual.losses.perceptual import PerceptualLoss, load_perceptual_net

    torch.manual_seed(0)
    loss = PerceptualLoss(load_perceptual_net(weights=None))
    x = torch.rand(2, 3, 64, 64)
    x_hat = torch.rand(2, 3, 64, 64, requires_grad=True)
    (grad,) = torch.autograd.grad(loss(x_hat, x), x_hat, create_graph=True)
    (second,) = torch.autograd.grad(grad.square().sum(), x_hat)
    assert second.abs().sum() > 0
    torch.testing.assert_close(torch.func.grad(lambda a: loss(a, x))(x_hat.detach()), grad.detach())
    # jacrev vmaps the backward: the MSE's layout check must work under vmap.
    for fmt in (torch.contiguous_format, torch.channels_last):
        a = x_hat.detach().contiguous(memory_format=fmt)
        jacobian = torch.func.jacrev(lambda b: loss(b, x.contiguous(memory_format=fmt)))(a)
        torch.testing.assert_close(jacobian, grad.detach())


