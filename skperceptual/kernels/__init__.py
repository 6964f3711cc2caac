"""Faster CPU paths for two layers of this library's networks, behind one switch.

oneDNN, PyTorch's CPU backend, runs a few of the shapes these networks
use on slow paths. Each class here is a stock module whose ``forward``
computes the same result another way on the CPU, up to float rounding,
with public PyTorch API only:

- :class:`SeedConvTranspose2d`, the decoder's first transposed convolution:
  its input, the seed map, is tiny (1x1 at 64x64 images) with 1024
  channels, and one matrix product (plus col2im where the map is larger)
  replaces oneDNN's transposed convolution;
- :class:`FrozenConv2d`, a loss network's convolution, whose weight never
  trains: it keeps no copy of its input for the backward pass, and a
  strided one of a few-channel image (AlexNet's first) computes its input
  gradient through space-to-depth.

Both are ordinary modules (hooks and ``state_dict`` work as for the stock
ones) and fall back to the stock computation on other devices, in
configurations they do not cover, and when the switch is off.
The benchmarks page measures what they buy.

The switch: set the environment variable ``SKPERCEPTUAL_CUSTOM_KERNELS=0``
to run every layer as the stock PyTorch module; it is read at each call.
"""

from .frozen import FrozenConv2d, with_frozen_convolutions
from .seed import SeedConvTranspose2d
from .switch import enabled

__all__ = ["FrozenConv2d", "SeedConvTranspose2d", "enabled", "with_frozen_convolutions"]

