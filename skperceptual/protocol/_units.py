"""Units of resumable work and the one runner that runs them.

A unit is one independent piece of a run: a key (a hash of everything it
depends on), a compute function run by a joblib worker, and a record. The
runner skips units whose record exists, dispatches the others through joblib
(any backend), saves each one atomically as soon as it finishes, and reports
it to a progress callback. A unit's record (``<folder>/<name>.json``) is
written last and marks it done, so killing a run loses only the units in
flight.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._atomic import atomic_path


@dataclass
class Unit:
    """One resumable piece of work.

    Attributes
    ----------
    stage : str
        ``"ae"``, ``"head"`` or ``"decoder"``.
    name : str
        File stem of the unit's files; ends with ``key``.
    key : str
        Hash of everything the unit depends on.
    folder : pathlib.Path
    compute : callable
        Module-level function, run by a joblib worker as ``compute(*inputs())``.
    inputs : callable
        Returns the arguments of ``compute``; called only if the unit runs.
    save : callable
        ``save(unit, result) -> record``: writes the unit's other files (with
        ``atomic_path``) and returns its record, a JSON-able dict.
    info : dict
        What the stage needs to know about the unit (variant, z, ...).
    record : dict or None
        Set once the unit is done (now or by an earlier run).
    result : object
        The compute function's result, when it ran in this run.
    """

    stage: str
    name: str
    key: str
    folder: Path
    compute: Callable
    inputs: Callable
    save: Callable
    info: dict = field(default_factory=dict)
    record: Any = None
    result: Any = None

    @property
    def record_path(self):
        return self.folder / f"{self.name}.json"

    def file(self, suffix):
        """Path of one of the unit's files, e.g. ``unit.file(".joblib")``."""
        return self.folder / f"{self.name}{suffix}"


def run_units(units, n_jobs=None, backend=None, backend_kwargs=None, progress=None):
    """Run the units that are not done yet and fill in every unit's record.

    Parameters
    ----------
    units : list of Unit
    n_jobs : int, default=None
        Units run at once. None: one at a time in this process, or every
        worker of the cluster when ``backend`` is given.
    backend : str, default=None
        joblib backend (loky, threading, dask, ray, ...).
    backend_kwargs : dict, default=None
        Extra ``joblib.parallel_config`` arguments.
    progress : callable, default=None
        Called as ``progress(unit, n_done, n_todo)`` after each unit is saved;
        an exception it raises stops the run (finished units stay saved).

    Returns
    -------
    units : list of Unit
        The same units, each with its ``record``.
    """
    todo = []
    for unit in units:
        if unit.record_path.is_file():
            unit.record = read_json(unit.record_path)
        else:
            todo.append(unit)
    for n_done, (unit, result) in enumerate(_dispatch(todo, n_jobs, backend, backend_kwargs), start=1):
        unit.result = result
        unit.record = write_json(unit.record_path, unit.save(unit, result))
        if progress is not None:
            progress(unit, n_done, len(todo))
    return units


def _dispatch(units, n_jobs, backend, backend_kwargs):
    """Yield ``(unit, result)`` as each unit finishes (not when all have)."""
    if not units:
        return
    from joblib import Parallel, delayed, parallel_config

    if n_jobs is None:
        n_jobs = -1 if backend else 1
    options = dict(backend_kwargs or {}, n_jobs=n_jobs)
    if backend is not None:
        options["backend"] = backend
    with parallel_config(**options):
        results = Parallel(return_as="generator_unordered")(
            delayed(_tagged)(i, unit.compute, unit.inputs()) for i, unit in enumerate(units)
        )
        for i, result in results:
            yield units[i], result


def _tagged(i, function, args):
    return i, function(*args)


def write_json(path, obj):
    """Write ``obj`` as JSON, atomically; return it as reading the file back would.

    A record then looks the same whether its unit ran now or in an earlier
    run (key order, lists for tuples, Python numbers for numpy ones).
    """
    text = json.dumps(obj, indent=1, sort_keys=True, default=jsonable)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return json.loads(text)


def jsonable(obj):
    """``json.dumps`` fallback for numpy scalars, tuples and arrays."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, np.ndarray)):
        return list(obj)
    return str(obj)


def read_json(path):
    return json.loads(Path(path).read_text())


class RunLock:
    """Hold a run directory for this process: the ``run.lock`` file holds its PID.

    A second run on the same directory refuses to start while the holder
    lives; a lock left by a process that is gone is taken over. Entering
    also removes the temporary files that a killed run's ``atomic_path``
    left behind.

    Parameters
    ----------
    folder : path-like
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / "run.lock"

    def __enter__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        # The PID is written before the lock appears (os.link is atomic and
        # fails if the lock exists), so a lock file is never seen empty.
        mine = self.folder / f".run.lock.{os.getpid()}"
        mine.write_text(str(os.getpid()))
        try:
            while True:
                try:
                    os.link(mine, self.path)
                    break
                except FileExistsError:
                    holder = _lock_holder(self.path)
                    if holder is not None and _alive(holder):
                        raise RuntimeError(
                            f"Another run (PID {holder}) is using {self.folder}; wait for it to finish or pass "
                            f"another --out. If no such process exists, delete {self.path}."
                        ) from None
                    self.path.unlink(missing_ok=True)  # stale: its process is gone
        finally:
            mine.unlink()
        # Only a killed run leaves atomic_path's temporary files; no other
        # process writes here while the lock is held.
        for tmp in self.folder.rglob(".*.tmp*"):
            tmp.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc):
        if _lock_holder(self.path) == os.getpid():
            self.path.unlink(missing_ok=True)


def _lock_holder(path):
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
