"""The speed options: mixed precision and the channels-last memory format."""

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from skperceptual import PerceptualAETransformer
from skperceptual import _model, _onednn
from skperceptual._model import (
    ConvAutoencoder, _conv, _matmul, _patches_pay, _phase_pays, _relu_folds, _run, _seed_deconv,
)


def _ae(**params):
    defaults = dict(z_dim=4, max_epochs=1, batch_size=8, validation_fraction=None,
                    device="cpu", random_state=0)
    return PerceptualAETransformer(**{**defaults, **params})


@pytest.mark.parametrize("size", [(64, 64), (96, 96), (64, 80)])
def test_seed_deconv_matches_conv_transpose(size):
    # The matmul + fold replacement of the first transposed convolution
    # must compute exactly what the module does.
    ae = ConvAutoencoder(z_dim=4, image_size=size)
    h = torch.randn(3, *ae._seed_shape)
    expected = ae.decoder[0](h)
    torch.testing.assert_close(_seed_deconv(ae.decoder[0], h), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("transposed", [False, True])
def test_matmul_through_onednn_matches_the_product_and_its_gradients(transposed):
    # The seed map's product (_seed_deconv) and its gradients, also for
    # operands that are transposed views, as the channels-last weight is.
    if _onednn.onednn_linear() is None:
        pytest.skip("this torch build has no oneDNN linear operator: _matmul is the plain product")
    torch.manual_seed(0)
    a = torch.randn(7, 5, requires_grad=True)
    b = torch.randn(3, 5).t() if transposed else torch.randn(5, 3)
    b.requires_grad_()
    out = _matmul(a, b)
    assert type(out.grad_fn).__name__ == "_OneDNNMatmulBackward"
    torch.testing.assert_close(out, a @ b)
    grad = torch.randn(7, 3)
    for got, want in zip(torch.autograd.grad(out, [a, b], grad), torch.autograd.grad(a @ b, [a, b], grad)):
        torch.testing.assert_close(got, want)


def _bn_relu_conv(conv):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.BatchNorm2d(conv.in_channels), torch.nn.ReLU(inplace=True), conv)


@pytest.mark.parametrize("conv", [torch.nn.Conv2d(4, 6, 4, stride=2), torch.nn.ConvTranspose2d(4, 3, 6, stride=2)])
def test_relu_folded_into_the_next_convolution_computes_the_same(conv, monkeypatch):
    # The encoder's and decoder's BatchNorm-ReLU-convolution runs: the ReLU
    # inside the convolution's node, its backward in place, bit for bit
    # what the ReLU's own node computes.
    layers = _bn_relu_conv(conv).to(memory_format=torch.channels_last)
    x = torch.randn(5, 4, 11, 11).contiguous(memory_format=torch.channels_last).requires_grad_()
    params = [x, *layers.parameters()]

    def run():
        out = _run(layers, x)
        return out, torch.autograd.grad(out.square().sum(), params)

    assert _relu_folds(layers[1], layers[2], layers[0](x))
    folded = run()
    assert "Relu" not in folded[0].grad_fn.next_functions[0][0].name()  # the BatchNorm's node follows
    monkeypatch.setattr(_model, "_relu_folds", lambda *args: False)
    unfolded = run()
    assert type(unfolded[0].grad_fn.next_functions[0][0]).__name__.startswith("Relu")
    assert torch.equal(folded[0], unfolded[0])
    for got, want in zip(folded[1], unfolded[1]):
        assert torch.equal(got, want)


def test_relu_keeps_its_own_node_where_folding_would_differ():
    conv = torch.nn.Conv2d(4, 6, 3)
    layers = _bn_relu_conv(conv)
    h = layers[0](torch.randn(2, 4, 8, 8))
    assert _relu_folds(layers[1], conv, h)
    assert not _relu_folds(torch.nn.ReLU(), conv, h)  # not in place: h must survive
    leaf = torch.randn(2, 4, 8, 8, requires_grad=True)
    assert not _relu_folds(layers[1], conv, leaf)  # the module raises for an in-place leaf
    with pytest.raises(RuntimeError, match="leaf Variable"):
        _run(torch.nn.Sequential(torch.nn.ReLU(inplace=True), conv), leaf)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not _relu_folds(layers[1], conv, h)  # the convolution computes in bf16
    frozen = torch.nn.Conv2d(4, 6, 3).requires_grad_(False)
    assert not _relu_folds(layers[1], frozen, h)  # a loss network's: _FrozenConvolution
    hooked = torch.nn.ReLU(inplace=True)
    hooked.register_forward_hook(lambda *args: None)
    assert not _relu_folds(hooked, conv, h)


