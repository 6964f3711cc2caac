"""SVHN: reader for the cropped-digit .mat files, download via torchvision."""

from sklearn.utils import Bunch

from .._atomic import atomic_path
from ._common import _check_n_autoencoder, _damaged_file_error, _missing_files_error, get_data_home

__all__ = ["load_svhn"]

FOLDER = "svhn"
SIZE = 32
# autoencoder <- extra, predictor <- train, test <- test (paper, Table I).
_SPLITS = {"autoencoder": "extra", "predictor": "train", "test": "test"}
# Tiling images this many at a time bounds the temporaries of the copy.
_CHUNK = 4096
# Spelled out for the error message, which must not need torchvision.
_SOURCE = "http://ufldl.stanford.edu/housenumbers/"
CLASS_NAMES = [str(d) for d in range(10)]

DESCR = """\
SVHN classification dataset
---------------------------
Street View House Numbers, cropped digits (Netzer et al., 2011). As in
Pihlgren et al. (IJCNN 2020), the 32x32 digits are tiled 2x2 into 64x64
images ("four copies"), the extra set (531,131 images) is the autoencoder
set, the train set (73,257) the predictor set and the test set (26,032) the
test set. Labels are the digits 0..9 (the files' label 10 stands for 0).
"""


def _filename(split):
    return f"{split}_32x32.mat"


_LAYOUT = "X of shape (32, 32, 3, n_images), dtype uint8, and y with one label in 1..10 per image"


def _check(path):
    """Check the variables of one ``.mat`` file from its header; return its number of images.

    :func:`scipy.io.whosmat` reads shapes and types without the data, so
    every file is checked before any is loaded.
    """
    from scipy.io import whosmat

    try:
        variables = {name: (shape, kind) for name, shape, kind in whosmat(path)}
    except Exception as exc:  # scipy raises ValueError, OSError or MatReadError
        raise _damaged_file_error(
            path, f"is not a readable MATLAB file ({exc})", _SOURCE, _LAYOUT
        ) from None
    missing = [v for v in ("X", "y") if v not in variables]
    if missing:
        raise _damaged_file_error(
            path, f"lacks the variable(s) {missing} (it holds {sorted(variables)})", _SOURCE, _LAYOUT
        )
    (shape, kind), (y_shape, _) = variables["X"], variables["y"]
    if len(shape) != 4 or tuple(shape[:3]) != (SIZE, SIZE, 3) or shape[3] < 1:
        raise _damaged_file_error(path, f"holds X of shape {tuple(shape)}", _SOURCE, _LAYOUT)
    if kind != "uint8":
        # Casting float images in [0, 1] to uint8 would make them all black.
        raise _damaged_file_error(path, f"holds X of type {kind}", _SOURCE, _LAYOUT)
    n_labels = 1
    for size in y_shape:
        n_labels *= size
    if n_labels != shape[3]:
        raise _damaged_file_error(
            path, f"holds {n_labels} labels for {shape[3]} images", _SOURCE, _LAYOUT
        )
    return shape[3]


