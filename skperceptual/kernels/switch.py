"""The one switch of :mod:`skperceptual.kernels`."""

import os


def enabled(x):
    """Whether the custom paths run for input ``x``: on the CPU, unless ``SKPERCEPTUAL_CUSTOM_KERNELS=0``.

    Parameters
    ----------
    x : torch.Tensor
        The layer's input.

    Returns
    -------
    enabled : bool
    """
    return x.device.type == "cpu" and os.environ.get("SKPERCEPTUAL_CUSTOM_KERNELS", "1") != "0"