def test_matmul_is_the_plain_product_under_autocast_or_without_onednn(monkeypatch):
    a, b = torch.randn(4, 6, requires_grad=True), torch.randn(6, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert _matmul(a, b).dtype == torch.bfloat16  # autocast's own bf16 product
    assert _matmul(a.double(), b.double()).grad_fn.name() == "MmBackward0"
    monkeypatch.setattr(_onednn, "onednn_linear", lambda: None)  # a torch without the operator
    out = _matmul(a, b)
    assert out.grad_fn.name() == "MmBackward0"
    torch.testing.assert_close(out, a @ b)


@pytest.mark.parametrize("layer", [
    torch.nn.Conv2d(3, 5, 4, stride=2, padding=1),
    torch.nn.ConvTranspose2d(6, 5, 5, stride=2),  # oneDNN's own forward
    torch.nn.ConvTranspose2d(4, 3, 6, stride=2),  # the phase forward
    torch.nn.ConvTranspose2d(4, 2, 6, stride=3),
])
@pytest.mark.parametrize("channels_last", [False, True])
def test_convolution_path_matches_the_module(layer, channels_last):
    # Forward, and all three gradients, as the module computes them.
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    layer = layer.to(memory_format=fmt)
    x = torch.randn(6, layer.in_channels, 9, 9).contiguous(memory_format=fmt).requires_grad_()
    grad = torch.randn_like(layer(x))
    expected = torch.autograd.grad(layer(x), [x, layer.weight, layer.bias], grad)
    out = _conv(layer, x)
    torch.testing.assert_close(out, layer(x))
    for got, want in zip(torch.autograd.grad(out, [x, layer.weight, layer.bias], grad), expected):
        # Sums over the batch in another order: float rounding.
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert out.is_contiguous(memory_format=fmt)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert _conv(layer, x).dtype == layer(x).dtype == torch.bfloat16


@pytest.mark.parametrize("kernel, stride, size", [
    (4, 2, (6, 6)), (4, 2, (5, 7)), (3, 1, (4, 4)), ((3, 2), (2, 1), (5, 3)), (2, 3, (5, 5)),
])
def test_patch_convolution_matches_the_module(kernel, stride, size):
    # Tiny output maps (the encoder's last convolution: 6x6 to 2x2) run as
    # one matrix product of the input's patches, forward and backward.
    torch.manual_seed(0)
    layer = torch.nn.Conv2d(6, 5, kernel, stride=stride).to(memory_format=torch.channels_last)
    x = torch.randn(3, 6, *size).contiguous(memory_format=torch.channels_last).requires_grad_()
    params = (layer.stride, layer.padding, layer.dilation, False, (0, 0), 1)
    assert _patches_pay(x, layer.weight, params)
    out = _conv(layer, x)
    assert out.grad_fn.name() == "_ConvolutionBackward"
    torch.testing.assert_close(out, layer(x))
    assert out.is_contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(out)
    expected = torch.autograd.grad(layer(x), [x, layer.weight, layer.bias], grad)
    for got, want in zip(torch.autograd.grad(out, [x, layer.weight, layer.bias], grad), expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    # The weight gradients alone, for an input that needs none.
    got = torch.autograd.grad(_conv(layer, x.detach()), [layer.weight], grad)[0]
    torch.testing.assert_close(got, expected[1], rtol=1e-4, atol=1e-5)
    _conv(layer, x).relu_()  # the output is no view: it may be changed in place, as the module's
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = _conv(layer, x)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), layer(x), rtol=0.05, atol=0.05)
    for got, want in zip(torch.autograd.grad(low, [x, layer.weight], grad.bfloat16()), expected):
        torch.testing.assert_close(got.float(), want, rtol=0.05, atol=0.1)


def test_patch_convolution_is_used_for_tiny_output_maps_only():
    ae = ConvAutoencoder(z_dim=4, image_size=(64, 64)).to(memory_format=torch.channels_last)
    params = lambda c: (c.stride, c.padding, c.dilation, False, (0, 0), c.groups)  # noqa: E731
    cl = torch.channels_last
    assert _patches_pay(torch.rand(2, 128, 6, 6).contiguous(memory_format=cl), ae.encoder[9].weight,
                        params(ae.encoder[9]))  # 6x6 to 2x2
    assert not _patches_pay(torch.rand(2, 64, 14, 14).contiguous(memory_format=cl), ae.encoder[6].weight,
                            params(ae.encoder[6]))  # 14x14 to 6x6
    assert not _patches_pay(torch.rand(2, 128, 6, 6), ae.encoder[9].weight, params(ae.encoder[9]))  # NCHW
    padded = torch.nn.Conv2d(128, 4, 4, stride=2, padding=1)
    assert not _patches_pay(torch.rand(2, 128, 4, 4).contiguous(memory_format=cl), padded.weight, params(padded))


