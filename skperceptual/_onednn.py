"""Float32 matrix products on the CPU through oneDNN rather than MKL.

PyTorch multiplies float32 matrices on the CPU with MKL, whose kernels ran
at half of oneDNN's rate on this project's AMD EPYC (``python
benchmarks/loss_kernels.py``). The autoencoder's seed-map product
(``_model._matmul``), its patch convolution and the loss network's spectral
convolution (``_spectral``) multiply through :func:`product` instead.
"""

import functools

import torch


@functools.cache
def onednn_linear():
    """oneDNN's float32 ``x @ w.T`` as a function of ``(x, w)``, or None where this torch lacks it.

    ``torch.ops.mkldnn._linear_pointwise`` is the operator PyTorch's own
    compiler emits for linear layers on the CPU. It is looked up and
    checked once, on a product it must compute exactly, so that a torch
    build without it, or with another signature, falls back to ``@``.
    """
    try:
        if not torch.backends.mkldnn.is_available():
            return None
        op = torch.ops.mkldnn._linear_pointwise

        def linear(x, w):
            return op(x, w, None, "none", [], "")

        x = torch.arange(6, dtype=torch.float32, device="cpu").view(2, 3)
        w = torch.arange(12, dtype=torch.float32, device="cpu").view(4, 3)
        return linear if torch.equal(linear(x, w), x @ w.t()) else None
    except (AttributeError, RuntimeError):  # no such operator, or not this signature
        return None


def product(a, b):
    """``a @ b`` outside autograd, through oneDNN where :func:`onednn_multiplies` says so."""
    return onednn_linear()(a, b.t()) if onednn_multiplies(a, b) else a @ b


def onednn_multiplies(a, b):
    """Whether ``a @ b`` goes through oneDNN's linear operator: float32 CPU matrices, where torch has it.

    Not where the user turned oneDNN off (``torch.backends.mkldnn.enabled``).
    """
    return (a.device.type == b.device.type == "cpu" and a.dtype == b.dtype == torch.float32
            and torch.backends.mkldnn.enabled and onednn_linear() is not None)
