"""The loss network's spectral convolution (``_spectral``): values, gradients, and when it runs."""

import pytest
import torch
from torch.nn import functional as F

from skperceptual import _model, _onednn, _spectral
from skperceptual._model import _conv
from skperceptual._mse import mse_loss
from skperceptual._spectral import spectral_convolution, spectral_input_gradient, spectral_pays

needs_onednn = pytest.mark.skipif(
    _onednn.onednn_linear() is None, reason="this torch build has no oneDNN linear operator: no spectral path"
)


def _pixel_major(t):
    """Whether ``t``'s memory is ordered ``(H, W, C, N)``."""
    return t.permute(2, 3, 1, 0).is_contiguous()


@pytest.mark.parametrize("n, c, d, size, kernel, padding", [
    (3, 4, 5, (7, 7), (5, 5), (2, 2)),  # AlexNet's second layer, smaller
    (2, 3, 4, (6, 5), (3, 5), (1, 0)),  # rectangular maps and kernel, no padding on one axis
    (2, 3, 4, (8, 8), (4, 4), (3, 3)),  # even kernel, full padding
    (2, 3, 4, (6, 6), (5, 5), (2, 2)),  # an even circle (8x8): Nyquist rows and columns
    (2, 3, 4, (7, 10), (5, 5), (2, 2)),  # 67x90 images' maps: a 9x12 circle
    (2, 3, 2, (1, 2), (3, 3), (1, 1)),  # taps that land on one place of the circle
    (2, 3, 4, (11, 11), (5, 5), (2, 2)),  # AlexNet's second layer on 96x96 images
])
@pytest.mark.parametrize("bias", [True, False])
def test_spectral_convolution_and_its_input_gradient_match_conv2d(n, c, d, size, kernel, padding, bias):
    torch.manual_seed(0)
    x = torch.randn(n, c, *size, requires_grad=True)
    weight = torch.randn(d, c, *kernel)
    b = torch.randn(d) if bias else None
    expected = F.conv2d(x, weight, b, 1, padding)
    got = spectral_convolution(x.detach(), weight, b, padding)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # A tensor of its own (the in-place ReLU after it may modify it),
    # written in the inverse transform's pixel-major order.
    assert got._base is None and _pixel_major(got)
    grad = torch.randn_like(expected)
    (want,) = torch.autograd.grad(expected, x, grad)
    for g in (grad, grad.contiguous(memory_format=torch.channels_last), grad.permute(2, 3, 1, 0).contiguous()
              .permute(3, 2, 0, 1)):
        grad_x = spectral_input_gradient(g, weight, size, padding)
        torch.testing.assert_close(grad_x, want, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_loss_networks_second_alexnet_layer_runs_spectrally_with_the_modules_values():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(64, 192, 5, padding=2).requires_grad_(False).to(memory_format=torch.channels_last)
    x = torch.randn(4, 64, 7, 7).contiguous(memory_format=torch.channels_last).requires_grad_()
    out = _conv(conv, x, pixel_major=True)
    assert _pixel_major(out)  # the spectral path's layout: it ran
    expected = conv(x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(out)
    (got,) = torch.autograd.grad(out, x, grad)
    (want,) = torch.autograd.grad(expected, x, grad)
    assert _pixel_major(got)  # the spectral input gradient ran too
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # Twice differentiable: with create_graph the input gradient is the
    # transposed convolution's, whose own gradient exists.
    (first,) = torch.autograd.grad(_conv(conv, x, pixel_major=True).square().sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(first.square().sum(), x)
    (first_want,) = torch.autograd.grad(conv(x).square().sum(), x, create_graph=True)
    torch.testing.assert_close(second, torch.autograd.grad(first_want.square().sum(), x)[0], rtol=1e-4, atol=1e-4)


@needs_onednn
def test_spectral_path_is_taken_only_where_it_pays(monkeypatch):
    params = ((1, 1), (2, 2), (1, 1), False, (0, 0), 1)
    weight = torch.randn(192, 64, 5, 5)
    x = torch.randn(2, 64, 7, 7)
    assert spectral_pays(x.shape[2:], x, weight, params)
    assert spectral_pays((11, 11), x, weight, params)  # 96x96 images
    assert not spectral_pays((15, 15), x, weight, params)  # large maps: dense transforms cost too much
    assert not spectral_pays((7, 7), x.double(), weight.double(), params)  # oneDNN's products are float32
    assert not spectral_pays((7, 7), x.bfloat16(), weight.bfloat16(), params)
    with monkeypatch.context() as patch:
        patch.setattr(torch.backends.mkldnn, "enabled", False)  # the user turned oneDNN off
        assert not spectral_pays((7, 7), x, weight, params)
    assert torch.backends.mkldnn.enabled
    strided = ((2, 2), (2, 2), (1, 1), False, (0, 0), 1)
    dilated = ((1, 1), (2, 2), (2, 2), False, (0, 0), 1)
    grouped = ((1, 1), (2, 2), (1, 1), False, (0, 0), 2)
    transposed = ((1, 1), (2, 2), (1, 1), True, (0, 0), 1)
    wide_padding = ((1, 1), (5, 5), (1, 1), False, (0, 0), 1)
    for other in (strided, dilated, grouped, transposed, wide_padding):
        assert not spectral_pays((7, 7), x, weight, other)
    # A 3x3 kernel (VGG's) saves too little: 4 x 34 against 49 x 9 multiplies.
    assert not spectral_pays((7, 7), x, torch.randn(8, 64, 3, 3), ((1, 1), (1, 1), (1, 1), False, (0, 0), 1))
    # An empty output (F.conv2d's error then says why), or an empty batch.
    assert not spectral_pays((2, 2), x, weight, ((1, 1), (0, 0), (1, 1), False, (0, 0), 1))
    assert not spectral_pays((7, 7), x[:0], weight, params)
    # Under vmap oneDNN's products have no batching rule.
    seen = []
    torch.func.vmap(lambda t: seen.append(spectral_pays((7, 7), t, weight, params)) or t)(x.unsqueeze(1))
    assert seen == [False]


@needs_onednn
def test_spectral_maps_only_where_elementwise_layers_alone_follow():
    # After AlexNet's relu2 a max pool (and conv3) would have to copy
    # pixel-major maps back: deeper cuts keep conv2 direct.
    from skperceptual.loss_networks import build_feature_stack

    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    for layer, spectral in ((4, True), (5, True), (6, False), (8, False)):
        stack = build_feature_stack("alexnet", layer).requires_grad_(False).to(memory_format=torch.channels_last)
        outputs = dict(_model._outputs(stack, x.clone()))
        assert _pixel_major(outputs[4]) == spectral
        torch.testing.assert_close(outputs[layer], stack(x.clone()), rtol=1e-5, atol=1e-5)
    conv = torch.nn.Conv2d(64, 192, 5, padding=2).requires_grad_(False)
    assert not _pixel_major(_conv(conv, torch.randn(2, 64, 7, 7)))  # a caller that did not ask


@needs_onednn
def test_bf16_autocast_keeps_the_direct_convolution():
    conv = torch.nn.Conv2d(64, 192, 5, padding=2).requires_grad_(False)
    x = torch.randn(2, 64, 7, 7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = _conv(conv, x, pixel_major=True)
    assert out.dtype == torch.bfloat16 and not _pixel_major(out)


def test_kernel_spectrum_follows_the_weights_values(monkeypatch):
    # The spectrum is kept per weight, but a weight changed in place (a new
    # state dict loaded into the loss network) is transformed again.
    torch.manual_seed(0)
    weight, x = torch.randn(3, 2, 5, 5), torch.randn(2, 2, 7, 7)
    spectral_convolution(x, weight, None, (2, 2))
    with torch.no_grad():
        weight.mul_(2)
    torch.testing.assert_close(spectral_convolution(x, weight, None, (2, 2)), F.conv2d(x, weight, None, 1, 2),
                               rtol=1e-5, atol=1e-5)
    # Only the last few map sizes are kept per weight.
    monkeypatch.setattr(_spectral, "_SIZES_KEPT", 2)
    for size in ((6, 6), (7, 7), (8, 8)):
        spectral_convolution(torch.randn(1, 2, *size), weight, None, (2, 2))
    assert list(_spectral._blocks[weight]) == [((7, 7), (2, 2)), ((8, 8), (2, 2))]


def test_mse_loss_keeps_a_pixel_major_gradient_pixel_major():
    # The spectral convolution's maps reach the loss pixel-major; so must
    # the gradient, or every elementwise backward after it mixes layouts.
    torch.manual_seed(0)

    def pixel_major(t):
        return t.permute(2, 3, 1, 0).contiguous().permute(3, 2, 0, 1)

    a = pixel_major(torch.rand(4, 3, 5, 5)).requires_grad_()
    b = pixel_major(torch.rand(4, 3, 5, 5))
    ours, stock = mse_loss(a, b), F.mse_loss(a, b)
    torch.testing.assert_close(ours, stock)
    (got,) = torch.autograd.grad(ours, a)
    torch.testing.assert_close(got, torch.autograd.grad(stock, a)[0])
    assert _pixel_major(got)


@needs_onednn
def test_perceptual_loss_with_the_spectral_layer_equals_the_direct_one(monkeypatch):
    from skperceptual.perceptual import PerceptualLoss, load_perceptual_net

    torch.manual_seed(0)
    loss = PerceptualLoss(load_perceptual_net(weights=None).to(memory_format=torch.channels_last))
    x = torch.rand(4, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    x_hat = torch.rand_like(x).requires_grad_()

    def value_and_gradient():
        value = loss(x_hat, x)
        return value, torch.autograd.grad(value, x_hat)[0]

    calls = []
    for name in ("spectral_convolution", "spectral_input_gradient"):
        monkeypatch.setattr(_model, name, lambda *args, f=getattr(_model, name), name=name: calls.append(name) or f(*args))
    spectral = value_and_gradient()
    # Both branches' forward, and the prediction's backward.
    assert calls == ["spectral_convolution", "spectral_convolution", "spectral_input_gradient"]
    monkeypatch.setattr(_model, "spectral_pays", lambda *args: False)
    direct = value_and_gradient()
    torch.testing.assert_close(spectral[0], direct[0], rtol=1e-5, atol=0)
    torch.testing.assert_close(spectral[1], direct[1], rtol=1e-4, atol=1e-4 * direct[1].abs().max().item())
    assert spectral[1].stride() == direct[1].stride()


def test_threads_sharing_a_weight_get_right_values():
    # Fits in threads (joblib's threading backend) may share a loss
    # network: the kept spectra change under them, never the values.
    from concurrent.futures import ThreadPoolExecutor

    torch.manual_seed(0)
    weight = torch.randn(3, 2, 5, 5)
    inputs = [torch.randn(2, 2, s, s) for s in (5, 6, 7, 8, 9, 10) for _ in range(4)]

    def check(x):
        torch.testing.assert_close(spectral_convolution(x, weight, None, (2, 2)), F.conv2d(x, weight, None, 1, 2),
                                   rtol=1e-5, atol=1e-5)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(check, inputs))
    assert len(_spectral._blocks[weight]) <= _spectral._SIZES_KEPT
