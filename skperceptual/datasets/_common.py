"""Where datasets live on disk, and how a missing dataset is reported."""

import os
from numbers import Integral
from pathlib import Path

__all__ = ["get_data_home"]

_ENV_VAR = "SKPERCEPTUAL_DATA"


def get_data_home(data_home=None):
    """Return the folder that holds skperceptual's datasets, creating it.

    The folder is, in order of precedence, ``data_home`` when given, the
    ``SKPERCEPTUAL_DATA`` environment variable when set, and
    ``~/skperceptual_data`` otherwise. ``~`` is expanded in all three.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder to use instead of the default.

    Returns
    -------
    data_home : pathlib.Path
        Absolute path of the (now existing) folder.

    Examples
    --------
    >>> import tempfile
    >>> from skperceptual.datasets import get_data_home
    >>> folder = tempfile.mkdtemp()
    >>> get_data_home(folder).is_dir()
    True
    """
    if data_home is None:
        data_home = os.environ.get(_ENV_VAR) or "~/skperceptual_data"
    path = Path(data_home).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _missing_files_error(name, folder, files, reason, source, download_disabled):
    """Build the error raised when a dataset's files are absent.

    The message lists every expected file and the folder to put them in,
    because a user without network access has to copy them there by hand.
    """
    listing = "\n".join(f"  {Path(folder) / f}" for f in files)
    hint = ", or pass download_if_missing=True" if download_disabled else ""
    return FileNotFoundError(
        f"{name} files not found ({reason}). Expected these files in "
        f"folder {folder}:\n{listing}\nGet them from {source} on a machine "
        f"with network access and copy them there{hint}."
    )


def _check_n_autoencoder(n_autoencoder):
    """Raise before any file is read when ``n_autoencoder`` would give an empty or invalid set."""
    if n_autoencoder is None:
        return
    if isinstance(n_autoencoder, bool) or not isinstance(n_autoencoder, Integral):
        raise TypeError(
            f"n_autoencoder must be an int or None, got {n_autoencoder!r}."
        )
    if n_autoencoder < 1:
        raise ValueError(
            f"n_autoencoder={n_autoencoder} would leave the autoencoder set empty; pass a "
            "positive number of images, or None for all of them."
        )


def _damaged_file_error(path, problem, source, expected):
    """Build the error raised when a dataset file exists but holds the wrong content.

    It names the file, what is wrong and what was expected, and how to get a
    good copy: such a file was damaged on disk or copied incompletely.
    """
    return ValueError(
        f"{path} {problem}; expected {expected}. The file is damaged or not the "
        f"original: delete it and load again with download_if_missing=True, or copy "
        f"it again from {source}."
    )
