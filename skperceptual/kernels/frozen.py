"""A loss network's convolution: its weight never trains, so its backward needs no input."""

import torch
from torch import nn
from torch.nn import functional as F

from .layout import depth_to_space
from .switch import enabled


class FrozenConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose backward, while its weight is frozen, keeps only the weight.

    Autograd's convolution keeps its input for the weight gradient even when
    no weight gradient is wanted, as in a perceptual loss network; the input
    gradient needs only the weight. On the CPU
    (:func:`skperceptual.kernels.enabled`), with a weight that does not
    require gradients, ``forward`` keeps no copy of the input, and a
    strided convolution of a few-channel image (AlexNet's 11x11 stride-4
    first layer, ResNet's 7x7 stride-2 one) computes its input gradient
    through space-to-depth, a shape oneDNN runs much faster than the
    strided transposed convolution. Elsewhere it is the stock module. The
    backward is itself differentiable (double backward, ``torch.func``).

    Examples
    --------
    >>> conv = with_frozen_convolutions(nn.Sequential(nn.Conv2d(3, 8, 11, stride=4, padding=2)))[0]
    >>> x = torch.rand(2, 3, 64, 64, requires_grad=True)
    >>> conv(x).square().sum().backward()
    >>> tuple(x.grad.shape)
    (2, 3, 64, 64)
    """

    def forward(self, input):
        if (self.weight.requires_grad or self.padding_mode != "zeros" or isinstance(self.padding, str)
                or self.dilation != (1, 1) or self.groups != 1 or input.dim() != 4 or not enabled(input)):
            return super().forward(input)
        return _FrozenConvolution.apply(input, self.weight, self.bias, self.stride, self.padding)


def with_frozen_convolutions(stack):
    """``stack`` with its ``nn.Conv2d`` children as :class:`FrozenConv2d` sharing their parameters.

    Parameters
    ----------
    stack : torch.nn.Module
        A loss network's feature stack.

    Returns
    -------
    stack : torch.nn.Module
        A new ``nn.Sequential`` holding the same modules but for the
        convolutions, or ``stack`` itself unless it is a plain
        ``nn.Sequential`` (a subclass may define its own ``forward``). The
        caller's modules are not changed.
    """
    if type(stack) is not nn.Sequential:
        return stack
    return nn.Sequential(*(_frozen(layer) for layer in stack))


def _frozen(conv):
    if type(conv) is not nn.Conv2d:
        return conv
    frozen = FrozenConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                          conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode, device="meta")
    frozen.weight, frozen.bias = conv.weight, conv.bias
    return frozen


class _FrozenConvolution(torch.autograd.Function):
    """``F.conv2d`` whose backward uses the weight alone (:class:`FrozenConv2d`)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, weight, bias, stride, padding):
        return F.conv2d(x, weight, bias, stride, padding)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, _, stride, padding = inputs
        ctx.save_for_backward(weight)
        ctx.stride, ctx.padding, ctx.size = stride, padding, x.shape[2:]

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        grad_x = grad_bias = None
        if ctx.needs_input_grad[0]:
            # In the dtype the forward computed in (bf16 under autocast).
            grad_x = _input_gradient(grad, weight.to(grad.dtype), ctx.size, ctx.stride, ctx.padding)
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum((0, 2, 3))
        return grad_x, None, grad_bias, None, None


def _input_gradient(grad, weight, size, stride, padding):
    """The input gradient of a convolution, from its output gradient and its weight."""
    if weight.shape[1] <= 4 and stride[0] == stride[1] > 1:
        return _space_to_depth_input_gradient(grad, weight, size, stride[0], padding)
    output_padding = [size[i] - ((grad.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + weight.shape[2 + i])
                      for i in range(2)]
    return F.conv_transpose2d(grad, weight, None, stride, padding, output_padding)


def _space_to_depth_input_gradient(grad, weight, size, stride, padding):
    """The input gradient of a strided convolution, through space-to-depth.

    The convolution equals a stride-1 one over the zero-padded image cut
    into ``s x s`` blocks, one block per pixel stacked along the channels
    (:func:`~skperceptual.kernels.layout.space_to_depth`), with the kernel
    zero-padded to a multiple of ``s`` and rearranged the same way: the
    same sum of products plus exact zeros. Its input gradient is that
    stride-1 convolution's (a transposed convolution of ``grad``), put back
    into pixels and cropped to the unpadded image.
    """
    pad_h, pad_w = padding
    blocks = _space_to_depth_kernel(weight, stride)
    k_h, k_w = blocks.shape[2:]
    # The padded image in whole blocks; the convolution over them has
    # outputs beyond the strided one's (from the far sides' partial
    # blocks), whose gradients are zero.
    blocks_h = -(-(size[0] + 2 * pad_h) // stride)
    blocks_w = -(-(size[1] + 2 * pad_w) // stride)
    missing_h = blocks_h - k_h + 1 - grad.shape[2]
    missing_w = blocks_w - k_w + 1 - grad.shape[3]
    if missing_h or missing_w:
        grad = F.pad(grad, (0, missing_w, 0, missing_h))
    padded = depth_to_space(F.conv_transpose2d(grad, blocks), stride)
    return padded[:, :, pad_h:pad_h + size[0], pad_w:pad_w + size[1]]


def _space_to_depth_kernel(weight, stride):
    """``(C_out, C_in, k, k)`` to ``(C_out, s*s*C_in, ceil(k/s), ceil(k/s))`` in space-to-depth's channel order."""
    n_out, n_in, kernel_h, kernel_w = weight.shape
    k_h, k_w = -(-kernel_h // stride), -(-kernel_w // stride)
    blocks = F.pad(weight, (0, k_w * stride - kernel_w, 0, k_h * stride - kernel_h))
    return (
        blocks.view(n_out, n_in, k_h, stride, k_w, stride)
        .permute(0, 3, 5, 1, 2, 4)  # to space_to_depth's channel order: dy, dx, c
        .reshape(n_out, n_in * stride * stride, k_h, k_w)
    )
