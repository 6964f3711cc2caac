"""A frozen stride-1 convolution of small maps as a product of spectra.

In a perceptual loss on 64x64 images, AlexNet's second convolution (5x5,
64 to 192 channels) sees 7x7 maps. Computed directly, each of the 49
output pixels sums 25 taps for every pair of channels. Through the
discrete Fourier transform of the maps, zero-padded to 9x9 (just enough
that no wrap-around reaches an output pixel), each of 41 frequencies (the
other 40 are their conjugates) mixes the channels in one complex product:
4 x 41 real multiplies per pair of channels instead of 49 x 25, 7.5 times
fewer. The transforms are matrix
products with precomputed DFT matrices, the mixing is one oneDNN product
per frequency (:func:`_onednn.product`), and the kernel's spectrum is
computed once per weight, which does not train. The results equal the
direct convolution's up to float rounding. At batch 512 the forward takes
12.7 instead of 24.9 ms, the input gradient 12.3 instead of 23.2 ms, and
the whole AlexNet loss 105 instead of 144 ms (``python
benchmarks/loss_kernels.py``).

The maps travel pixel-major: the output is a ``(N, C, H, W)`` tensor over
memory ordered ``(H, W, C, N)``, which is how the inverse transform writes
it. Elementwise layers keep that order, ``_mse.mse_loss`` compares in it,
and the input gradient's transform reads it without a copy.
"""

import functools
import math

import torch
from torch.utils.weak import WeakTensorKeyDictionary

from ._onednn import onednn_multiplies, product

#: The pixel-major order, ``(H, W, C, N)``, as a permutation of ``(N, C, H, W)``,
#: and back.
PIXEL_MAJOR, _FROM_PIXEL_MAJOR = (2, 3, 1, 0), (3, 2, 0, 1)

#: The spectral path is taken where it multiplies at most a quarter as
#: often as the direct convolution, on maps of at most this many pixels
#: (the transforms are dense matrices, quadratic in the pixels).
_MAX_SAVING_DENOMINATOR, _MAX_PIXELS = 4, 144
#: Map sizes whose kernel blocks are kept per weight (a fit sees one).
_SIZES_KEPT = 4


def spectral_pays(size, operand, weight, params):
    """Whether a frozen convolution of ``size`` maps runs through :func:`spectral_convolution`.

    ``operand`` is its input, or in the backward its output gradient, in
    the dtype the convolution computes in.

    Float32 on the CPU through oneDNN (:func:`_onednn.onednn_multiplies`),
    not under ``torch.func.vmap`` (:func:`_transformed`), a plain stride-1
    convolution (no dilation, groups or transposition) of a non-empty
    batch, whose padding is at most the kernel's size less one and whose
    output is not empty, on maps of at most 144 pixels, where the spectral
    products multiply at most a quarter as often as the direct
    convolution: AlexNet's second layer on 64x64 to 96x96 images, not its
    first, nor VGG's 3x3 layers.
    """
    stride, padding, dilation, transposed, _, groups = params
    if (transposed or groups != 1 or tuple(stride) != (1, 1) or tuple(dilation) != (1, 1)
            or operand.dim() != 4 or operand.shape[0] == 0
            or not onednn_multiplies(operand, weight) or _transformed()):
        return False
    size, kernel, padding = tuple(size), tuple(weight.shape[2:]), tuple(padding)
    if any(p > k - 1 for p, k in zip(padding, kernel)):
        return False
    out = _output_size(size, kernel, padding)
    if min(out) < 1:  # F.conv2d's own error says why
        return False
    direct = out[0] * out[1] * kernel[0] * kernel[1]
    spectral = 4 * _frequencies(size, padding)
    return size[0] * size[1] <= _MAX_PIXELS and _MAX_SAVING_DENOMINATOR * spectral <= direct


def is_pixel_major(t):
    """Whether the 4-d tensor ``t``'s memory is ordered :data:`PIXEL_MAJOR`, as a spectral convolution writes it."""
    return t.dim() == 4 and t.permute(PIXEL_MAJOR).is_contiguous()


def _transformed():
    """Whether a ``torch.func`` transform is active: oneDNN's products have no batching rule.

    Under vmap they would run once per sample, with a warning each; the
    direct convolution runs instead. (Under ``torch.func.grad`` a custom
    Function's forward runs below the transform, so it stays spectral,
    and its backward, which then builds a graph, is the direct one.)
    """
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    return active is not None and active()