def test_phase_forward_is_used_for_few_output_channels_only():
    ae = ConvAutoencoder(z_dim=4, image_size=(64, 64))
    params = lambda d: (d.stride, d.padding, d.dilation, True, d.output_padding, d.groups)  # noqa: E731
    assert _phase_pays(ae.decoder[9].weight, params(ae.decoder[9]))  # 32 -> 3
    assert not _phase_pays(ae.decoder[6].weight, params(ae.decoder[6]))  # 64 -> 32


def test_slow_bf16_deconv_runs_in_float32_under_cpu_autocast():
    decoder = ConvAutoencoder(z_dim=4, image_size=(64, 64)).decoder
    deconv = decoder[3]
    h = torch.randn(2, 128, 5, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert deconv(h).dtype == torch.bfloat16
        out = _conv(deconv, h.bfloat16())
        # The decoder's other layers keep bf16.
        assert _conv(decoder[6], torch.randn(2, 64, 13, 13)).dtype == torch.bfloat16
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, deconv(h.bfloat16().float()))
    assert torch.equal(_conv(deconv, h), deconv(h))


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


@pytest.mark.parametrize("name, layer", [("alexnet", 5), ("resnet18", 4)])
@pytest.mark.parametrize("size", [(64, 64), (67, 90)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_space_to_depth_first_conv_matches_plain_network(name, layer, size, channels_last, monkeypatch):
    # PerceptualLoss computes the strided first convolution's input
    # gradient through a space-to-depth image: the plain network's
    # features bit for bit, and its input gradient up to float rounding.
    # (AlexNet's second layer would run spectrally: tested on its own.)
    from skperceptual.perceptual import PerceptualLoss, load_perceptual_net

    monkeypatch.setattr(_model, "spectral_pays", lambda *args: False)
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = load_perceptual_net(name, layer, weights=None).to(memory_format=fmt)
    loss = PerceptualLoss(net)
    x = torch.rand(2, 3, *size).contiguous(memory_format=fmt).requires_grad_()
    expected = torch.sigmoid(net(x))
    (grad_expected,) = torch.autograd.grad(expected.square().sum(), x)
    got = loss.features(x)
    (grad_got,) = torch.autograd.grad(got.square().sum(), x)
    assert torch.equal(got, expected)
    torch.testing.assert_close(grad_got, grad_expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "kernel, stride, padding, size",
    [(11, 4, 2, (64, 64)), (11, 4, 2, (67, 90)), (7, 2, 3, (33, 30)), (3, 2, 0, (17, 16)), (5, 3, 1, (20, 23))],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_frozen_strided_convolution_matches_the_module(kernel, stride, padding, size, channels_last):
    # A frozen strided convolution of a few-channel image runs its plain
    # forward and gets its input gradient through space-to-depth, whatever
    # the kernel, stride, padding and image size (partial blocks, cropped
    # outputs): the module's own values up to float rounding.
    from skperceptual._model import _conv, _space_to_depth_pays

    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    layer = torch.nn.Conv2d(3, 8, kernel, stride, padding).requires_grad_(False).to(memory_format=fmt)
    params = (layer.stride, layer.padding, layer.dilation, False, (0, 0), layer.groups)
    assert _space_to_depth_pays(layer.weight, params)
    x = torch.rand(2, 3, *size).contiguous(memory_format=fmt).requires_grad_()
    out, want = _conv(layer, x), layer(x)
    assert torch.equal(out, want)
    grad = torch.randn_like(out)
    (got,) = torch.autograd.grad(out, x, grad)
    (expected,) = torch.autograd.grad(want, x, grad)
    assert got.shape == x.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_relu_then_max_pool_runs_pool_first_with_the_same_values_and_gradients():
    # _run computes AlexNet's conv-ReLU-pool as conv-pool-ReLU: the same
    # output and input gradient bit for bit, ties and all-negative
    # windows included (rounded inputs make many).
    from skperceptual._model import _run

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(inplace=True), torch.nn.MaxPool2d(3, 2), torch.nn.Conv2d(8, 4, 3)
    ).requires_grad_(False)
    x = (torch.randn(2, 3, 20, 20) * 2).round().requires_grad_()
    got, want = _run(net, x), net(x)
    assert torch.equal(got, want)
    grad = torch.randn_like(got)
    assert torch.equal(torch.autograd.grad(got, x, grad)[0], torch.autograd.grad(want, x, grad)[0])
    # A hook on the ReLU must see its own input: the stock order then.
    seen = []
    net[1].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape))
    _run(net, x)
    assert seen == [(2, 8, 18, 18)]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mse_loss_matches_torch_and_keeps_the_gradient_channels_last(channels_last, dtype):
    # F.mse_loss's gradient comes back NCHW even for channels-last inputs,
    # which slows every elementwise backward after it; ours keeps the
    # input's layout with the same values, under autocast too.
    from skperceptual._mse import mse_loss

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
    from skperceptual import _net

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert _net.resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
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
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    ae = _ae(loss="pixel", loss_precision="auto").fit(images)
    assert (ae.net_.precision_, ae.net_.loss_precision_) == ("fp32", "bf16")


