"""Atomic file writes: a file is either absent or complete, never half-written."""

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path that is renamed onto ``path`` on success.

    Writers write the temporary file however they like (``np.savez``,
    ``joblib.dump``, ``open``). Only when the ``with`` block exits without an
    exception is the file flushed to disk and renamed onto ``path``; the
    rename is atomic on POSIX and Windows, so a reader (or a process killed
    mid-write) never sees a partial file under ``path``.

    Parameters
    ----------
    path : str or path-like
        Final destination. Its parent folder is created if missing.

    Yields
    ------
    tmp : pathlib.Path
        Temporary file in the same folder as ``path`` (same file system, so
        the final rename cannot degrade to a copy). It keeps ``path``'s
        suffix because some writers (``np.savez``) append one otherwise.

    Examples
    --------
    >>> import json, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> with atomic_path(os.path.join(folder, "a.json")) as tmp:
    ...     _ = tmp.write_text(json.dumps({"x": 1}))
    >>> sorted(os.listdir(folder))
    ['a.json']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp creates files readable by their owner alone; give the final
        # file the permissions an ordinary open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
