"""Freeze part of a module so that it neither learns nor changes its statistics."""

from torch import nn


class FrozenModule(nn.Module):
    """Wrap a module so that it neither learns nor changes its statistics.

    Its parameters stop requiring gradients, and it stays in eval mode
    whatever ``train()`` skorch calls each batch, so BatchNorm keeps the
    running statistics it had. :meth:`unwrap` gives the module back as it
    was (trainable, in the caller's mode).

    Parameters
    ----------
    module : torch.nn.Module

    Examples
    --------
    >>> from torch import nn
    >>> frozen = FrozenModule(nn.BatchNorm1d(3)).train()
    >>> frozen.module.training, frozen.module.weight.requires_grad
    (False, False)
    >>> frozen.unwrap().weight.requires_grad
    True
    """

    def __init__(self, module):
        super().__init__()
        self.module = module
        self.module.requires_grad_(False)
        self.module.eval()

    def train(self, mode=True):
        super().train(mode)
        self.module.eval()
        return self

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def unwrap(self):
        """Return the wrapped module, trainable again and in this wrapper's mode."""
        self.module.requires_grad_(True)
        return self.module.train(self.training)
