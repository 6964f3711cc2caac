"""Space-to-depth and back, with the pixel offset outermost in the channels.

``torch.nn.functional.pixel_unshuffle`` and ``pixel_shuffle`` order the
channels ``(c, dy, dx)``: on a channels-last tensor with 3 colour channels
every copied run is one float, and the copy crawls. Ordering them
``(dy, dx, c)`` instead moves runs of ``s * C`` floats. Callers rearrange
their kernels to the same order, so the channel order is theirs to choose.
"""


def space_to_depth(x, s):
    """``(N, C, H, W)`` to ``(N, s*s*C, H/s, W/s)``, channel ``(dy*s + dx)*C + c``.

    Keeps channels-last inputs channels-last; differentiable.

    Parameters
    ----------
    x : torch.Tensor of shape (N, C, H, W)
        ``H`` and ``W`` multiples of ``s``.
    s : int
        Block side.

    Returns
    -------
    blocks : torch.Tensor of shape (N, s*s*C, H/s, W/s)

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(16.).view(1, 1, 4, 4)
    >>> space_to_depth(x, 2)[0, :, 0, 0].tolist()
    [0.0, 1.0, 4.0, 5.0]
    """
    n, c, h, w = x.shape
    # Channels-last, asked in the form vmap supports (torch.func).
    if x.permute(0, 2, 3, 1).is_contiguous() and c > 1:
        blocks = x.permute(0, 2, 3, 1).reshape(n, h // s, s, w // s, s, c)
        return blocks.permute(0, 1, 3, 2, 4, 5).reshape(n, h // s, w // s, s * s * c).permute(0, 3, 1, 2)
    blocks = x.reshape(n, c, h // s, s, w // s, s)
    return blocks.permute(0, 3, 5, 1, 2, 4).reshape(n, s * s * c, h // s, w // s)


def depth_to_space(x, s):
    """The inverse of :func:`space_to_depth`: ``(N, s*s*C, h, w)`` to ``(N, C, h*s, w*s)``.

    Parameters
    ----------
    x : torch.Tensor of shape (N, s*s*C, h, w)
    s : int
        Block side.

    Returns
    -------
    image : torch.Tensor of shape (N, C, h*s, w*s)

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 3, 8, 8)
    >>> torch.equal(depth_to_space(space_to_depth(x, 4), 4), x)
    True
    """
    n, channels, h, w = x.shape
    c = channels // (s * s)
    # Channels-last, asked in the form vmap supports (torch.func).
    if x.permute(0, 2, 3, 1).is_contiguous() and c > 1:
        blocks = x.permute(0, 2, 3, 1).reshape(n, h, w, s, s, c)
        return blocks.permute(0, 1, 3, 2, 4, 5).reshape(n, h * s, w * s, c).permute(0, 3, 1, 2)
    blocks = x.reshape(n, s, s, c, h, w)
    return blocks.permute(0, 3, 4, 1, 5, 2).reshape(n, c, h * s, w * s)
