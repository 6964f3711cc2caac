"""The paper's convolutional (variational) autoencoder."""

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules import module as module_lib

from ._layout import depth_to_space
from ._onednn import onednn_multiplies as _onednn_multiplies, product as _product
from ._spectral import is_pixel_major, spectral_convolution, spectral_input_gradient, spectral_pays

#: Layers that act on each element alone, whatever the memory order (:func:`_outputs`).
_ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Identity)

#: Spatial sizes the architecture reconstructs exactly: 64 + 16 n.
MIN_SIZE, SIZE_STEP = 64, 16


def valid_size(size):
    """Return whether ``size`` (an image height or width) is 64 + 16 n."""
    return size >= MIN_SIZE and (size - MIN_SIZE) % SIZE_STEP == 0


def _encoded_size(size):
    # Four unpadded 4x4 convolutions with stride 2.
    for _ in range(4):
        size = (size - 4) // 2 + 1
    return size


def _decoder_seed_size(size):
    # Side of the 1024-channel map that the four transposed convolutions grow
    # back to exactly ``size``: g(s) = (s - 64) / 16 + 1.
    return (size - MIN_SIZE) // SIZE_STEP + 1


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder of Pihlgren et al. (2020), optionally variational.

    The encoder is four 4x4, stride-2 convolutions (3-32-64-128-256 channels,
    each with BatchNorm and ReLU) followed by two linear heads giving the mean
    and log-variance of the embedding. The decoder maps the embedding to a
    1024-channel seed map and grows it back with four transposed convolutions
    (kernels 5, 5, 6, 6; stride 2), ending in a sigmoid.

    Parameters
    ----------
    z_dim : int
        Size of the embedding.
    image_size : tuple of int
        ``(H, W)``, each of the form 64 + 16 n.
    variational : bool, default=False
        If True, ``forward`` samples the embedding with the
        reparameterisation trick while training; otherwise it uses the mean.

    Examples
    --------
    >>> import torch
    >>> ae = ConvAutoencoder(z_dim=8, image_size=(64, 80))
    >>> recon, mu, logvar = ae(torch.rand(2, 3, 64, 80))
    >>> tuple(recon.shape), tuple(mu.shape)
    ((2, 3, 64, 80), (2, 8))
    """

    def __init__(self, z_dim, image_size, variational=False):
        super().__init__()
        height, width = image_size
        if not (valid_size(height) and valid_size(width)):
            raise ValueError(f"image_size must be 64 + 16 n on both sides, got {image_size}")
        self.z_dim = z_dim
        self.variational = variational

        layers, channels = [], [3, 32, 64, 128, 256]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        n_encoded = 256 * _encoded_size(height) * _encoded_size(width)
        self.fc_mu = nn.Linear(n_encoded, z_dim)
        self.fc_logvar = nn.Linear(n_encoded, z_dim)

        self._seed_shape = (1024, _decoder_seed_size(height), _decoder_seed_size(width))
        self.decoder_input = nn.Sequential(
            nn.Linear(z_dim, 1024 * self._seed_shape[1] * self._seed_shape[2]), nn.ReLU(inplace=True)
        )
        layers, channels = [], [1024, 128, 64, 32]
        for (c_in, c_out), kernel in zip(zip(channels[:-1], channels[1:]), (5, 5, 6)):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, kernel, stride=2),
                nn.BatchNorm2d(c_out),
                # In place: neither BatchNorm's nor Linear's backward needs
                # its output, so this saves one activation-sized tensor per
                # layer and a pass over memory (measured in benchmarks/).
                nn.ReLU(inplace=True),
            ]
        self.decoder = nn.Sequential(*layers, nn.ConvTranspose2d(32, 3, 6, stride=2), nn.Sigmoid())

    def encode(self, x):
        """Return the mean and log-variance of the embedding of images ``x``."""
        h = _run(self.encoder, x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z):
        """Return images in [0, 1] decoded from embeddings ``z``."""
        h = self.decoder_input(z).view(-1, *self._seed_shape)
        h = _seed_deconv(self.decoder[0], h)
        if self.decoder[1].weight.is_contiguous(memory_format=torch.channels_last):
            # Keep the rest of the decoder in the module's memory format.
            h = h.contiguous(memory_format=torch.channels_last)
        return _run(self.decoder[1:], h)

    def forward(self, x):
        """Return ``(reconstruction, mu, logvar)`` for images ``x`` in [0, 1]."""
        mu, logvar = self.encode(x)
        z = mu
        if self.variational and self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def autocast_dtype(device_type):
    """The dtype autocast computes in on ``device_type`` now, or None when it is off.

    ``torch.is_autocast_enabled(device_type)`` and ``torch.get_autocast_dtype``
    are torch 2.4's; older versions only have per-device functions.

    Parameters
    ----------
    device_type : str
        ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    dtype : torch.dtype or None

    Examples
    --------
    >>> autocast_dtype("cpu") is None
    True
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     autocast_dtype("cpu")
    torch.bfloat16
    """
    if hasattr(torch, "get_autocast_dtype"):
        enabled = torch.is_autocast_enabled(device_type)
        return torch.get_autocast_dtype(device_type) if enabled else None
    if device_type == "cpu":  # pragma: no cover - torch < 2.4
        return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
    return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None  # pragma: no cover


def _run(layers, h):
    """Apply ``layers`` (an ``nn.Sequential``) to ``h``, convolutions through :func:`_conv`.

    A ReLU that a max pool follows runs after it (:func:`_pools_first`);
    an in-place ReLU that a convolution follows runs inside it
    (:func:`_relu_folds`). Used for the autoencoder's encoder and decoder
    and for a perceptual loss network. Any other module (e.g. the encoder
    wrapped by ``fit_decoder``'s ``FrozenModule``, which needs no
    gradients, or a user's own loss network class) is simply called.
    """
    if type(layers) is not nn.Sequential or _has_hooks(layers):
        # A subclass may define its own forward, and a hook must see the
        # container run.
        return layers(h)
    for _, h in _outputs(layers, h):
        pass
    return h


def _outputs(layers, h, cuts=()):
    """Yield ``(i, layers[:i](h))`` as :func:`_run` computes them, ``i`` counting from 1.

    A ReLU that a max pool follows runs after it (:func:`_pools_first`),
    and an in-place ReLU that a convolution follows runs inside it
    (:func:`_relu_folds`). Both skip the ReLU's own output: not for a ReLU
    whose position is in ``cuts``, where a caller reads it.
    """
    layers = list(layers)
    # Where only elementwise layers follow, a frozen convolution may hand
    # on its maps pixel-major, as a spectral one writes them (_spectral);
    # a pooling or convolution after it would first copy them back.
    tail = len(layers)
    while tail and type(layers[tail - 1]) in _ELEMENTWISE:
        tail -= 1
    i = 0
    while i < len(layers):
        pair = i + 1 not in cuts and i + 1 < len(layers)
        if pair and _pools_first(layers[i], layers[i + 1]):
            h = layers[i](layers[i + 1](h))
            i += 2
        elif pair and _relu_folds(layers[i], layers[i + 1], h):
            h = _conv(layers[i + 1], h, relu_first=True)
            i += 2
        else:
            h = _apply(layers[i], h, pixel_major=i + 1 >= tail)
            i += 1
        yield i, h


def _pools_first(relu, pool):
    """Whether ``pool(relu(h))`` may run as ``relu(pool(h))``.

    ReLU is monotone, so max pooling commutes with it exactly, and so do the
    gradients: where a window's maximum is positive both orders pick the
    same pixel, and where it is not both give zero (at most the sign of a
    zero differs). Pooling first leaves the ReLU and its backward a quarter
    of the pixels (each ReLU a max pool follows: AlexNet's first, the end of
    each VGG block, ResNet's stem): an AlexNet loss's forward and backward
    at batch 512 take 148 instead of 153 ms (``python
    benchmarks/loss_kernels.py``), with equal values and gradients. Not when
    a hook would see either module's input.
    """
    return (
        type(relu) is nn.ReLU
        and type(pool) is nn.MaxPool2d
        and not pool.return_indices
        and not _has_hooks(relu)
        and not _has_hooks(pool)
    )


def _relu_folds(relu, conv, h):
    """Whether ``conv(relu(h))`` may run as one :class:`_Convolution` with ``relu_first``.

    The ReLU's backward then masks the convolution's freshly computed input
    gradient in place instead of writing a new tensor: on the encoder's
    second convolution at batch 512 (a 60 MiB gradient), 36 against 53 ms
    for the input gradient and the ReLU's backward together. Only for an
    in-place ReLU (which overwrites ``h`` anyway) on a non-leaf or
    gradient-free ``h``, before a convolution that :func:`_conv` runs as a
    :class:`_Convolution`, with no hooks on either, and only where the
    convolution computes in ``h``'s own dtype: where autocast casts ``h``
    first, the ReLU keeps its own node.
    """
    if not (type(relu) is nn.ReLU and relu.inplace and not _has_hooks(relu)
            and type(conv) in (nn.Conv2d, nn.ConvTranspose2d)
            and (h.grad_fn is not None or not h.requires_grad)
            and h._base is None):  # a view's base would keep an unmasked gradient
        return False
    params = _onednn_params(conv, h)
    return _runs_as_convolution(conv, params) and _compute_dtype(conv.weight, h, params) in (None, h.dtype)


def _apply(layer, h, pixel_major=False):
    """``layer(h)``, through :func:`_conv` if ``layer`` is a plain convolution.

    Subclasses (quantisation-aware or "same"-padding convolutions) may
    override ``forward``, so only the two stock classes qualify.
    """
    if type(layer) in (nn.Conv2d, nn.ConvTranspose2d):
        return _conv(layer, h, pixel_major=pixel_major)
    return layer(h)


def _conv(conv, h, relu_first=False, pixel_major=False):
    """``conv(h)`` for a (transposed) convolution; on the CPU, the way oneDNN runs it fastest.

    Departures from the module's own call, each measured in benchmarks/
    at batch 512 and each exact up to float rounding:

    - The bias gradient is summed apart. oneDNN computes a convolution's
      weight and bias gradients in one kernel whose bias reduction is slow:
      for the 64-to-32 transposed convolution, 66 ms with the bias and 41 ms
      without, while summing the output gradient takes 2 ms.
    - A stride-s transposed convolution to a few channels (the decoder's
      last, 32 to 3) runs forward as a stride-1 convolution to ``s*s``
      times the channels followed by a depth-to-space copy (see
      :func:`_phase_deconvolution`): 27 vs 54 ms in float32, 17 vs 37 ms in
      bf16. Its backward stays oneDNN's own.
    - Under bf16 autocast, the layer whose bf16 kernel is slower than its
      float32 one computes in float32 (see :func:`_bf16_is_slower`).
    - A convolution whose weight is frozen (a perceptual loss network's)
      keeps no copy of its input for the backward pass, which needs only
      the input gradient (see :func:`_input_gradient`); a strided one of a
      few-channel image computes that gradient through space-to-depth,
      four times as fast (:func:`_space_to_depth_input_gradient`).
    - A convolution with at most 4 output pixels (the encoder's last) runs
      as one matrix product of its input's patches
      (:func:`_patch_convolution`): forward 2.0x (fp32) and 1.7x (bf16)
      as fast, backward 1.7x and 4.8x.
    - With ``pixel_major`` (only elementwise layers follow), a frozen
      stride-1 convolution of small maps (AlexNet's second layer) runs
      forward and backward as a product of spectra and returns its maps in
      that product's pixel-major memory order (:mod:`._spectral`): 12.7 vs
      24.9 ms forward, 12.3 vs 23.2 ms for the input gradient.
    - With ``relu_first``, the in-place ReLU before the convolution runs
      inside it: ``h`` is overwritten by its ReLU, whose backward the
      convolution's backward computes in place (:func:`_relu_folds` says
      when).
    """
    params = _onednn_params(conv, h)
    if _runs_as_convolution(conv, params):
        return _Convolution.apply(h, conv.weight, conv.bias, params, relu_first)
    if relu_first:  # not reached through _relu_folds, which checks the same
        h = torch.relu_(h)
    if _runs_frozen(conv, params):
        return _FrozenConvolution.apply(h, conv.weight, conv.bias, params, pixel_major)
    return conv(h)


def _runs_frozen(conv, params):
    """Whether :func:`_conv` runs ``conv`` as a :class:`_FrozenConvolution` (a loss network's), given :func:`_onednn_params`."""
    return params is not None and not params[3] and not conv.weight.requires_grad


def _runs_as_convolution(conv, params):
    """Whether :func:`_conv` runs ``conv`` as a :class:`_Convolution`, given :func:`_onednn_params`."""
    return params is not None and not _runs_frozen(conv, params) and conv.bias is not None


def _onednn_params(conv, h):
    """``conv``'s parameters in ``aten.convolution``'s order where :func:`_conv` departs from its call, else None."""
    if (h.device.type != "cpu" or conv.padding_mode != "zeros"
            or isinstance(conv.padding, str) or _has_hooks(conv)):
        # Measured on oneDNN only; cuDNN keeps the module's own path, and so
        # does a convolution someone hooks into (pruning, inspection).
        return None
    transposed = isinstance(conv, nn.ConvTranspose2d)
    output_padding = conv.output_padding if transposed else (0, 0)
    return conv.stride, conv.padding, conv.dilation, transposed, output_padding, conv.groups


def _has_hooks(module):
    """Whether hooks, the module's own or global ones, forward or backward, would see ``module`` run."""
    return bool(
        module._forward_hooks or module._forward_pre_hooks
        or module._backward_hooks or module._backward_pre_hooks
        or module_lib._global_forward_hooks or module_lib._global_forward_pre_hooks
        or module_lib._global_backward_hooks or module_lib._global_backward_pre_hooks
    )


def _in_dtype(dtype, x, weight, bias):
    """A convolution's operands in ``dtype``, as autocast casts them; unchanged for None.

    The callers then run the convolution with autocast off, so that it
    computes in this dtype (autocast's, or float32 where that is faster).
    A missing bias stays None.
    """
    if dtype is None:
        return x, weight, bias
    return x.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype)


class _Convolution(torch.autograd.Function):
    """A (transposed) convolution with the forward and backward of :func:`_conv`.

    With ``relu_first`` it first overwrites its input ``x`` with ``relu(x)``,
    as the in-place ReLU module before it would (:func:`_relu_folds`), and
    returns the gradient with respect to the ReLU's input.
    First-order gradients only (``once_differentiable``): double backward
    and ``torch.func`` transforms are not supported.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, params, relu_first=False):
        if relu_first:
            # The in-place ReLU before this convolution (_relu_folds): x is
            # overwritten as the module would overwrite it, and the saved x
            # is the ReLU's output, whose sign masks the input gradient.
            x.relu_()
        x, weight, bias = _in_dtype(_compute_dtype(weight, x, params), x, weight, bias)
        patches = _patches_pay(x, weight, params)
        with torch.autocast(x.device.type, enabled=False):
            if _phase_pays(weight, params):
                out = _phase_deconvolution(x, weight, bias, params[0][0])
            elif patches:
                out = _patch_convolution(x, weight, bias, params[0])
            else:
                out = torch.ops.aten.convolution(x, weight, bias, *params)
        ctx.params, ctx.relu_first, ctx.patches = params, relu_first, patches
        ctx.save_for_backward(x, weight)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        if ctx.patches:
            grad_x, grad_weight = _patch_convolution_backward(grad, x, weight, ctx.params[0], need_x, need_weight)
        else:
            grad_x, grad_weight, _ = torch.ops.aten.convolution_backward(
                grad, x, weight, None, *ctx.params, [need_x, need_weight, False]
            )
        if ctx.relu_first and grad_x is not None:
            # The ReLU's backward, written over the gradient this step just
            # made (a new tensor costs as much again: _relu_folds).
            grad_x = torch.ops.aten.threshold_backward.grad_input(grad_x, x, 0, grad_input=grad_x)
        # Summed in the gradient's own dtype (float accumulation, bf16
        # result under bf16): asking for float32 would first copy the whole
        # bf16 gradient (24 vs 1 ms for 512x32x30x30).
        grad_bias = grad.sum((0, 2, 3)) if need_bias else None
        return grad_x, grad_weight, grad_bias, None, None


def _compute_dtype(weight, x, params):
    """The dtype :class:`_Convolution` computes in: autocast's, float32 where bf16 is slower, or None (``x``'s own)."""
    dtype = autocast_dtype(x.device.type)
    if dtype == torch.bfloat16 and _bf16_is_slower(weight, params):
        return torch.float32
    return dtype


class _FrozenConvolution(torch.autograd.Function):
    """A convolution whose weight does not train: keeps the weight, not the input, for backward.

    Autograd's convolution keeps its input for the weight gradient even
    when no weight gradient is wanted, as in a perceptual loss network; the
    input gradient needs only the weight (:func:`_input_gradient`). Should
    the weight require gradients after all (``torch.func`` over the
    weights), the input is kept and its gradient computed. The backward is
    itself differentiable: double backward and ``torch.func.grad`` work.
    Where :func:`._spectral.spectral_pays`, forward and input gradient go
    through the maps' spectra, the latter unless it must be differentiable.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x, weight, bias, params, pixel_major=False):
        device = x.device.type
        x, weight, bias = _in_dtype(autocast_dtype(device), x, weight, bias)
        if (pixel_major and spectral_pays(x.shape[2:], x, weight, params)
                and (bias is None or bias.dtype == x.dtype)):
            return spectral_convolution(x, weight, bias, params[1])
        with torch.autocast(device, enabled=False):
            return torch.ops.aten.convolution(x, weight, bias, *params)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, _, params = inputs[:4]
        ctx.params, ctx.x_size = params, x.shape[2:]
        ctx.save_for_backward(weight, x if weight.requires_grad else None)

    @staticmethod
    def backward(ctx, grad):
        weight, x = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        weight = weight.to(grad.dtype)  # the dtype the forward computed in
        grad_x = _input_gradient(grad, weight, ctx.x_size, ctx.params) if need_x else None
        grad_weight = None
        if need_weight:
            grad_weight = torch.ops.aten.convolution_backward(
                grad, x.to(grad.dtype), weight, None, *ctx.params, [False, True, False]
            )[1]
        grad_bias = grad.sum((0, 2, 3)) if need_bias else None
        return grad_x, grad_weight, grad_bias, None, None


def _input_gradient(grad, weight, size, params):
    """The input gradient of a convolution, from its output gradient and weight alone.

    The transposed convolution of ``grad``: the same oneDNN kernel as the
    convolution's own backward (bit-identical, measured), which however
    needs the input tensor and copies even a stand-in for it (27 MB for
    AlexNet's first layer at batch 512). A strided convolution of a
    few-channel image goes through :func:`_space_to_depth_input_gradient`,
    one that ran spectrally through :func:`._spectral.spectral_input_gradient`.
    """
    if _space_to_depth_pays(weight, params):
        return _space_to_depth_input_gradient(grad, weight, size, params)
    # Where the forward ran spectrally (its maps, and so their gradient,
    # are pixel-major); not when the gradient must itself be differentiable
    # (double backward, torch.func): oneDNN's products are not, the
    # transposed convolution is.
    if not torch.is_grad_enabled() and is_pixel_major(grad) and spectral_pays(size, grad, weight, params):
        return spectral_input_gradient(grad, weight, size, params[1])
    stride, padding, dilation, _, _, groups = params
    output_padding = [
        size[i] - ((grad.shape[2 + i] - 1) * stride[i] - 2 * padding[i]
                   + dilation[i] * (weight.shape[2 + i] - 1) + 1)
        for i in range(2)
    ]
    return F.conv_transpose2d(grad, weight, None, stride, padding, output_padding, groups, dilation)


def _space_to_depth_pays(weight, params):
    """Whether a convolution is a strided one of a few-channel image.

    The input gradient of such a first layer (AlexNet's 11x11 stride-4,
    ResNet's 7x7 stride-2) keeps oneDNN on a slow path: 85 ms against 19 ms
    through :func:`_space_to_depth_input_gradient` for AlexNet's at batch
    512 in float32, 54 vs 12 ms in bf16 (``python
    benchmarks/loss_kernels.py``). Its forward does not: there the plain
    convolution beats a space-to-depth one (13 vs 20 ms, bf16 9 vs 10 ms),
    so only the backward takes this path.
    """
    stride, padding, dilation, transposed, _, groups = params
    return (
        not transposed
        and weight.shape[1] <= 4
        and groups == 1
        and tuple(dilation) == (1, 1)
        and stride[0] == stride[1] > 1
    )


def _space_to_depth_input_gradient(grad, weight, size, params):
    """:func:`_input_gradient` of a strided convolution, through space-to-depth.

    The convolution equals a stride-1 one over the zero-padded image cut
    into ``s x s`` blocks, one block per pixel stacked along the channels
    (:func:`~skperceptual._layout.space_to_depth`), with the kernel
    zero-padded to a multiple of ``s`` and rearranged the same way: the same
    sum of products plus exact zeros. Its input gradient is that stride-1
    convolution's (a transposed convolution of ``grad``), put back into
    pixels by :func:`~skperceptual._layout.depth_to_space` and cropped to
    the unpadded image.
    """
    stride, (pad_h, pad_w) = params[0][0], params[1]
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
    """A stride-``stride`` convolution's kernel for the stride-1 one over space-to-depth blocks.

    Zero-padded to a multiple of the stride, then each ``stride x stride``
    block of taps stacked along the input channels in
    :func:`~skperceptual._layout.space_to_depth`'s order ``(dy, dx, c)``:
    ``(C_out, C_in, k, k)`` becomes ``(C_out, s*s*C_in, ceil(k/s), ceil(k/s))``.
    """
    n_out, n_in, kernel_h, kernel_w = weight.shape
    k_h, k_w = -(-kernel_h // stride), -(-kernel_w // stride)
    blocks = F.pad(weight, (0, k_w * stride - kernel_w, 0, k_h * stride - kernel_h))
    return (
        blocks.view(n_out, n_in, k_h, stride, k_w, stride)
        .permute(0, 3, 5, 1, 2, 4)  # to space_to_depth's channel order: dy, dx, c
        .reshape(n_out, n_in * stride * stride, k_h, k_w)
    )


def _bf16_is_slower(weight, params):
    """Whether oneDNN's bf16 kernel for this convolution is slower than its float32 one.

    Measured for the decoder's 128-to-64 channel transposed convolution
    (kernel 5): forward and backward at batch 512 took 85 ms in bf16 and
    65 ms in float32 (5x5 to 13x13, at 64x64 images), and 239 vs 187 ms at
    96x96. Its other layers run faster in bf16.
    """
    transposed = params[3]
    return transposed and tuple(weight.shape) == (128, 64, 5, 5)


def _patches_pay(x, weight, params):
    """Whether a convolution is one :func:`_patch_convolution` speeds up: at most 4 output pixels.

    oneDNN's direct kernels are slow on such tiny output maps. Measured on
    the encoder's last convolution (128 to 256 channels, 4x4, stride 2,
    6x6 to 2x2 at 64x64 images) at batch 512: forward 9.6 against 4.8 ms
    in float32 and 4.2 against 2.5 ms in bf16, backward 24.5 against
    14.4 ms and 28.6 against 6.0 ms. Only for an unpadded, undilated,
    ungrouped convolution of a channels-last input, whose patches are
    gathered by one copy.
    """
    stride, padding, dilation, transposed, _, groups = params
    if (transposed or groups != 1 or tuple(padding) != (0, 0) or tuple(dilation) != (1, 1)
            or not x.is_contiguous(memory_format=torch.channels_last)):
        return False
    out_h, out_w = _patch_grid(x, weight.shape[2:], stride)
    return out_h >= 1 and out_w >= 1 and out_h * out_w <= 4


def _patch_grid(x, kernel, stride):
    """``(out_h, out_w)``: how many patches an unpadded convolution of ``x`` sees down and across."""
    return tuple((x.shape[2 + i] - kernel[i]) // stride[i] + 1 for i in range(2))


def _kernel_matrix(weight):
    """A convolution's kernel as ``(C_out, k_h * k_w * C_in)``, columns in :func:`_patches`' order."""
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


def _patches(x, kernel, stride):
    """The patches of ``x`` a convolution sees, one per row, as ``(n * out_h * out_w, k_h * k_w * C)``.

    Rows in ``(n, y, x)`` order, columns in ``(k_y, k_x, c)`` order: a
    strided view of ``x`` copied once (channels-last, the copy reads
    contiguous runs of ``C``).
    """
    n, c = x.shape[:2]
    (k_h, k_w), (s_h, s_w) = kernel, stride
    out_h, out_w = _patch_grid(x, kernel, stride)
    st_n, st_c, st_h, st_w = x.stride()
    view = x.as_strided((n, out_h, out_w, k_h, k_w, c), (st_n, s_h * st_h, s_w * st_w, st_h, st_w, st_c))
    return view.reshape(n * out_h * out_w, k_h * k_w * c)


def _patch_convolution(x, weight, bias, stride):
    """An unpadded convolution as one matrix product of ``x``'s patches (:func:`_patches`) and the kernel.

    The same sums of products as the convolution, in another order. The
    output is channels-last, like ``x``.
    """
    out_h, out_w = _patch_grid(x, weight.shape[2:], stride)
    out = _product(_patches(x, weight.shape[2:], stride), _kernel_matrix(weight).t()) + bias
    out = out.view(len(x), out_h, out_w, weight.shape[0]).permute(0, 3, 1, 2)
    # A copy (of at most 4 pixels), not a view: an output of a custom
    # Function that is a view may not be modified in place.
    return out.clone(memory_format=torch.channels_last)


def _patch_convolution_backward(grad, x, weight, stride, need_x, need_weight):
    """The input and weight gradients of :func:`_patch_convolution` (None where not needed)."""
    n, c_in, h, w = x.shape
    c_out, _, k_h, k_w = weight.shape
    out_h, out_w = grad.shape[2:]
    grad = grad.permute(0, 2, 3, 1).reshape(-1, c_out)  # a view for a channels-last gradient
    grad_x = grad_weight = None
    if need_weight:
        patches = _patches(x, (k_h, k_w), stride)
        grad_weight = _product(grad.t(), patches).view(c_out, k_h, k_w, c_in).permute(0, 3, 1, 2)
    if need_x:
        grad_patches = _product(grad, _kernel_matrix(weight)).view(n, out_h, out_w, k_h, k_w, c_in)
        # Overlapping patches add up in float32, as the convolution's own
        # backward accumulates, also under bf16.
        grad_x = x.new_zeros(n, h, w, c_in, dtype=torch.promote_types(x.dtype, torch.float32))
        for y in range(out_h):  # at most 4 output pixels (_patches_pay)
            for x_ in range(out_w):
                top, left = y * stride[0], x_ * stride[1]
                grad_x[:, top:top + k_h, left:left + k_w] += grad_patches[:, y, x_]
        grad_x = grad_x.to(x.dtype).permute(0, 3, 1, 2)
    return grad_x, grad_weight


def _phase_pays(weight, params):
    """Whether a transposed convolution is one :func:`_phase_deconvolution` speeds up.

    Measured: the 32-to-3 layer runs twice as fast; the 64-to-32 one does
    not (44 vs 40 ms), so only outputs of at most 4 channels qualify.
    """
    stride, padding, dilation, transposed, output_padding, groups = params
    kernel = weight.shape[2:]
    return (
        transposed
        and weight.shape[1] <= 4
        and stride[0] == stride[1] > 1
        and kernel[0] % stride[0] == 0
        and kernel[1] % stride[1] == 0
        and tuple(padding) == (0, 0)
        and tuple(output_padding) == (0, 0)
        and tuple(dilation) == (1, 1)
        and groups == 1
    )


def _phase_deconvolution(x, weight, bias, stride):
    """A transposed convolution as a stride-1 convolution and a depth-to-space copy.

    Output pixel ``(s*Y + a, s*X + b)`` of a stride-``s`` transposed
    convolution only meets kernel taps ``(s*t + a, s*u + b)``: for each of
    the ``s*s`` phases ``(a, b)`` it is an ordinary convolution of the input
    (padded by ``k/s - 1``) with those taps, flipped. Stacking the phases as
    channels gives one convolution to ``s*s*C_out`` channels, which
    :func:`~skperceptual._layout.depth_to_space` interleaves into the output.
    """
    c_in, c_out, k_h, k_w = weight.shape
    t_h, t_w = k_h // stride, k_w // stride
    phases = (
        weight.view(c_in, c_out, t_h, stride, t_w, stride)
        .flip(2, 4)
        .permute(3, 5, 1, 0, 2, 4)  # depth_to_space's channel order: a, b, c
        .reshape(stride * stride * c_out, c_in, t_h, t_w)
    )
    if x.is_contiguous(memory_format=torch.channels_last):
        phases = phases.contiguous(memory_format=torch.channels_last)
    out = F.conv2d(x, phases, bias.repeat(stride * stride), padding=(t_h - 1, t_w - 1))
    return depth_to_space(out, stride)


def _seed_deconv(deconv, h):
    """Apply the first transposed convolution ``deconv`` to the seed map ``h``.

    Same parameters and the same result as ``deconv(h)``, computed as one
    matrix product (:func:`_matmul`) followed by col2im (``F.fold``). The
    seed map is tiny (1x1 at 64x64, 3x3 at 96x96) with 1024 channels, a
    shape for which the CPU's (oneDNN) transposed convolution is about ten
    times slower than the equivalent matrix product; measured in
    benchmarks/.
    """
    n, c_in, height, width = h.shape
    _, c_out, k_h, k_w = deconv.weight.shape
    s_h, s_w = deconv.stride
    weight = deconv.weight
    if height == width == 1:
        if weight.is_contiguous(memory_format=torch.channels_last):
            # A channels-last weight is (C_in, k, k, C_out) in memory: read
            # it as a matrix without copying, and get a channels-last output.
            cols = _matmul(h.flatten(1), weight.permute(0, 2, 3, 1).reshape(c_in, -1))
            out = cols.view(n, k_h, k_w, c_out).permute(0, 3, 1, 2)
        else:
            out = _matmul(h.flatten(1), weight.flatten(1)).view(n, c_out, k_h, k_w)
    else:
        # (n*H*W, C_in) @ (C_in, C_out*k*k): every input pixel's k x k patch,
        # summed into place by col2im.
        pixels = h.flatten(2).transpose(1, 2).reshape(n * height * width, c_in)
        cols = _matmul(pixels, weight.flatten(1)).view(n, height * width, -1)
        out_size = ((height - 1) * s_h + k_h, (width - 1) * s_w + k_w)
        out = F.fold(cols.transpose(1, 2), out_size, (k_h, k_w), stride=(s_h, s_w))
    return out + deconv.bias.view(1, -1, 1, 1)


def _matmul(a, b):
    """``a @ b`` for matrices, on the CPU in float32 through oneDNN rather than MKL.

    PyTorch multiplies float32 matrices on the CPU with MKL, whose kernels
    ran at half of oneDNN's rate on this project's AMD EPYC: the seed map's
    product at batch 512 (512x1024 by 1024x3200) took 15.4 ms against
    7.1 ms, and its two gradients 15.1 and 15.4 ms against 7.2 and 7.4 ms
    (``python benchmarks/loss_kernels.py``); training steps of either loss
    ran 1.05x as fast. Both sum the same products in float32, in another
    order: equal up to float rounding. Elsewhere (under
    autocast, whose bf16 products oneDNN already runs, in other dtypes, on
    other devices, or without oneDNN's operator) this is ``a @ b``.

    Parameters
    ----------
    a : torch.Tensor of shape (n, k)
    b : torch.Tensor of shape (k, m)

    Returns
    -------
    product : torch.Tensor of shape (n, m)
        Differentiable in ``a`` and ``b`` (first-order gradients only on
        the oneDNN path, like :class:`_Convolution`).

    Examples
    --------
    >>> a, b = torch.ones(2, 3), torch.ones(3, 4)
    >>> _matmul(a, b).tolist()
    [[3.0, 3.0, 3.0, 3.0], [3.0, 3.0, 3.0, 3.0]]
    """
    if autocast_dtype("cpu") is None and _onednn_multiplies(a, b):
        return _OneDNNMatmul.apply(a, b)
    return a @ b


class _OneDNNMatmul(torch.autograd.Function):
    """``a @ b`` and both its gradients through oneDNN's linear operator (:func:`_matmul`)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _product(a, b)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        grad_a = _product(grad, b.t()) if ctx.needs_input_grad[0] else None
        grad_b = _product(a.t(), grad) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b
