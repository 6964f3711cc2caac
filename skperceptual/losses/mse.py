"""Mean squared error whose gradient keeps a channels-last input's layout.

``F.mse_loss``'s backward allocates its gradient in the contiguous (NCHW)
layout whatever the input's. Every elementwise backward after it (the
reconstruction's sigmoid, a loss network's ReLU and sigmoid) then mixes an
NCHW gradient with channels-last saved tensors, and such mixed elementwise
kernels run far slower on the CPU than matched ones; the transposed
convolution that receives the gradient also reorders it first. Comparing
the tensors through their NHWC view avoids both with public API only.
"""

from torch.nn import functional as F


def mse_loss(input, target):
    """``F.mse_loss(input, target)`` whose gradient has ``input``'s memory format.

    A channels-last 4-d input is compared as its NHWC view, which is
    contiguous, so the backward's contiguous gradient is channels-last once
    viewed back as NCHW. The same
    elements are reduced in the same memory order, and each gradient
    element has the same formula: values are those of ``F.mse_loss``.
    Differentiable like it (double backward, ``torch.func``), and autocast
    treats it the same way.

    Parameters
    ----------
    input, target : torch.Tensor of the same shape
        E.g. a reconstruction and its image, or two feature maps.

    Returns
    -------
    loss : torch.Tensor of shape ()
        The mean of the squared differences.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    >>> x_hat = torch.zeros_like(x).requires_grad_()
    >>> bool(mse_loss(x_hat, x) == torch.nn.functional.mse_loss(x_hat, x))
    True
    >>> mse_loss(x_hat, x).backward()
    >>> x_hat.grad.is_contiguous(memory_format=torch.channels_last)
    True
    """
    # Channels-last asked in the form vmap supports (torch.func).
    if input.dim() == 4 and input.shape == target.shape and not input.is_contiguous():
        nhwc = input.permute(0, 2, 3, 1)
        if nhwc.is_contiguous():
            input, target = nhwc, target.permute(0, 2, 3, 1)
    return F.mse_loss(input, target)
