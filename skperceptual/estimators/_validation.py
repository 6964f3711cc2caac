"""Checking and reshaping image input before any work starts."""

import math

import numpy as np
import torch
from sklearn.utils.validation import check_non_negative, validate_data

from ..models.autoencoder import MIN_SIZE, SIZE_STEP, valid_size


def _valid_sizes_near(size, count=4):
    below = max(MIN_SIZE, MIN_SIZE + (size - MIN_SIZE) // SIZE_STEP * SIZE_STEP)
    return [below + SIZE_STEP * i for i in range(count)]


def _to_numpy(X):
    # Torch tensors become numpy views (no copy for CPU tensors), so that
    # scikit-learn's checks apply to them too.
    if hasattr(X, "detach") and hasattr(X, "cpu"):
        if getattr(X, "is_meta", False):
            raise ValueError("X is a torch tensor on the meta device, which holds shapes but no data. "
                             "Pass the images themselves, e.g. a CPU or CUDA tensor or a numpy array.")
        X = X.detach().cpu()
        if X.dtype == torch.bfloat16:
            # numpy has no bfloat16; float32 holds every bfloat16 exactly.
            X = X.float()
        return X.numpy()
    return X


def resolve_device(device):
    """Map ``"auto"`` to ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def check_device(device, requested=None):
    """Return ``device`` as a string after checking that torch can use it here.

    Parameters
    ----------
    device : str or torch.device
        The device to train and transform on ("auto" already resolved).
    requested : str or torch.device, default=None
        The ``device`` parameter as the user passed it, for the message.

    Returns
    -------
    device : str

    Raises
    ------
    ValueError
        When ``device`` is not a torch device name, or is not available on
        this machine; raised before any data is touched or weights loaded.
    """
    requested = device if requested is None else requested
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(
            f"device={requested!r} is not a torch device: {exc}. Pass device='auto' "
            "(CUDA when available, else the CPU), 'cpu', 'cuda' or 'cuda:<index>'."
        ) from None
    try:
        # Allocating nothing still initialises the backend, which is what
        # fails for an absent GPU or an out-of-range index.
        torch.empty(0, device=parsed)
    except (RuntimeError, AssertionError, ValueError) as exc:
        raise ValueError(
            f"device={requested!r} is not available on this machine: {exc}. Pass "
            "device='auto' (CUDA when available, else the CPU) or device='cpu'."
        ) from None
    return str(device)


def check_images(estimator, X, *, reset, image_shape=None, any_size=False):
    """Validate images and return them as a (n, C, H, W) numpy array.

    Parameters
    ----------
    estimator : BaseEstimator
        Receives ``n_features_in_`` (C * H * W) when ``reset`` is True, and is
        checked against it otherwise.
    X : array-like or torch.Tensor
        Either (n, C, H, W) or flat (n, C * H * W); uint8 in [0, 255] or
        floating in [0, 1]; C is 1 or 3; H and W are 64 + 16 k.
    reset : bool
        True in ``fit``; False when the images must match the fitted shape.
    image_shape : tuple of int, default=None
        ``(C, H, W)`` of flat input. When None, flat input is taken as the
        fitted shape (``reset=False``) or as square 3-channel images.
    any_size : bool, default=False
        Accept any height and width, not only the autoencoder's 64 + 16 k
        (for a frozen network, which checks its own minimum size).

    Returns
    -------
    images : ndarray of shape (n, C, H, W)
        A view of ``X`` whenever possible: never converted to float.

    Raises
    ------
    ValueError or TypeError
        With the fix in the message, for every kind of malformed input.
    """
    X = _to_numpy(X)
    ndim = getattr(X, "ndim", None)
    if ndim is None:
        X = np.asarray(X)
        ndim = X.ndim
    if ndim == 4:
        shape = tuple(int(s) for s in X.shape[1:])
        if image_shape is not None and tuple(int(s) for s in image_shape) != shape:
            raise ValueError(
                f"image_shape={tuple(image_shape)} contradicts the 4-D input of images "
                f"shaped {shape}. image_shape only describes flat 2-D input: pass "
                "image_shape=None with 4-D input, or the images' own shape."
            )
        flat = X.reshape(X.shape[0], math.prod(shape))
    elif ndim == 2:
        flat, shape = X, None
    else:
        hint = " Add a channel axis with X[:, None]." if ndim == 3 else ""
        raise ValueError(
            f"Expected images as a 4-D array (n_samples, channels, height, width) or a "
            f"2-D array (n_samples, channels * height * width); got {ndim}-D input.{hint}"
        )

    if not reset and shape is not None:
        _check_fitted_shape(estimator, shape)
    try:
        flat = validate_data(estimator, flat, reset=reset, dtype="numeric", ensure_min_samples=1)
    except ValueError as exc:
        if "sequence" not in str(exc):
            raise
        # numpy's "setting an array element with a sequence": arrays inside cells.
        raise ValueError(
            "X holds an array in each cell (e.g. a DataFrame column of images), not one array of images. "
            "Stack them first: np.stack(df['image'].to_numpy()) gives (n_samples, C, H, W)."
        ) from None
    if flat.dtype != np.uint8 and not np.issubdtype(flat.dtype, np.floating):
        raise TypeError(
            f"Images must be uint8 (0-255) or floating point (0-1); got dtype {flat.dtype}. "
            "Convert with X.astype(np.uint8) or X.astype(np.float32) / 255 as appropriate."
        )

    if flat.dtype != np.uint8 and flat.size:
        try:
            # scikit-learn's own check, so that its standard message leads.
            check_non_negative(flat, type(estimator).__name__)
        except ValueError as exc:
            raise ValueError(
                f"{exc} Floating point images must lie in [0, 1]: rescale them, "
                "e.g. (X - X.min()) / (X.max() - X.min()), or pass uint8."
            ) from None
        high = flat.max()
        if high > 1:
            raise ValueError(
                f"Floating point images must lie in [0, 1]; got values up to {high:g}. "
                "Divide 0-255 data by 255, or pass it as uint8."
            )

    if shape is None:
        shape = _flat_image_shape(estimator, flat.shape[1], reset, image_shape)
    channels, height, width = shape
    if channels not in (1, 3):
        raise ValueError(
            f"Images must have 1 or 3 channels on axis 1 (channels first); got {channels} "
            f"in shape {shape}. For channels-last arrays use X.transpose(0, 3, 1, 2)."
        )
    for name, size in (("height", height), ("width", width)):
        if not any_size and not valid_size(size):
            raise ValueError(
                f"Image {name} must be 64 + 16 k pixels (64, 80, 96, 112, ...); got {size}. "
                f"Resize the images, e.g. to {_valid_sizes_near(size)[:2]}, with "
                "torchvision.transforms.functional.resize or PIL.Image.resize."
            )
    if not reset:
        _check_fitted_shape(estimator, shape)
    return flat.reshape(-1, *shape)


def _flat_image_shape(estimator, n_features, reset, image_shape):
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 3 or math.prod(shape) != n_features:
            raise ValueError(
                f"image_shape={image_shape} does not match the {n_features} features per "
                "row of X: it must be (channels, height, width) with that product."
            )
        return shape
    if not reset:
        return estimator.image_shape_
    side = math.isqrt(n_features // 3)
    if n_features % 3 or side * side * 3 != n_features:
        raise ValueError(
            f"Cannot infer the image shape of flat input with {n_features} features per row: "
            "it is not a square 3-channel image. Pass image_shape=(channels, height, width) "
            "or 4-D input."
        )
    return (3, side, side)


def _check_fitted_shape(estimator, shape):
    if shape != estimator.image_shape_:
        raise ValueError(
            f"X holds images of shape {shape}, but this transformer was fitted on "
            f"{estimator.image_shape_}. Resize them to the fitted shape or refit."
        )
