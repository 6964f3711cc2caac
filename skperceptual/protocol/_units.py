"""Units of resumable work and the one runner that runs them.

A unit is one independent piece of a run: a key (a hash of everything it
depends on), a compute function run by a joblib worker, and a record. The
runner skips units whose record exists, dispatches the others through joblib
(any backend), saves each one atomically as soon as it finishes, and reports
it to a progress callback. A unit's record (``<folder>/<name>.json``) is
written last and marks it done, so killing a run loses only the units in
flight.

Warnings a unit raises (such as scikit-learn's ``ConvergenceWarning`` from
a head search) are counted in its worker rather than printed, and land in
its record as ``n_warnings`` and ``warning_categories``.

All progress output of a run goes through :func:`progress_bar` (tqdm, on
stderr): the runner's bar per stage and, when units run one at a time in
this process, :class:`EpochProgress`'s bar over a unit's epochs.
"""

import json
import os
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from skorch.callbacks import Callback

from .._atomic import atomic_path, process_alive


# Compared by identity: a unit's fields hold arrays and other units.
@dataclass(eq=False)
class Unit:
    """One resumable piece of work.

    Attributes
    ----------
    stage : str
        ``"ae"``, ``"baseline"``, ``"head"``, ``"curve"`` or ``"decoder"``.
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
    after : list of Unit
        Units whose saved output this unit reads: it starts after them.
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
    after: list = field(default_factory=list)
    record: Any = None
    result: Any = None

    @property
    def record_path(self):
        return self.folder / f"{self.name}.json"

    def file(self, suffix):
        """Path of one of the unit's files, e.g. ``unit.file(".joblib")``."""
        return self.folder / f"{self.name}{suffix}"


def run_units(units, n_jobs=None, backend=None, backend_kwargs=None, resources=None, limits=None, progress=None,
              show_epochs=False):
    """Run the units that are not done yet and fill in every unit's record.

    A unit starts once every unit of its ``after`` list has its record, so
    one call can run a whole graph: with worker processes or a cluster, a
    head search starts as soon as its autoencoder is saved, while other
    autoencoders still train.

    Parameters
    ----------
    units : list of Unit
        In order of priority: ready units start in this order.
    n_jobs : int, default=None
        Units run at once. None: one at a time in this process, or every
        worker of the cluster when ``backend`` is given.
    backend : str, default=None
        None or ``"loky"`` (local worker processes when ``n_jobs > 1``),
        ``"dask"`` (the current ``distributed.Client``), ``"ray"`` (the
        current Ray session), or any other joblib backend, which runs the
        units in waves: each wave waits for the one before.
    backend_kwargs : dict, default=None
        Extra ``joblib.parallel_config`` arguments for another joblib backend.
    resources : dict, default=None
        What each stage's units ask the cluster for, e.g.
        ``{"ae": {"GPU": 1}}`` (Dask worker resources; Ray's ``num_gpus``).
    limits : dict, default=None
        At most this many units of a stage at once in local worker
        processes, e.g. ``{"ae": 1}`` for one GPU.
    progress : callable, default=None
        Called as ``progress(unit, n_done, n_todo)`` after each unit is saved;
        an exception it raises stops the run (finished units stay saved).
    show_epochs : bool, default=False
        Let each unit show a progress bar over its epochs
        (:class:`EpochProgress`). Only honoured when the units run one at a
        time in this process, so that parallel workers' bars never mix.

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
    if runs_in_process(backend, n_jobs):
        finished = _in_process(todo, show_epochs)
    elif backend in (None, "loky", "dask", "ray"):
        finished = _scheduled(todo, backend, n_jobs, resources, limits or {})
    else:
        finished = _in_waves(todo, n_jobs, backend, backend_kwargs)
    try:
        for n_done, (unit, result, caught) in enumerate(finished, start=1):
            unit.result = result
            unit.record = write_json(unit.record_path, {**unit.save(unit, result), **caught})
            if progress is not None:
                progress(unit, n_done, len(todo))
    finally:
        # A save or progress callback that raises stops the units in flight
        # now, not whenever the generator is garbage-collected.
        finished.close()
    return units


def unit_label(unit):
    """How progress output names a unit, e.g. ``"ae P. AE z=16"``."""
    return f"{unit.stage} {unit.info.get('variant', '')} z={unit.info.get('z', '?')}"


def runs_in_process(backend, n_jobs):
    """Whether :func:`run_units` runs the units one by one in this process, rather than in workers."""
    return backend is None and n_jobs in (None, 1)


def _ready(unit):
    return all(before.record is not None for before in unit.after)


def _in_process(units, show_epochs):
    """Yield ``(unit, result, warnings record)``, running the units one by one in this process."""
    for unit in units:
        # A unit runs only once the units it reads are saved; in a list in
        # order of priority they come first.
        if not _ready(unit):
            raise RuntimeError(f"{unit_label(unit)} runs before a unit it reads")
        _, result, caught = _run_one(0, unit.compute, unit_label(unit) if show_epochs else None, *unit.inputs())
        yield unit, result, caught


def _scheduled(units, backend, n_jobs, resources, limits):
    """Yield as :func:`_in_process` does, starting each unit as soon as the units it reads are saved."""
    from ._scheduler import open_executor

    executor = open_executor(backend, n_jobs, resources)
    # Local workers take at most one unit each, so that a unit that
    # becomes ready is not queued behind those started earlier.
    slots = getattr(executor, "n_workers", len(units))
    waiting, running = list(units), {}
    try:
        while waiting or running:
            for unit in [u for u in waiting if _ready(u)]:
                busy = sum(r.stage == unit.stage for r in running.values())
                if len(running) >= slots or busy >= limits.get(unit.stage, slots):
                    continue
                waiting.remove(unit)
                args = (0, unit.compute, None, *executor.share(unit.inputs()))
                running[executor.submit(unit.stage, unit.name, _run_one, args)] = unit
            if not running:
                raise RuntimeError(f"{unit_label(waiting[0])} waits for a unit that is not part of the run")
            for handle in executor.wait(running):
                unit = running.pop(handle)
                _, result, caught = executor.result(handle)
                # Saved (by the caller) before the next units start: they may read it.
                yield unit, result, caught
    except BaseException:
        executor.close(pending=list(running))
        raise
    executor.close()


def _in_waves(units, n_jobs, backend, backend_kwargs):
    """Yield as :func:`_in_process` does, through a joblib backend, one wave of ready units at a time."""
    from joblib import Parallel, delayed, parallel_config

    options = dict(backend_kwargs or {}, n_jobs=-1 if n_jobs is None else n_jobs, backend=backend)
    waiting = list(units)
    while waiting:
        wave = [u for u in waiting if _ready(u)]
        if not wave:
            raise RuntimeError(f"{unit_label(waiting[0])} waits for a unit that is not part of the run")
        waiting = [u for u in waiting if u not in wave]
        with parallel_config(**options):
            results = Parallel(return_as="generator_unordered")(
                delayed(_run_one)(i, unit.compute, None, *unit.inputs()) for i, unit in enumerate(wave))
            for i, result, caught in results:
                yield wave[i], result, caught


def _run_one(i, function, label, *args):
    """Worker: run one unit's compute function, counting the warnings it raises."""
    from ._scheduler import OnDisk

    args = [a.open() if isinstance(a, OnDisk) else a for a in args]
    global _epoch_label
    _epoch_label = label
    try:
        # Recorded instead of printed: a head search alone can raise dozens
        # of ConvergenceWarnings. "always" counts every occurrence.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = function(*args)
    finally:
        _epoch_label = None
    if any(str(w.message) == _SKLEARN_INTERRUPTED for w in caught):
        # scikit-learn's MLPs end training quietly on Ctrl-C and only warn:
        # the unit was cut short and must not be saved as finished.
        raise KeyboardInterrupt(f"{label or 'a unit'} was interrupted")
    return i, result, warning_record(caught)


