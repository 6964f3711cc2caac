"""The decoder's first transposed convolution as one matrix product."""

import torch
from torch import nn
from torch.nn import functional as F

from .switch import enabled


class SeedConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` that runs on a tiny, many-channel map as one matrix product.

    The autoencoder's decoder grows its 1024-channel seed map (1x1 for
    64x64 images, 3x3 for 96x96) with a transposed convolution, a shape
    that oneDNN runs far more slowly than the equivalent matrix product.
    On the CPU (:func:`skperceptual.kernels.enabled`), ``forward`` computes
    every input pixel's ``k x k`` patch of outputs with one product and sums
    the patches into place with col2im (``F.fold``); elsewhere, and for
    padding, dilation, groups or ``output_size``, it is the stock module.
    The parameters and the result are those of ``nn.ConvTranspose2d``, up
    to float rounding.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> seed = SeedConvTranspose2d(16, 4, 5, stride=2)
    >>> stock = nn.ConvTranspose2d(16, 4, 5, stride=2)
    >>> _ = stock.load_state_dict(seed.state_dict())
    >>> x = torch.rand(2, 16, 3, 3)
    >>> torch.allclose(seed(x), stock(x), atol=1e-6)
    True
    """

    def forward(self, input, output_size=None):
        plain = (output_size is None and self.padding == (0, 0) and self.output_padding == (0, 0)
                 and self.dilation == (1, 1) and self.groups == 1 and self.padding_mode == "zeros")
        if not (plain and input.dim() == 4 and enabled(input)):
            return super().forward(input, output_size)
        n, c_in, height, width = input.shape
        _, c_out, k_h, k_w = self.weight.shape
        if height == width == 1:
            if self.weight.permute(0, 2, 3, 1).is_contiguous():
                # A channels-last weight is (C_in, k, k, C_out) in memory: read
                # it as a matrix without a copy, and give a channels-last output.
                cols = input.flatten(1) @ self.weight.permute(0, 2, 3, 1).reshape(c_in, -1)
                out = cols.view(n, k_h, k_w, c_out).permute(0, 3, 1, 2)
            else:
                out = (input.flatten(1) @ self.weight.flatten(1)).view(n, c_out, k_h, k_w)
        else:
            # (n*H*W, C_in) @ (C_in, C_out*k*k): every input pixel's k x k
            # patch of outputs, summed into place by col2im.
            pixels = input.flatten(2).transpose(1, 2).reshape(n * height * width, c_in)
            cols = (pixels @ self.weight.flatten(1)).view(n, height * width, -1)
            s_h, s_w = self.stride
            size = ((height - 1) * s_h + k_h, (width - 1) * s_w + k_w)
            out = F.fold(cols.transpose(1, 2), size, (k_h, k_w), stride=(s_h, s_w))
            if self.weight.permute(0, 2, 3, 1).is_contiguous():
                # col2im writes NCHW; the stock module answers a channels-last
                # weight with a channels-last output.
                out = out.contiguous(memory_format=torch.channels_last)
        # Under autocast the product ran in bf16: so does the stock module's output.
        return out if self.bias is None else out + self.bias.to(out.dtype).view(1, -1, 1, 1)