@pytest.mark.parametrize("channels", [1, 3])
def test_space_to_depth_layouts_agree_and_invert(channels):
    from skperceptual._layout import depth_to_space, space_to_depth

    x = torch.rand(2, channels, 8, 12)
    cl = x.contiguous(memory_format=torch.channels_last)
    out = space_to_depth(x, 4)
    assert out.shape == (2, 16 * channels, 2, 3)
    # Channel (dy * s + dx) * C + c holds pixel (4 * i + dy, 4 * j + dx) of channel c.
    assert torch.equal(out[:, (1 * 4 + 2) * channels], x[:, 0, 1::4, 2::4])
    out_cl = space_to_depth(cl, 4)
    assert torch.equal(out_cl, out)
    assert channels == 1 or out_cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(depth_to_space(out, 4), x)
    back = depth_to_space(out_cl, 4)
    assert torch.equal(back, x)
    assert channels == 1 or back.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("size", [(64, 64), (96, 80)])
def test_autoencoder_gradients_match_the_plain_module_graph(size):
    # encode()/decode() call the convolutions through _conv; the same module
    # run layer by layer (stock calls) gives the same loss and gradients.
    torch.manual_seed(0)
    ae = ConvAutoencoder(z_dim=4, image_size=size).to(memory_format=torch.channels_last)
    x = torch.rand(3, 3, *size).contiguous(memory_format=torch.channels_last)

    def plain():
        mu = ae.fc_mu(ae.encoder(x))
        h = _seed_deconv(ae.decoder[0], ae.decoder_input(mu).view(-1, *ae._seed_shape))
        return ae.decoder[1:](h.contiguous(memory_format=torch.channels_last))

    names = [n for n, _ in ae.named_parameters() if not n.startswith("fc_logvar")]
    params = [p for n, p in ae.named_parameters() if not n.startswith("fc_logvar")]
    got = torch.autograd.grad((ae(x)[0] - x).square().mean(), params)
    want = torch.autograd.grad((plain() - x).square().mean(), params)
    for name, g, w in zip(names, got, want):
        # Biases that BatchNorm cancels have (float-noise) zero gradients.
        atol = 1e-6 if name.endswith("bias") else 1e-7
        torch.testing.assert_close(g, w, rtol=1e-4, atol=atol, msg=name)


def test_hooked_or_same_padded_convolutions_keep_the_module_call():
    calls = []
    conv = torch.nn.Conv2d(3, 4, 3, padding="same")
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(_conv(conv, x), conv(x))
    conv = torch.nn.ConvTranspose2d(4, 3, 6, stride=2)
    conv.register_forward_hook(lambda module, args, out: calls.append(out.shape))
    _conv(conv, torch.rand(2, 4, 5, 5))
    assert calls == [torch.Size([2, 3, 14, 14])]


@pytest.mark.parametrize("layer", [
    torch.nn.Conv2d(3, 5, 4, stride=2, padding=1),
    torch.nn.Conv2d(4, 6, 3, stride=3, padding=2, dilation=2, groups=2),  # output padding 2
    torch.nn.Conv2d(48, 8, 3),  # wide and stride 1: the plain transposed convolution
])
@pytest.mark.parametrize("channels_last", [False, True])
def test_frozen_convolution_keeps_no_input_and_gives_the_same_input_gradient(layer, channels_last):
    # A loss network's convolutions never need a weight gradient, so the
    # input is not kept for the backward pass: only the weight is.
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    layer = layer.requires_grad_(False).to(memory_format=fmt)
    x = torch.randn(6, layer.in_channels, 10, 11).contiguous(memory_format=fmt).requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = _conv(layer, x)
    assert [t.shape for t in saved] == [layer.weight.shape]
    grad = torch.randn_like(out)
    (expected,) = torch.autograd.grad(layer(x), x, grad)
    (got,) = torch.autograd.grad(out, x, grad)
    assert got.shape == x.shape
    torch.testing.assert_close(got, expected)


