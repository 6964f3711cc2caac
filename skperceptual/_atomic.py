"""Atomic file writes: a file is either absent or complete, never half-written."""

import contextlib
import hashlib
import os
import re
import socket
import tempfile
from pathlib import Path

# Temporary files are named ".<final name>.<host>-<pid>-<random>.tmp<suffix>",
# so that a sweep can tell a live writer's file from one left behind by a
# process that was killed (SIGKILL, power loss) before it could clean up.
# The random part is tempfile.mkstemp's, always 8 characters.
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_TEMP_NAME = re.compile(
    r"^\.(?P<name>.+)\.(?:(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-)?[a-z0-9_]{8}\.tmp(?:\.[^.]*)?$"
)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path that is renamed onto ``path`` on success.

    Writers write the temporary file however they like (``np.savez``,
    ``joblib.dump``, ``open``). Only when the ``with`` block exits without an
    exception is the file flushed to disk and renamed onto ``path``; the
    rename is atomic on POSIX and Windows, so a reader (or a process killed
    mid-write) never sees a partial file under ``path``. When the block
    raises (``KeyboardInterrupt`` and ``SystemExit`` included), the temporary
    file is removed. Only a process killed outright leaves it behind, for
    :func:`sweep_stale_temps` to remove.

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
    tmp = None
    try:
        fd, name = tempfile.mkstemp(
            dir=path.parent,
            prefix=f".{path.name}.{_HOST}-{os.getpid()}-",
            suffix=f".tmp{path.suffix}",
        )
        tmp = Path(name)
        os.close(fd)
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
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def process_alive(pid):
    """Whether process ``pid`` exists on this host (also when another user owns it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # It exists but belongs to another user.
        return True
    return True


def is_stale_temp(path):
    """Whether ``path`` is a temporary file of :func:`atomic_path` whose writer is gone.

    A temporary file written on this host is stale once its writing process
    has exited. One written on another host (a shared file system) is never
    considered stale, because its writer cannot be checked from here. Names
    from before the writer's PID was recorded count as stale.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    stale : bool
    """
    match = _TEMP_NAME.match(Path(path).name)
    if match is None:
        return False
    if match["pid"] is None:
        return True
    if match["host"] != _HOST:
        return False
    pid = int(match["pid"])
    return pid != os.getpid() and not process_alive(pid)


def sweep_stale_temps(folder, *, recursive=True):
    """Remove the temporary files that killed writers left in ``folder``.

    :func:`atomic_path` removes its temporary file whenever a write fails or
    is interrupted, but a process killed outright (SIGKILL, power loss)
    cannot. Call this before writing into a folder that such a process may
    have used, for example when a run starts. Files of writers that are
    still running (on this host) are kept, so it is safe while other
    processes write into the same folder.

    Parameters
    ----------
    folder : str or path-like
        Folder to clean; a missing folder is fine.
    recursive : bool, default=True
        Also clean its subfolders.

    Returns
    -------
    removed : list of pathlib.Path
        The files removed.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / ".results.csv.k3j_x9q1.tmp.csv").write_text("half")  # old-style name
    >>> [p.name for p in sweep_stale_temps(folder)]
    ['.results.csv.k3j_x9q1.tmp.csv']
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    candidates = folder.rglob(".*.tmp*") if recursive else folder.glob(".*.tmp*")
    removed = []
    for path in candidates:
        if path.is_file() and is_stale_temp(path):
            path.unlink(missing_ok=True)
            removed.append(path)
    return sorted(removed)