def spectral_convolution(x, weight, bias, padding):
    """``F.conv2d(x, weight, bias, 1, padding)`` through the spectra of ``x`` and ``weight``.

    Parameters
    ----------
    x : torch.Tensor of shape (N, C, H, W)
    weight : torch.Tensor of shape (D, C, kH, kW)
        Frozen: its spectrum is computed on first use and kept while the
        weight keeps its values.
    bias : torch.Tensor of shape (D,) or None
    padding : tuple of int
        Zero padding of each side, at most ``kH - 1`` and ``kW - 1``.

    Returns
    -------
    out : torch.Tensor of shape (N, D, H', W')
        Its memory ordered ``(H', W', D, N)``.
    """
    n, c, h, w = x.shape
    d, kernel, padding = weight.shape[0], tuple(weight.shape[2:]), tuple(padding)
    out_h, out_w = _output_size((h, w), kernel, padding)
    transform, _, _, inverse = _transforms((h, w), kernel, padding, x.device)
    blocks = _kernel_blocks(weight, (h, w), padding)
    spectra = product(transform, x.permute(PIXEL_MAJOR).reshape(h * w, c * n))
    mixed = _mix(blocks, spectra.view(len(blocks), 2 * c, n))
    if bias is not None:
        # The bias is the output's frequency 0 (the first), whose real part
        # the inverse transform divides by the circle's area.
        mixed[0, :d] += bias.view(d, 1) * _area((h, w), padding)
    out = product(inverse, mixed.view(-1, d * n))
    # The product's memory as (N, D, H', W'), a tensor of its own rather
    # than a view: autograd forbids modifying a custom Function's view in
    # place, as the ReLU after it does, and a copy would cost a pass.
    strides = out.view(out_h, out_w, d, n).permute(_FROM_PIXEL_MAJOR).stride()
    return out.new_empty(0).set_(out.untyped_storage(), out.storage_offset(), (n, d, out_h, out_w), strides)


def spectral_input_gradient(grad, weight, size, padding):
    """The input gradient of :func:`spectral_convolution`: its transforms and products transposed.

    Parameters
    ----------
    grad : torch.Tensor of shape (N, D, H', W')
        The output's gradient, read without a copy when its memory is
        ordered ``(H', W', D, N)`` as :func:`spectral_convolution` made it.
    weight : torch.Tensor of shape (D, C, kH, kW)
    size : tuple of int
        The input's ``(H, W)``.
    padding : tuple of int

    Returns
    -------
    grad_x : torch.Tensor of shape (N, C, H, W)
        A view of memory ordered ``(H, W, C, N)``.
    """
    n, d, out_h, out_w = grad.shape
    c, size, padding = weight.shape[1], tuple(size), tuple(padding)
    _, transform_t, inverse_t, _ = _transforms(size, tuple(weight.shape[2:]), padding, grad.device)
    blocks_t = _kernel_blocks(weight, size, padding, transposed=True)
    spectra = product(inverse_t, grad.permute(PIXEL_MAJOR).reshape(out_h * out_w, d * n))
    mixed = _mix(blocks_t, spectra.view(len(blocks_t), 2 * d, n))
    return product(transform_t, mixed.view(-1, c * n)).view(*size, c, n).permute(_FROM_PIXEL_MAJOR)


def _mix(blocks, spectra):
    """Each frequency's channels mixed, ``blocks[f] @ spectra[f]``, one oneDNN product each.

    A batched ``torch.bmm`` goes through MKL: 11.3 against 6.3 ms for
    AlexNet's second layer at batch 512. Each product is copied into the
    result while it is still in cache: 6.3 ms against 7.0 ms for stacking
    them all at the end, whose list doubles the memory.
    """
    mixed = spectra.new_empty(len(blocks), blocks.shape[1], spectra.shape[2])
    for f, (block, spectrum) in enumerate(zip(blocks, spectra)):
        mixed[f] = product(block, spectrum)
    return mixed


def _output_size(size, kernel, padding):
    """A stride-1 convolution's output ``(H', W')``."""
    return tuple(s + 2 * p - k + 1 for s, k, p in zip(size, kernel, padding))


def _circle(size, padding):
    """The transform's size: ``H + pad`` rows, the fewest for which no wrap-around reaches the output."""
    return tuple(s + p for s, p in zip(size, padding))


def _area(size, padding):
    """The circle's pixels, by which the inverse transform divides frequency 0."""
    n1, n2 = _circle(size, padding)
    return n1 * n2


