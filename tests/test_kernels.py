"""skperceptual.kernels: each faster path computes what the stock module computes, and one switch turns all off."""

import numpy as np
import pytest
import torch
from torch import nn

from skperceptual import PerceptualAETransformer
from skperceptual.kernels import FrozenConv2d, SeedConvTranspose2d, with_frozen_convolutions

OFF = "SKPERCEPTUAL_CUSTOM_KERNELS"


def _channels_last(t, yes):
    return t.contiguous(memory_format=torch.channels_last) if yes else t


def _twin(module, stock_class):
    """A stock module with ``module``'s parameters (copied)."""
    torch.manual_seed(0)
    stock = stock_class(module.in_channels, module.out_channels, module.kernel_size, stride=module.stride,
                        padding=module.padding)
    stock.load_state_dict(module.state_dict())
    return stock


@pytest.mark.parametrize("size", [1, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_seed_deconvolution_matches_the_stock_module_and_its_gradients(size, channels_last):
    torch.manual_seed(0)
    seed = SeedConvTranspose2d(64, 16, 5, stride=2)
    stock = _twin(seed, nn.ConvTranspose2d)
    if channels_last:
        seed, stock = seed.to(memory_format=torch.channels_last), stock.to(memory_format=torch.channels_last)
    x = torch.randn(4, 64, size, size)
    outs = []
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for module in (seed, stock):
        xi = x.clone().requires_grad_()
        out = module(xi)
        out.square().sum().backward()
        outs.append((out, xi.grad, module.weight.grad, module.bias.grad))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # The stock module's memory format too (channels-last with a channels-last weight).
    for fmt in (torch.contiguous_format, torch.channels_last):
        assert outs[0][0].is_contiguous(memory_format=fmt) == outs[1][0].is_contiguous(memory_format=fmt)


def test_seed_deconvolution_under_bf16_autocast_gives_what_the_stock_module_gives():
    torch.manual_seed(0)
    seed = SeedConvTranspose2d(64, 16, 5, stride=2)
    stock = _twin(seed, nn.ConvTranspose2d)
    x = torch.randn(4, 64, 1, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, theirs = seed(x), stock(x)
    assert ours.dtype == theirs.dtype == torch.bfloat16
    torch.testing.assert_close(ours.float(), theirs.float(), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("kernel, stride, padding, channels",
                         [(11, 4, 2, 3), (7, 2, 3, 3), (5, 1, 2, 64), (3, 2, 1, 1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_frozen_convolution_gives_the_stock_values_and_input_gradient(kernel, stride, padding, channels, channels_last):
    torch.manual_seed(0)
    stock = nn.Conv2d(channels, 8, kernel, stride=stride, padding=padding).requires_grad_(False)
    frozen = with_frozen_convolutions(nn.Sequential(stock))[0]
    assert type(frozen) is FrozenConv2d and frozen.weight is stock.weight  # shared, not copied
    x = _channels_last(torch.rand(2, channels, 31, 31), channels_last)
    results = []
    for module in (frozen, stock):
        xi = x.clone().requires_grad_()
        out = module(xi)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append((out, xi.grad))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=0)  # the same forward
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-4, atol=1e-5)


def test_frozen_convolution_keeps_no_copy_of_its_input():
    conv = nn.Conv2d(3, 8, 11, stride=4, padding=2).requires_grad_(False)
    frozen = with_frozen_convolutions(nn.Sequential(conv))[0]

    def saved_sizes(module):
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
            module(torch.rand(2, 3, 64, 64, requires_grad=True))
        return sizes

    assert 2 * 3 * 64 * 64 in saved_sizes(conv)  # autograd's convolution keeps its input
    assert saved_sizes(frozen) == [conv.weight.numel()]


def test_frozen_convolution_of_a_trainable_weight_trains_and_its_hooks_fire():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, stride=2)
    frozen = with_frozen_convolutions(nn.Sequential(conv))[0]
    x = torch.rand(2, 3, 16, 16)
    frozen(x).sum().backward()
    assert conv.weight.grad is not None  # it trains as the stock module does
    seen = []
    frozen.register_forward_hook(lambda *args: seen.append(1))
    frozen.requires_grad_(False)(x)
    assert seen == [1]


def test_frozen_convolution_supports_double_backward_under_the_custom_path():
    torch.manual_seed(0)
    frozen = with_frozen_convolutions(nn.Sequential(nn.Conv2d(3, 8, 11, stride=4, padding=2)))[0]
    frozen.requires_grad_(False)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(frozen(x).square().sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(grad.square().sum(), x)
    assert second.abs().sum() > 0


def test_other_stacks_are_left_as_they_are():
    stack = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    wrapped = with_frozen_convolutions(stack)
    assert type(stack[0]) is nn.Conv2d and wrapped is not stack and wrapped[1] is stack[1]

    class Custom(nn.Sequential):
        pass

    custom = Custom(nn.Conv2d(3, 4, 3))
    assert with_frozen_convolutions(custom) is custom


@pytest.mark.parametrize("loss", ["pixel", "perceptual"])
def test_the_switch_trains_the_same_model_up_to_float_rounding(images, monkeypatch, loss):
    params = dict(z_dim=4, loss=loss, perceptual_weights=None, max_epochs=2, batch_size=8,
                  validation_fraction=None, device="cpu", random_state=0)
    fast = PerceptualAETransformer(**params).fit(images)
    monkeypatch.setenv(OFF, "0")
    stock = PerceptualAETransformer(**params).fit(images)
    assert not np.array_equal(fast.transform(images), stock.transform(images))  # another computation ...
    np.testing.assert_allclose(fast.transform(images), stock.transform(images), rtol=1e-3, atol=1e-4)  # ... same model
    np.testing.assert_allclose([r["train_loss"] for r in fast.history_], [r["train_loss"] for r in stock.history_],
                               rtol=1e-4)


def test_the_switch_turns_both_paths_off(monkeypatch):
    seed = SeedConvTranspose2d(64, 16, 5, stride=2)
    frozen = with_frozen_convolutions(nn.Sequential(nn.Conv2d(3, 8, 11, stride=4))).requires_grad_(False)[0]
    x, image = torch.randn(2, 64, 1, 1), torch.rand(2, 3, 64, 64, requires_grad=True)
    assert frozen(image).grad_fn.name() == "_FrozenConvolutionBackward"
    monkeypatch.setenv(OFF, "0")
    stock = _twin(seed, nn.ConvTranspose2d)
    assert torch.equal(seed(x), stock(x))  # the stock kernel, bit for bit
    out = frozen(image)
    assert out.grad_fn.name() != "_FrozenConvolutionBackward"
