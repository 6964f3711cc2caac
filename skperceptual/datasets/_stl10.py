"""STL-10: reader for the binary distribution, download via torchvision."""

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._atomic import atomic_path
from ._common import _check_n_autoencoder, _damaged_file_error, _missing_files_error, get_data_home

__all__ = ["load_stl10"]

FOLDER = "stl10_binary"
SIZE = 96
_IMAGE_BYTES = 3 * SIZE * SIZE
# Reading this many bytes at a time bounds the extra memory of loading to a
# few MiB over the output array.
_CHUNK_BYTES = 8 * 2**20
# autoencoder <- unlabeled, predictor <- train, test <- test (paper, Table I).
_SPLITS = {"autoencoder": "unlabeled", "predictor": "train", "test": "test"}
_FILES = (
    "unlabeled_X.bin",
    "train_X.bin",
    "train_y.bin",
    "test_X.bin",
    "test_y.bin",
    "class_names.txt",
)
# Spelled out for the error message, which must not need torchvision.
_SOURCE = (
    "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz "
    f"(unpacked, it holds the folder {FOLDER}/)"
)
CLASS_NAMES = [
    "airplane", "bird", "car", "cat", "deer",
    "dog", "horse", "monkey", "ship", "truck",
]

DESCR = """\
STL-10 classification dataset
-----------------------------
96x96 colour images in 10 classes (Coates, Lee and Ng, AISTATS 2011). As in
Pihlgren et al. (IJCNN 2020), the 100,000 unlabeled images form the
autoencoder set, the 5,000 labeled training images the predictor set and
the 8,000 test images the test set. Images are stored column-major in the
binary files; they are transposed here into their upright orientation.
"""


def _count_images(path):
    """Number of images in ``*_X.bin``, from its size, which must be a whole, positive multiple."""
    size = os.path.getsize(path)
    if size == 0 or size % _IMAGE_BYTES:
        raise _damaged_file_error(
            path,
            f"holds {size} bytes, i.e. {size / _IMAGE_BYTES:g} images",
            _SOURCE,
            f"a whole, positive number of {_IMAGE_BYTES}-byte (3x96x96) images",
        )
    return size // _IMAGE_BYTES