@functools.lru_cache(maxsize=32)
def _kept(size, padding):
    """The frequencies ``(f1, f2)`` the products keep, frequency 0 first, and each one's multiplicity.

    A real map's spectrum is Hermitian: ``X[-f1, -f2]`` is the conjugate
    of ``X[f1, f2]``. ``rfft2`` keeps the last axis's frequencies up to
    ``n2 / 2``; on its columns 0 and (even ``n2``) ``n2 / 2``, which are
    their own conjugates' columns, only ``f1 <= n1 / 2`` are kept. Each
    kept frequency stands for itself and its conjugate (multiplicity 2)
    unless it is its own conjugate (1). For 9x9 circles, 41 instead of 45.
    """
    n1, n2 = _circle(size, padding)

    def own_conjugate(f, n):
        return f == 0 or 2 * f == n

    kept = [(f1, f2) for f2 in range(n2 // 2 + 1) for f1 in range(n1)
            if not own_conjugate(f2, n2) or f1 <= n1 // 2]
    counted = [1 if own_conjugate(f1, n1) and own_conjugate(f2, n2) else 2 for f1, f2 in kept]
    return torch.tensor(kept), torch.tensor(counted, dtype=torch.float64)


def _frequencies(size, padding):
    """How many frequencies the products mix: :func:`_kept`'s."""
    return len(_kept(size, padding)[1])


@functools.lru_cache(maxsize=32)
def _transforms(size, kernel, padding, device):
    """The DFT matrices ``(transform, transform.T, inverse.T, inverse)``, float32 on ``device``.

    ``transform`` maps an ``H x W`` map, zero-padded to :func:`_circle`'s
    size, to the real and imaginary parts of its spectrum at
    :func:`_kept`'s frequencies (rows ordered frequency, then part).
    ``inverse`` maps such a spectrum back to the output's pixels: the
    inverse DFT restricted to the ``H' x W'`` it needs, each frequency
    counted with its conjugate. Built in float64.
    """
    n1, n2 = _circle(size, padding)
    kept, counted = _kept(size, padding)
    f1, f2 = (kept[:, i].to(torch.float64).view(-1, 1, 1) for i in (0, 1))

    def phases(rows, cols):
        i = torch.arange(rows, dtype=torch.float64).view(1, -1, 1)
        j = torch.arange(cols, dtype=torch.float64).view(1, 1, -1)
        return 2 * math.pi * (f1 * i / n1 + f2 * j / n2)

    forward = phases(*size)
    transform = torch.stack([forward.cos(), -forward.sin()], 1).reshape(-1, size[0] * size[1])
    scale = counted.view(-1, 1, 1) / (n1 * n2)
    backward = phases(*_output_size(size, kernel, padding))
    inverse = torch.stack([backward.cos() * scale, -backward.sin() * scale], 1).reshape(transform.shape[0], -1).t()
    return tuple(m.to(device=device, dtype=torch.float32).contiguous()
                 for m in (transform, transform.t(), inverse.t(), inverse))


#: Per weight, by map size and padding: a copy of its values and its blocks (:func:`_kernel_blocks`).
_blocks = WeakTensorKeyDictionary()


def _kernel_blocks(weight, size, padding, transposed=False):
    """The kernel's spectrum as real product blocks, kept while ``weight`` keeps its values.

    Kept for the last few map sizes (``_SIZES_KEPT``) of each weight tensor;
    a weight made anew for each call (a parametrization) is transformed
    each time, about 5 ms for AlexNet's second layer.

    Per frequency, ``[Y_re; Y_im] = [[W_re, -W_im], [W_im, W_re]] [X_re; X_im]``
    multiplies a map's spectrum by the kernel's: the blocks have shape
    ``(F, 2D, 2C)``; ``transposed`` asks for their per-frequency
    transposes, the input gradient's, made on first use.
    """
    cached = _blocks.setdefault(weight, {})
    key = (tuple(size), tuple(padding))
    # Each step pops and re-inserts, so that fits in threads sharing a
    # weight at worst transform it twice.
    entry = cached.pop(key, None)
    if entry is None or not torch.equal(entry[0], weight):
        for oldest in list(cached)[: max(len(cached) - _SIZES_KEPT + 1, 0)]:
            cached.pop(oldest, None)
        entry = (weight.detach().clone(), {False: _spectrum_blocks(weight, size, padding)})
    cached[key] = entry  # the most recently used last
    blocks = entry[1]
    if transposed not in blocks:
        blocks[transposed] = blocks[False].transpose(1, 2).contiguous()
    return blocks[transposed]


def _spectrum_blocks(weight, size, padding):
    """:func:`_kernel_blocks` computed: the kernel's DFT at :func:`_kept`'s frequencies, in float64."""
    d, c, k1, k2 = weight.shape
    n1, n2 = _circle(size, padding)
    frequencies, _ = _kept(size, padding)
    # Tap t sits at (padding - t) mod n on the circle, so that the circular
    # convolution of the padded map is the correlation F.conv2d computes.
    f1, f2 = (frequencies[:, i].to(torch.float64).view(1, 1, -1) for i in (0, 1))
    a = torch.arange(k1, dtype=torch.float64).view(-1, 1, 1)
    b = torch.arange(k2, dtype=torch.float64).view(1, -1, 1)
    phase = (-2 * math.pi * (f1 * (padding[0] - a) / n1 + f2 * (padding[1] - b) / n2)).view(k1 * k2, -1)
    taps = weight.detach().to(torch.float64).reshape(d * c, k1 * k2)
    re, im = ((taps @ part.to(taps.device)).t().reshape(-1, d, c).to(weight.dtype)
              for part in (phase.cos(), phase.sin()))
    blocks = weight.new_empty(len(frequencies), 2 * d, 2 * c)
    blocks[:, :d, :c], blocks[:, :d, c:], blocks[:, d:, :c], blocks[:, d:, c:] = re, -im, im, re
    return blocks