def test_hooked_first_layer_of_the_loss_network_is_called():
    from skperceptual.perceptual import PerceptualLoss, load_perceptual_net

    net = load_perceptual_net("alexnet", 5, weights=None)
    calls = []
    net[0].register_forward_hook(lambda module, args, out: calls.append(out.shape))
    PerceptualLoss(net).features(torch.rand(2, 3, 64, 64))
    assert calls == [torch.Size([2, 64, 15, 15])]


def test_frozen_convolution_bias_and_bf16_gradients():
    # A trainable bias on a frozen weight still gets its gradient, and under
    # bf16 autocast the input gradient is the module's own.
    layer = torch.nn.Conv2d(3, 4, 3, stride=2).requires_grad_(False)
    layer.bias.requires_grad_(True)
    x = torch.randn(5, 3, 9, 9, requires_grad=True)
    for autocast in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out, want = _conv(layer, x), layer(x)
        grad = torch.randn_like(out)
        got = torch.autograd.grad(out, [x, layer.bias], grad)
        expected = torch.autograd.grad(want, [x, layer.bias], grad)
        for g, w in zip(got, expected):
            assert g.dtype == w.dtype
            torch.testing.assert_close(g, w, rtol=1e-2 if autocast else 1e-5, atol=1e-2 if autocast else 1e-5)


def test_perceptual_loss_supports_double_backward_and_torch_func():
    # The loss network's frozen convolutions keep the loss twice
    # differentiable (gradient penalties) and usable under torch.func.
    from skperceptual.perceptual import PerceptualLoss, load_perceptual_net

    torch.manual_seed(0)
    loss = PerceptualLoss(load_perceptual_net(weights=None))
    x = torch.rand(2, 3, 64, 64)
    x_hat = torch.rand(2, 3, 64, 64, requires_grad=True)
    (grad,) = torch.autograd.grad(loss(x_hat, x), x_hat, create_graph=True)
    (second,) = torch.autograd.grad(grad.square().sum(), x_hat)
    assert second.abs().sum() > 0
    torch.testing.assert_close(torch.func.grad(lambda a: loss(a, x))(x_hat.detach()), grad.detach())
    # jacrev vmaps the backward: the first layer's space-to-depth input
    # gradient and the MSE's layout check must both work under vmap.
    for fmt in (torch.contiguous_format, torch.channels_last):
        a = x_hat.detach().contiguous(memory_format=fmt)
        jacobian = torch.func.jacrev(lambda b: loss(b, x.contiguous(memory_format=fmt)))(a)
        torch.testing.assert_close(jacobian, grad.detach())


def test_frozen_convolution_weight_gradient_when_asked():
    # torch.func over the weights of a frozen layer: the weight is
    # differentiated after all, so its input must have been kept.
    from skperceptual._model import _FrozenConvolution

    layer = torch.nn.Conv2d(3, 4, 3, stride=2).requires_grad_(False)
    x = torch.randn(2, 3, 9, 9)
    params = (layer.stride, layer.padding, layer.dilation, False, (0, 0), layer.groups)

    def ours(weight, bias):
        return _FrozenConvolution.apply(x, weight, bias, params).square().sum()

    def module(weight, bias):
        return torch.func.functional_call(layer, {"weight": weight, "bias": bias}, (x,)).square().sum()

    got = torch.func.grad(ours, argnums=(0, 1))(layer.weight, layer.bias)
    want = torch.func.grad(module, argnums=(0, 1))(layer.weight, layer.bias)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


def test_backward_hooks_subclasses_and_custom_sequentials_keep_the_module_call():
    from skperceptual._model import _run

    fired = []
    conv = torch.nn.Conv2d(3, 4, 3).requires_grad_(False)
    conv.register_full_backward_hook(lambda module, grad_in, grad_out: fired.append(1))
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    _run(torch.nn.Sequential(conv), x).sum().backward()
    assert fired == [1]

    class Doubled(torch.nn.Conv2d):
        def forward(self, h):
            return 2 * super().forward(h)

    doubled = Doubled(3, 4, 3)
    torch.testing.assert_close(_run(torch.nn.Sequential(doubled), x), doubled(x))

    class Named(torch.nn.Sequential):
        def __init__(self):
            super().__init__(torch.nn.Conv2d(3, 4, 3))

        def forward(self, h):
            return super().forward(h) + 1

    named = Named()
    torch.testing.assert_close(_run(named, x), named(x))
