"""Where datasets live on disk, and how a missing dataset is reported."""

import os
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


def _missing_files_error(name, folder, files, reason):
    """Build the error raised when a dataset's files are absent.

    The message lists every expected file and the folder to put them in,
    because a user without network access has to copy them there by hand.
    """
    listing = "\n".join(f"  {Path(folder) / f}" for f in files)
    return FileNotFoundError(
        f"{name} files not found ({reason}). Expected these files in "
        f"folder {folder}:\n{listing}\nDownload them on a machine with network "
        f"access and copy them there, or pass download_if_missing=True."
    )
