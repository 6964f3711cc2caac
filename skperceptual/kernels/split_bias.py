"""Trainable convolutions whose bias gradient is summed apart from the weight gradient."""

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn import grad as conv_grad

from .switch import enabled


class SplitBiasConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose backward sums the bias gradient on its own.

    oneDNN computes a convolution's weight and bias gradients in one kernel
    whose bias reduction is slow; asking it for the weight gradient alone
    and summing the output gradient over the batch and the pixels gives the
    same gradients (up to float rounding) in less time. On the CPU
    (:func:`skperceptual.kernels.enabled`), for zero padding without
    dilation or groups; elsewhere it is the stock module. First-order
    gradients only (double backward is not supported on this path).

    Examples
    --------
    >>> conv = SplitBiasConv2d(3, 8, 4, stride=2)
    >>> x = torch.rand(2, 3, 16, 16, requires_grad=True)
    >>> conv(x).sum().backward()
    >>> tuple(conv.bias.grad.shape), tuple(x.grad.shape)
    ((8,), (2, 3, 16, 16))
    """

    def forward(self, input):
        if not _splits(self, input):
            return super().forward(input)
        return _SplitBiasConvolution.apply(input, self.weight, self.bias, self.stride, self.padding, False)


class SplitBiasConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` whose backward sums the bias gradient on its own (see :class:`SplitBiasConv2d`)."""

    def forward(self, input, output_size=None):
        if output_size is not None or self.output_padding != (0, 0) or not _splits(self, input):
            return super().forward(input, output_size)
        return _SplitBiasConvolution.apply(input, self.weight, self.bias, self.stride, self.padding, True)


def _splits(conv, x):
    return (conv.bias is not None and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
            and conv.dilation == (1, 1) and conv.groups == 1 and x.dim() == 4 and enabled(x))


class _SplitBiasConvolution(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, transposed):
        # Computed in autocast's dtype, as the stock module would, with the
        # cast operands kept for the backward.
        device = x.device.type
        if torch.is_autocast_enabled(device):
            dtype = torch.get_autocast_dtype(device)
            x, weight, bias = x.to(dtype), weight.to(dtype), bias.to(dtype)
        with torch.autocast(device, enabled=False):
            conv = F.conv_transpose2d if transposed else F.conv2d
            out = conv(x, weight, bias, stride, padding)
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.transposed = stride, padding, transposed
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        stride, padding = ctx.stride, ctx.padding
        grad_x = grad_weight = grad_bias = None
        if ctx.transposed:
            # A transposed convolution is the adjoint of the convolution
            # with the same weight: the roles of input and output swap.
            if need_x:
                grad_x = F.conv2d(grad, weight, None, stride, padding)
            if need_weight:
                grad_weight = conv_grad.conv2d_weight(grad, weight.shape, x, stride, padding)
        else:
            if need_x:
                grad_x = conv_grad.conv2d_input(x.shape, weight, grad, stride, padding)
            if need_weight:
                grad_weight = conv_grad.conv2d_weight(x, weight.shape, grad, stride, padding)
        if need_bias:
            grad_bias = grad.sum((0, 2, 3))
        return grad_x, grad_weight, grad_bias, None, None, None