def _read(path, n_images=None):
    """Read one checked ``.mat`` file into 2x2-tiled (n, 3, 64, 64) uint8 and labels."""
    import numpy as np
    from scipy.io import loadmat

    try:
        mat = loadmat(path, variable_names=["X", "y"])
    except Exception as exc:  # a truncated file passes the header check
        raise _damaged_file_error(
            path, f"is not a readable MATLAB file ({exc})", _SOURCE, _LAYOUT
        ) from None
    X, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    del mat
    valid = np.isin(y, np.arange(1, 11))
    if not valid.all():
        bad = np.unique(y[~valid])[:5].tolist()
        raise _damaged_file_error(path, f"holds labels {bad}", _SOURCE, _LAYOUT)
    n = X.shape[3] if n_images is None else min(int(n_images), X.shape[3])
    out = np.empty((n, 3, 2 * SIZE, 2 * SIZE), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        # (32, 32, 3, n) -> (n, 3, 32, 32): rows and columns keep their roles.
        chunk = X[..., start:stop].transpose(3, 2, 0, 1)
        for rows in (slice(0, SIZE), slice(SIZE, 2 * SIZE)):
            for cols in (slice(0, SIZE), slice(SIZE, 2 * SIZE)):
                out[start:stop, :, rows, cols] = chunk
    labels = y[:n].astype(np.int64)
    labels[labels == 10] = 0
    return out, labels


def _download(folder, split):
    """Fetch one split's file under a temporary name, then rename it."""
    from torchvision.datasets import SVHN
    from torchvision.datasets.utils import download_url

    url, filename, md5 = SVHN.split_list[split]
    with atomic_path(folder / filename) as tmp:
        download_url(url, str(tmp.parent), filename=tmp.name, md5=md5)


def load_svhn(*, data_home=None, download_if_missing=True, n_autoencoder=None):
    """Load the SVHN dataset split and tiled as in the paper.

    Files are read from ``data_home/svhn/`` (``train_32x32.mat``,
    ``test_32x32.mat``, ``extra_32x32.mat``) without network access. Only
    missing files are downloaded, with torchvision's helpers, and only when
    ``download_if_missing`` is True.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Data folder; see :func:`get_data_home`.
    download_if_missing : bool, default=True
        Download missing files. If False, or if the download fails, raise
        :class:`FileNotFoundError` naming the files and the folder they are
        expected in.
    n_autoencoder : int, default=None
        Keep only the first ``n_autoencoder`` extra images; the full, tiled
        set takes 6.5 GB of memory.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With keys:

        autoencoder : Bunch
            ``X``, uint8 of shape (531131, 3, 64, 64); ``y`` is None.
        predictor : Bunch
            ``X`` (73257, 3, 64, 64) and ``y``, int64 digits in 0..9.
        test : Bunch
            ``X`` (26032, 3, 64, 64) and ``y``, int64 digits in 0..9.
        name : str
            ``"svhn"``, the dataset's name in the protocol.
        task : str
            ``"classification"``.
        image_shape : tuple
            ``(3, 64, 64)``.
        target_names : list of str
            ``["0", ..., "9"]``.
        DESCR : str
            Description of the dataset.

    Raises
    ------
    FileNotFoundError
        When files are missing and cannot be downloaded.
    ValueError
        When ``n_autoencoder`` is below 1, or a file is damaged: unreadable,
        without ``X`` or ``y``, with ``X`` not uint8 of shape
        (32, 32, 3, n_images), or with labels not one per image in 1..10.
        The message names the file.

    Notes
    -----
    Each ``.mat`` file is read whole by :func:`scipy.io.loadmat`, so peak
    memory is the tiled output plus one file's untiled images (a quarter of
    its tiled size).

    Examples
    --------
    >>> from skperceptual.datasets import load_svhn
    >>> data = load_svhn(n_autoencoder=10000)  # doctest: +SKIP
    >>> data.predictor.X.shape  # doctest: +SKIP
    (73257, 3, 64, 64)
    """
    _check_n_autoencoder(n_autoencoder)
    folder = get_data_home(data_home) / FOLDER
    missing = [
        _filename(s) for s in _SPLITS.values() if not (folder / _filename(s)).is_file()
    ]
    if missing and not download_if_missing:
        raise _missing_files_error(
            "SVHN", folder, missing, "download_if_missing=False", _SOURCE, True
        )
    for split in _SPLITS.values():
        if _filename(split) in missing:
            try:
                _download(folder, split)
            except Exception as exc:
                raise _missing_files_error(
                    "SVHN", folder, missing, f"download failed: {exc}", _SOURCE, False
                ) from exc

    for split in _SPLITS.values():
        _check(folder / _filename(split))
    parts = {}
    for part, split in _SPLITS.items():
        n = n_autoencoder if part == "autoencoder" else None
        X, y = _read(folder / _filename(split), n)
        parts[part] = Bunch(X=X, y=None if part == "autoencoder" else y)
    return Bunch(
        **parts,
        name="svhn",
        task="classification",
        image_shape=(3, 2 * SIZE, 2 * SIZE),
        target_names=list(CLASS_NAMES),
        DESCR=DESCR,
    )
