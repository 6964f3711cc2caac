"""The paper's convolutional (variational) autoencoder."""

import torch
from torch import nn

from ..kernels import SeedConvTranspose2d

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
            # The first grows the tiny seed map: one matrix product on the CPU.
            deconv = SeedConvTranspose2d if c_in == 1024 else nn.ConvTranspose2d
            layers += [
                deconv(c_in, c_out, kernel, stride=2),
                nn.BatchNorm2d(c_out),
                # In place: neither BatchNorm's nor Linear's backward needs
                # its output, so this saves one activation-sized tensor per
                # layer and a pass over memory (measured in benchmarks/).
                nn.ReLU(inplace=True),
            ]
        self.decoder = nn.Sequential(*layers, nn.ConvTranspose2d(32, 3, 6, stride=2), nn.Sigmoid())

    def encode(self, x):
        """Return the mean and log-variance of the embedding of images ``x``."""
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z):
        """Return images in [0, 1] decoded from embeddings ``z``."""
        h = self.decoder_input(z).view(-1, *self._seed_shape)
        if self.decoder[0].weight.is_contiguous(memory_format=torch.channels_last):
            # The seed map comes from a Linear layer in NCHW; a module
            # converted to channels-last computes in that format throughout.
            h = h.contiguous(memory_format=torch.channels_last)
        return self.decoder(h)

    def forward(self, x):
        """Return ``(reconstruction, mu, logvar)`` for images ``x`` in [0, 1]."""
        mu, logvar = self.encode(x)
        z = mu
        if self.variational and self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar
