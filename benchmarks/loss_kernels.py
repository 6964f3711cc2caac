"""The perceptual loss's kernels and the seed-map product, each against the alternative it replaced.

Usage::

    python benchmarks/loss_kernels.py                 # batch 512, 9 repetitions
    python benchmarks/loss_kernels.py --batch 64 --reps 2

On AlexNet's first convolution (11x11, stride 4, 3 channels, 64x64 images)
in float32 and bf16, and on the loss's backward, it times:

- the forward, plain against a stride-1 convolution of a space-to-depth
  image (what the loss network ran before issue 11's fifth round);
- the input gradient, oneDNN's transposed convolution against the
  space-to-depth one (``_model._space_to_depth_input_gradient``);
- the whole perceptual loss (both branches' forward and the backward) with
  ``F.mse_loss``, whose gradient comes back NCHW, against
  ``_mse.mse_loss``, which keeps it channels-last, and then with max
  pooling before the first ReLU (``_model._pools_first``);
- the autoencoder's seed-map product (``_model._seed_deconv``, 1024 by
  128x5x5 at 64x64) and its two gradient products in float32, PyTorch's
  own (MKL) against oneDNN's (``_model._matmul``);
- AlexNet's second convolution (5x5, 64 to 192 channels, 7x7 maps) in
  float32, forward and input gradient, oneDNN's direct convolution against
  the spectral one (``_spectral``); and the whole loss with each, and the
  error of its input gradient against float64 arithmetic with each (batch
  64, AlexNet's ImageNet weights where ``skperceptual weights show`` finds
  them, random ones otherwise).

Contenders alternate within each repetition; each line prints the median
(min-max) in ms.
"""

import argparse
import copy
import statistics
import time

import torch
from torch.nn import functional as F

import skperceptual.perceptual as perceptual
from skperceptual._allocator import retain_freed_memory
from skperceptual._layout import space_to_depth
from skperceptual import _model
from skperceptual._model import _space_to_depth_input_gradient, _space_to_depth_kernel
from skperceptual._onednn import onednn_linear, product
from skperceptual._spectral import spectral_convolution, spectral_input_gradient
from skperceptual.weights import weights_source


def space_to_depth_forward(conv, x):
    """``conv(x)`` as a stride-1 convolution of the padded image's ``s x s`` blocks."""
    stride, (pad, _), kernel = conv.stride[0], conv.padding, conv.kernel_size[0]
    weight = _space_to_depth_kernel(conv.weight, stride)
    padded = x.shape[2] + 2 * pad
    x = F.pad(x, (pad, pad + (-padded % stride), pad, pad + (-padded % stride)))
    out = F.conv2d(space_to_depth(x, stride), weight.to(x.dtype), conv.bias.to(x.dtype))
    size = (padded - kernel) // stride + 1
    return out[:, :, :size, :size]


def timed(contenders, reps):
    """Median, min and max ms of each contender, alternating them each repetition."""
    times = {name: [] for name in contenders}
    for rep in range(reps + 1):  # the first round warms oneDNN's kernel caches up
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            if rep:
                times[name].append(1e3 * (time.perf_counter() - start))
    return {name: (statistics.median(t), min(t), max(t)) for name, t in times.items()}


def report(title, results):
    print(title)
    for name, (med, lo, hi) in results.items():
        print(f"  {name:<32} {med:7.1f} ms ({lo:.1f}-{hi:.1f})")


