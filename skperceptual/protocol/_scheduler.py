"""Where a run's units execute: local worker processes, or a Dask or Ray cluster.

The runner hands an executor the units whose inputs exist and learns of each
one as soon as it finishes, so that a unit can start while others still run:
a head search starts as soon as its autoencoder is saved. Every executor has
the same methods:

- ``share(args)`` returns ``args`` with large arrays (and, for a cluster,
  fitted models) replaced by references to one copy, made once per stage:
  a file that local workers open as a memory map, or an object on the
  cluster;
- ``submit(stage, name, function, args)`` returns a handle; ``name``
  names the task on a cluster's dashboard;
- ``wait(handles)`` blocks until at least one finishes and returns those that
  have;
- ``result(handle)`` returns the function's value or raises its exception;
- ``close(pending)`` ends the executor, stopping the units of ``pending``.

:class:`PoolExecutor` runs units in local worker processes.
:class:`DaskExecutor` and :class:`RayExecutor` send them to the cluster of
the current ``distributed.Client`` or Ray session, each asking for the
resources its stage needs (``resources``, e.g. ``{"ae": {"GPU": 1}}``): a
cluster with GPU workers and CPU workers then trains on the former and
searches heads on the latter.
"""

import os
import shutil
import tempfile
import uuid
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import wait as wait_futures

import numpy as np
from sklearn.base import BaseEstimator

#: Arrays at least this large are sent once per stage, not once per unit that reads them.
_SHARE_BYTES = 1 << 20


def check_backend(backend):
    """Fail before any work when ``backend`` is Dask or Ray and cannot run here."""
    if backend == "dask":
        DaskExecutor()
    elif backend == "ray":
        _import_ray()


def open_executor(backend, n_jobs, resources=None):
    """The executor of ``backend``: None or ``"loky"`` (local processes), ``"dask"`` or ``"ray"``."""
    if backend == "dask":
        return DaskExecutor(resources)
    if backend == "ray":
        return RayExecutor(resources)
    return PoolExecutor(n_jobs)


#: The thread-count variables joblib sets in its worker processes, set here the same way.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                     "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


class PoolExecutor:
    """Units in ``n_jobs`` local worker processes, each with its share of the cores.

    The workers are loky's (the processes of joblib's default backend), and
    get the same thread limits joblib gives its workers: ``cores // n_jobs``
    threads each, unless the user set the variable. :meth:`close` with
    units still pending kills them, so that Ctrl-C does not wait for the
    units in flight.
    """

    def __init__(self, n_jobs):
        from joblib.externals.loky import ProcessPoolExecutor, cpu_count

        cores = cpu_count()
        self.n_workers = cores if n_jobs is None or n_jobs < 0 else n_jobs
        threads = str(max(1, cores // self.n_workers))
        env = {name: threads for name in _THREAD_VARIABLES if name not in os.environ}
        self._pool = ProcessPoolExecutor(self.n_workers, env=env)
        # Large arrays go to the workers as memory maps of one file each, as
        # joblib's loky backend sends them: the workers share their pages.
        self._folder = tempfile.mkdtemp(prefix="skperceptual-units-")
        self.share = _Shared(self._save, models=False)

    def _save(self, array):
        path = os.path.join(self._folder, f"{len(os.listdir(self._folder))}.npy")
        np.save(path, array)
        return OnDisk(path)

    def submit(self, stage, name, function, args):
        return self._pool.submit(function, *args)

    def wait(self, handles):
        return wait_futures(handles, return_when=FIRST_COMPLETED).done

    def result(self, handle):
        return handle.result()

    def close(self, pending=()):
        self._pool.shutdown(wait=True, kill_workers=bool(pending))
        shutil.rmtree(self._folder, ignore_errors=True)


class OnDisk:
    """A large argument of a unit, saved once by the driver; the worker opens it read-only, memory-mapped."""

    def __init__(self, path):
        self.path = path

    def open(self):
        return np.load(self.path, mmap_mode="r")


class _Shared:
    """Replace large arguments of a unit (arrays, models) by one cluster-side copy each (``put``)."""

    def __init__(self, put, models=True):
        self._put = put
        self._models = models
        self._shared = {}

    def __call__(self, args):
        return tuple(self._one(a) for a in args)

    def _one(self, value):
        # Fitted models (a decoder retraining's AE) are as large as big arrays.
        large = (isinstance(value, np.ndarray) and value.nbytes >= _SHARE_BYTES
                 or self._models and isinstance(value, BaseEstimator))
        if not large:
            return value
        # Keyed by identity and kept referenced: a freed array's id could be reused.
        key = id(value)
        if key not in self._shared:
            self._shared[key] = (value, self._put(value))
        return self._shared[key][1]


class DaskExecutor:
    """Units as tasks of the current ``distributed.Client``; each stage asks for its ``resources``."""

    def __init__(self, resources=None):
        try:
            from distributed import get_client
        except ImportError:
            raise ImportError("backend='dask' needs dask.distributed: pip install 'skperceptual[dask]'.") from None
        try:
            self._client = get_client()
        except ValueError:
            raise ValueError("backend='dask' runs on the current distributed.Client: create one first, e.g. "
                             "Client('tcp://scheduler:8786') or Client(LocalCluster()).") from None
        self._resources = resources or {}
        self.share = _Shared(lambda a: self._client.scatter(a, broadcast=False, hash=False))

    def submit(self, stage, name, function, args):
        # A unique key: Dask returns a live future of the same key instead
        # of running the task again (a rerun after an error, in one session).
        return self._client.submit(function, *args, key=f"{stage}-{name}-{uuid.uuid4().hex[:8]}",
                                   resources=self._resources.get(stage))

    def wait(self, handles):
        from distributed import wait

        return wait(list(handles), return_when="FIRST_COMPLETED").done

    def result(self, handle):
        return handle.result()

    def close(self, pending=()):
        if pending:
            self._client.cancel(list(pending))


class RayExecutor:
    """Units as Ray tasks of the current session (started if none is); each stage asks for its ``resources``.

    ``{"GPU": n}`` and ``{"CPU": n}`` become Ray's ``num_gpus`` and
    ``num_cpus``; other names are custom resources.
    """

    def __init__(self, resources=None):
        ray = _import_ray()
        if not ray.is_initialized():
            ray.init()
        self._ray = ray
        self._options = {stage: _ray_options(r) for stage, r in (resources or {}).items()}
        self.share = _Shared(ray.put)

    def submit(self, stage, name, function, args):
        task = self._ray.remote(function).options(name=f"{stage}-{name}", **self._options.get(stage, {"num_cpus": 1}))
        return task.remote(*args)

    def wait(self, handles):
        handles = list(handles)
        done, _ = self._ray.wait(handles, num_returns=1)
        return done

    def result(self, handle):
        return self._ray.get(handle)

    def close(self, pending=()):
        for handle in pending:
            self._ray.cancel(handle, force=True)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("backend='ray' needs Ray: pip install 'skperceptual[ray]'.") from None
    return ray


def _ray_options(resources):
    """Ray task options asking for ``resources`` (a Dask-style dict such as ``{"GPU": 1}``)."""
    resources = dict(resources)
    options = {"num_cpus": resources.pop("CPU", 1)}
    if "GPU" in resources:
        options["num_gpus"] = resources.pop("GPU")
    if resources:
        options["resources"] = resources
    return options