#: The warning scikit-learn's MLPs give instead of raising on Ctrl-C.
_SKLEARN_INTERRUPTED = "Training interrupted by user."


def warning_record(caught):
    """The record fields of a unit's warnings: ``n_warnings`` and ``warning_categories``.

    Parameters
    ----------
    caught : list of warnings.WarningMessage

    Returns
    -------
    fields : dict
        ``n_warnings`` (int) and ``warning_categories``, a JSON object of
        the count by category name (``"{}"`` when none).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("a"); warnings.warn("b", FutureWarning)
    >>> warning_record(caught)
    {'n_warnings': 2, 'warning_categories': '{"FutureWarning": 1, "UserWarning": 1}'}
    """
    counts = Counter(w.category.__name__ for w in caught)
    return {"n_warnings": len(caught), "warning_categories": json.dumps(dict(sorted(counts.items())))}


def warning_summary(records):
    """One line summing the warnings of unit records, e.g. ``"42 warnings in 6 units (ConvergenceWarning: 42)"``."""
    total, counts, n_units = 0, Counter(), 0
    for record in records:
        n = record.get("n_warnings") or 0
        total += n
        n_units += n > 0
        counts.update(json.loads(record.get("warning_categories") or "{}"))
    if not total:
        return "no warnings"
    kinds = ", ".join(f"{name}: {n}" for name, n in counts.most_common())
    return (f"{total} warning{'s' * (total != 1)} in {n_units} unit{'s' * (n_units != 1)} ({kinds}); "
            "per unit in results.csv and learning_curve.csv (n_warnings, warning_categories)")


# --------------------------------------------------------------- progress

#: The label of the unit running in this process while it may show its
#: epochs (set by the runner's worker wrapper), else None.
_epoch_label = None


def progress_bar(total=None, desc=None, unit="it", enabled=True, leave=True):
    """A tqdm progress bar on stderr: the one progress mechanism of a run.

    Parameters
    ----------
    total : int or None, default=None
    desc : str, default=None
    unit : str, default="it"
    enabled : bool, default=True
        False returns a silent bar (``verbose=0``).
    leave : bool, default=True
        Keep the finished bar on screen.

    Returns
    -------
    bar : tqdm.tqdm
        Print lines beside it with ``bar.write(line)``.
    """
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=leave, file=sys.stderr,
                dynamic_ncols=True)


class EpochProgress(Callback):
    """skorch callback: a progress bar over the epochs of the unit running in this process.

    Silent unless the runner lets the current unit show its epochs (units
    run one at a time, ``verbose`` on), so a saved model that keeps this
    callback stays silent when it is loaded and trained again elsewhere.
    """

    def on_train_begin(self, net, **kwargs):
        self.bar_ = progress_bar(desc=_epoch_label, unit="epoch", enabled=_epoch_label is not None, leave=False)

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        self.bar_.set_postfix({k: f"{row[k]:.4g}" for k in ("train_loss", "valid_loss") if k in row}, refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()

    def __getstate__(self):
        # A tqdm bar holds a stream: it is not saved with the model.
        state = dict(self.__dict__)
        state.pop("bar_", None)
        return state


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


class RunDirectoryBusy(RuntimeError, OSError):
    """Another live process holds the run directory.

    A RuntimeError for existing callers, and an OSError (a resource that is
    busy) so that the command line reports it as one line, like a missing
    file.
    """


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
                        raise RunDirectoryBusy(
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
    return pid == os.getpid() or process_alive(pid)