def gradient_errors(net, batch=64):
    """Relative RMS and max error of the perceptual loss's input gradient, float32 against float64.

    The images and their noisy reconstructions are fixed (seed 0). The
    float64 gradient (conv2 direct) is computed once; returns
    ``{spectral: (rms, max)}`` for float32 with conv2 direct (False) and
    spectral (True).
    """
    torch.manual_seed(0)
    x = torch.rand(batch, 3, 64, 64, dtype=torch.float64)
    x_hat = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    pays = _model.spectral_pays

    def gradient(dtype, spectral):
        _model.spectral_pays = pays if spectral else lambda *args: False
        loss = perceptual.PerceptualLoss(copy.deepcopy(net).to(dtype))
        a = x_hat.to(dtype).contiguous(memory_format=torch.channels_last).requires_grad_()
        return torch.autograd.grad(loss(a, x.to(dtype).contiguous(memory_format=torch.channels_last)), a)[0]

    try:
        exact = gradient(torch.float64, False)
        errors = {}
        for spectral in (False, True):
            error = gradient(torch.float32, spectral).double() - exact
            errors[spectral] = ((error.norm() / exact.norm()).item(),
                                (error.abs().max() / exact.abs().max()).item())
    finally:
        _model.spectral_pays = pays
    return errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    cl = torch.channels_last
    torch.manual_seed(0)
    net = perceptual.load_perceptual_net(weights=None).to(memory_format=cl)
    conv = net[0]
    params = (conv.stride, conv.padding, conv.dilation, False, (0, 0), conv.groups)
    x = torch.rand(args.batch, 3, 64, 64).contiguous(memory_format=cl)
    torch.testing.assert_close(space_to_depth_forward(conv, x), conv(x), rtol=1e-4, atol=1e-4)

    with retain_freed_memory(), torch.no_grad():
        for dtype in (torch.float32, torch.bfloat16):
            xd, weight = x.to(dtype), conv.weight.to(dtype)
            grad = torch.rand(args.batch, 64, 15, 15, dtype=dtype).contiguous(memory_format=cl)
            name = str(dtype).removeprefix("torch.")
            report(f"AlexNet conv1 forward, {name}, batch {args.batch}", timed({
                "plain": lambda: F.conv2d(xd, weight, conv.bias.to(dtype), 4, 2),
                "space-to-depth": lambda: space_to_depth_forward(conv, xd),
            }, args.reps))
            # (15 - 1) * 4 - 2 * 2 + 11 = 63 rows: one more to reach 64.
            report(f"AlexNet conv1 input gradient, {name}, batch {args.batch}", timed({
                "transposed convolution": lambda: F.conv_transpose2d(grad, weight, None, 4, 2, 1),
                "space-to-depth": lambda: _space_to_depth_input_gradient(grad, weight, (64, 64), params),
            }, args.reps))

    # The seed map's product out = h @ W and its gradients g @ W.T, h.T @ g.
    h, weight = torch.rand(args.batch, 1024), torch.randn(1024, 128 * 5 * 5)
    grad = torch.randn(args.batch, weight.shape[1])
    for title, a, b in (("product", h, weight), ("input gradient", grad, weight.t()),
                        ("weight gradient", h.t(), grad)):
        contenders = {"MKL (a @ b)": lambda a=a, b=b: a @ b}
        if onednn_linear() is not None:  # else product is a @ b too
            contenders["oneDNN (_model._matmul)"] = lambda a=a, b=b: product(a, b)
        with torch.no_grad():
            report(f"seed-map {title}, float32, batch {args.batch}", timed(contenders, args.reps))

    # AlexNet's second convolution on the pooled 7x7 maps of 64x64 images.
    conv2 = net[3]
    h = torch.rand(args.batch, 64, 7, 7).contiguous(memory_format=cl)
    grad = torch.randn(args.batch, 192, 7, 7).contiguous(memory_format=cl)
    spectral_grad = spectral_convolution(h, conv2.weight, None, conv2.padding)  # its pixel-major layout
    with retain_freed_memory(), torch.no_grad():
        report(f"AlexNet conv2 forward, float32, batch {args.batch}", timed({
            "direct (oneDNN)": lambda: F.conv2d(h, conv2.weight, conv2.bias, 1, 2),
            "spectral": lambda: spectral_convolution(h, conv2.weight, conv2.bias, conv2.padding),
        }, args.reps))
        report(f"AlexNet conv2 input gradient, float32, batch {args.batch}", timed({
            "direct (oneDNN)": lambda: F.conv_transpose2d(grad, conv2.weight, None, 1, 2),
            "spectral": lambda: spectral_input_gradient(spectral_grad, conv2.weight, (7, 7), conv2.padding),
        }, args.reps))

    loss = perceptual.PerceptualLoss(net)
    target = torch.rand_like(x)

    def step(mse, pool_first, spectral=True):
        def run():
            perceptual.mse_loss = mse
            _model._pools_first = pools_first if pool_first else lambda relu, pool: False
            _model.spectral_pays = pays if spectral else lambda *args: False
            x_hat = x.clone().requires_grad_()
            loss(x_hat, target).backward()
        return run

    ours, pools_first, pays = perceptual.mse_loss, _model._pools_first, _model.spectral_pays
    try:
        with retain_freed_memory():
            report(f"perceptual loss, forward and backward, float32, batch {args.batch}, channels-last", timed({
                "F.mse_loss (NCHW gradient)": step(F.mse_loss, False, False),
                "_mse.mse_loss": step(ours, False, False),
                "_mse.mse_loss, pooling first": step(ours, True, False),
                "the same, conv2 spectral": step(ours, True),
            }, args.reps))
    finally:
        perceptual.mse_loss, _model._pools_first, _model.spectral_pays = ours, pools_first, pays

    weights = "imagenet" if weights_source("alexnet")[0] is not None else None
    print(f"perceptual loss's input gradient in float32 against float64, {weights or 'random'} weights, batch 64")
    errors = gradient_errors(perceptual.load_perceptual_net(weights=weights))
    for name, spectral in (("conv2 direct", False), ("conv2 spectral", True)):
        rms, largest = errors[spectral]
        print(f"  {name:<32} relative error {rms:.1e} (rms), {largest:.1e} (max)")


if __name__ == "__main__":
    main()