def _read_images(path, n_images=None):
    """Read ``*_X.bin`` into a (n, 3, 96, 96) uint8 array, upright.

    Each image is stored channel by channel, each channel column-major, so
    a C-order reshape gives (n, 3, 96, 96) with rows and columns swapped.
    Reading chunk by chunk and transposing into a preallocated array keeps
    peak memory at the output size plus one chunk.
    """
    n_total = _count_images(path)
    n = n_total if n_images is None else min(int(n_images), n_total)
    out = np.empty((n, 3, SIZE, SIZE), dtype=np.uint8)
    step = max(1, min(n, _CHUNK_BYTES // _IMAGE_BYTES))
    # One buffer, reused: allocating a chunk per read would hold two at once.
    buf = np.empty((step, 3, SIZE, SIZE), dtype=np.uint8)
    with open(path, "rb") as f:
        for start in range(0, n, step):
            count = min(step, n - start)
            if f.readinto(buf[:count].data) != count * _IMAGE_BYTES:
                # Only a file that shrank while being read gets here.
                raise _damaged_file_error(path, "ended early", _SOURCE, "a complete file")
            out[start:start + count] = buf[:count].transpose(0, 1, 3, 2)
    return out


def _read_labels(path, n_labels):
    raw = np.fromfile(path, dtype=np.uint8)
    if len(raw) != n_labels:
        raise _damaged_file_error(
            path, f"holds {len(raw)} labels", _SOURCE, f"one byte per image, {n_labels} labels"
        )
    bad = np.unique(raw[(raw < 1) | (raw > len(CLASS_NAMES))])
    if len(bad):
        raise _damaged_file_error(
            path,
            f"holds labels {bad[:5].tolist()}",
            _SOURCE,
            f"labels 1..{len(CLASS_NAMES)} (one per class)",
        )
    # Labels are stored as 1..10; the classes are numbered from 0.
    return raw.astype(np.int64) - 1


def _read_class_names(path):
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _damaged_file_error(
            path, f"is not UTF-8 text ({exc})", _SOURCE, "one class name per line"
        ) from None
    names = [n for n in (line.strip() for line in text.splitlines()) if n]
    if names and len(names) != len(CLASS_NAMES):
        raise _damaged_file_error(
            path, f"names {len(names)} classes", _SOURCE, f"{len(CLASS_NAMES)} class names, one per line"
        )
    return names or list(CLASS_NAMES)


def _download(data_home):
    """Fetch and unpack the archive with torchvision's helpers.

    The archive is downloaded into a temporary name and the files are
    unpacked into a temporary folder, then moved into place one by one, so
    that an interrupted download never leaves files that look complete.
    """
    from torchvision.datasets import STL10
    from torchvision.datasets.utils import download_url, extract_archive

    folder = data_home / FOLDER
    archive = data_home / STL10.filename
    with atomic_path(archive) as tmp:
        download_url(STL10.url, str(tmp.parent), filename=tmp.name, md5=STL10.tgz_md5)
    unpack = Path(tempfile.mkdtemp(dir=data_home, prefix=".stl10-"))
    try:
        extract_archive(str(archive), str(unpack))
        folder.mkdir(parents=True, exist_ok=True)
        for name in _FILES:
            os.replace(unpack / FOLDER / name, folder / name)
    finally:
        shutil.rmtree(unpack, ignore_errors=True)
    archive.unlink()


def load_stl10(*, data_home=None, download_if_missing=True, n_autoencoder=None):
    """Load the STL-10 dataset split as in the paper.

    Files are read from ``data_home/stl10_binary/`` by skperceptual's own
    reader of the binary format, without network access. Only when some of
    them are missing and ``download_if_missing`` is True is the archive
    (about 2.6 GB) downloaded with torchvision's helpers.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Data folder; see :func:`get_data_home`.
    download_if_missing : bool, default=True
        Download missing files. If False, or if the download fails, raise
        :class:`FileNotFoundError` naming the files and the folder they are
        expected in.
    n_autoencoder : int, default=None
        Read only the first ``n_autoencoder`` unlabeled images; the full set
        takes 2.8 GB of memory.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With keys:

        autoencoder : Bunch
            ``X``, uint8 of shape (100000, 3, 96, 96), the unlabeled images;
            ``y`` is None.
        predictor : Bunch
            ``X`` (5000, 3, 96, 96) and ``y``, int64 labels in 0..9.
        test : Bunch
            ``X`` (8000, 3, 96, 96) and ``y``, int64 labels in 0..9.
        name : str
            ``"stl10"``, the dataset's name in the protocol.
        task : str
            ``"classification"``.
        image_shape : tuple
            ``(3, 96, 96)``.
        target_names : list of str
            Class names, in label order.
        DESCR : str
            Description of the dataset.

    Raises
    ------
    FileNotFoundError
        When files are missing and cannot be downloaded.
    ValueError
        When ``n_autoencoder`` is below 1, or a file is damaged: an image
        file whose size is not a whole, positive number of images, a label
        file of the wrong length or with labels outside 1..10, or a
        ``class_names.txt`` that is not UTF-8 text with 10 names. The
        message names the file.

    Examples
    --------
    >>> from skperceptual.datasets import load_stl10
    >>> data = load_stl10(n_autoencoder=1000)  # doctest: +SKIP
    >>> data.test.X.shape  # doctest: +SKIP
    (8000, 3, 96, 96)
    """
    _check_n_autoencoder(n_autoencoder)
    data_home = get_data_home(data_home)
    folder = data_home / FOLDER
    missing = [f for f in _FILES if not (folder / f).is_file()]
    if missing:
        if not download_if_missing:
            raise _missing_files_error(
                "STL-10", folder, missing, "download_if_missing=False", _SOURCE, True
            )
        try:
            _download(data_home)
        except Exception as exc:
            raise _missing_files_error(
                "STL-10", folder, missing, f"download failed: {exc}", _SOURCE, False
            ) from exc

    # Everything small is checked before the (up to 2.8 GB of) images are
    # read, so that a damaged file fails fast.
    labels = {
        split: _read_labels(folder / f"{split}_y.bin", _count_images(folder / f"{split}_X.bin"))
        for split in _SPLITS.values()
        if split != "unlabeled"
    }
    _count_images(folder / "unlabeled_X.bin")
    target_names = _read_class_names(folder / "class_names.txt")
    parts = {}
    for part, split in _SPLITS.items():
        X = _read_images(
            folder / f"{split}_X.bin", n_autoencoder if split == "unlabeled" else None
        )
        parts[part] = Bunch(X=X, y=labels.get(split))
    return Bunch(
        **parts,
        name="stl10",
        task="classification",
        image_shape=(3, SIZE, SIZE),
        target_names=target_names,
        DESCR=DESCR,
    )
