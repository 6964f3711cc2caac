"""The protocol and grid searches in worker processes: local, Dask and Ray.

Every test here runs units in other processes. The workers find the
perceptual weights the documented way, through the data home
(``SKPERCEPTUAL_DATA``, which tests/conftest.py points at a temporary folder
with the weights registered) that they inherit from this process.

Results are compared bit for bit with a run in local worker processes. A
run in this process differs in float rounding: its fits use every core's
threads, and torch splits a convolution's sums by thread count. So each
test gives every worker one thread (``OMP_NUM_THREADS=1``, which Dask's and
Ray's workers set anyway).
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV

from skperceptual import PerceptualAETransformer
from skperceptual.cli.main import parse_resources
from skperceptual.protocol import _runner, run_protocol
from skperceptual.protocol._scheduler import _ray_options
from test_protocol import make_bunch, tiny_config

pytestmark = pytest.mark.slow

COLUMNS = ["variant", "z_dim", "head", "best_params", "val_metric", "test_metric", "ae_n_epochs", "l1_before"]


@pytest.fixture(scope="module")
def one_thread_per_worker():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield


@pytest.fixture(scope="module")
def config():
    """The tiny smoke run, with the ImageNet weights that every worker resolves by name."""
    return tiny_config(ae__perceptual_weights="imagenet")


@pytest.fixture(scope="module")
def local_run(config, one_thread_per_worker, tmp_path_factory, request):
    """The reference: two local worker processes, one thread each."""
    request.getfixturevalue("skperceptual_data_home")
    return run_protocol(make_bunch(), config, tmp_path_factory.mktemp("local"), n_jobs=2, verbose=0, report=False)


@pytest.fixture(scope="module")
def dask_cluster(one_thread_per_worker):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def ray_session(one_thread_per_worker):
    ray = pytest.importorskip("ray")
    # A fake GPU: Ray only counts it, so that GPU requests can be scheduled on the CPU.
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_one_gpu_trains_one_autoencoder_at_a_time(config, monkeypatch, tmp_path, alexnet_weights):
    """On a GPU machine the local workers train AEs one by one and search heads meanwhile."""
    import torch

    on_gpu = tiny_config(ae__device="auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _runner._local_limits(on_gpu, 2, None) == {"ae": 1, "decoder": 1}
    assert _runner._local_limits(on_gpu, 1, None) is None
    assert _runner._local_limits(on_gpu, 2, "dask") is None
    assert _runner._local_limits(on_gpu, None, "loky") == {"ae": 1, "decoder": 1}  # loky: one worker per core
    assert _runner._local_limits(config, 2, None) is None  # ae.device="cpu"
    monkeypatch.undo()
    assert _runner._local_limits(on_gpu, 2, None) is None  # no GPU: AEs use every worker

    monkeypatch.setattr(_runner, "_local_limits", lambda *args: {"ae": 1, "decoder": 1})
    order = []
    small = tiny_config(ae__perceptual_weights="imagenet", ae__variants=["AE", "P. AE"], ae__z_dims=[4, 8],
                        baselines__variants=[])
    run_protocol(make_bunch(), small, tmp_path, n_jobs=2, verbose=0, report=False,
                 on_unit_done=lambda unit, *_: order.append(unit.stage))
    # One AE at a time, so the other worker searches the first AE's heads while later AEs train.
    assert order.count("ae") == 4 and order.index("head") < 3


def test_dask_worker_processes_match_local_workers(local_run, dask_cluster, config, tmp_path, alexnet_weights):
    remote = run_protocol(make_bunch(), config, tmp_path, backend="dask", verbose=0, report=False)
    pd.testing.assert_frame_equal(local_run[COLUMNS], remote[COLUMNS], check_exact=True)


def test_ray_workers_match_local_workers(local_run, ray_session, config, tmp_path, alexnet_weights):
    remote = run_protocol(make_bunch(), config, tmp_path, backend="ray", ae_resources={"GPU": 1}, verbose=0,
                          report=False)
    pd.testing.assert_frame_equal(local_run[COLUMNS], remote[COLUMNS], check_exact=True)


def _grid_search(backend):
    import joblib

    X = np.random.default_rng(0).integers(0, 256, (48, 3, 64, 64), dtype=np.uint8)
    search = GridSearchCV(PerceptualAETransformer(loss="perceptual", max_epochs=1, batch_size=16, random_state=0),
                          {"z_dim": [4, 8]}, cv=2, n_jobs=2)
    with joblib.parallel_config(backend=backend):
        search.fit(X)
    return search.cv_results_["mean_test_score"]


@pytest.fixture(scope="module")
def local_grid_search(one_thread_per_worker, request):
    request.getfixturevalue("skperceptual_data_home")
    return _grid_search("loky")


def test_grid_search_on_dask_worker_processes(local_grid_search, dask_cluster, alexnet_weights):
    np.testing.assert_array_equal(_grid_search("dask"), local_grid_search)


def test_grid_search_on_ray(local_grid_search, ray_session, alexnet_weights):
    from ray.util.joblib import register_ray

    register_ray()
    np.testing.assert_array_equal(_grid_search("ray"), local_grid_search)


def test_autoencoders_ask_dask_for_a_gpu_and_heads_for_cpus(config, tmp_path, alexnet_weights):
    """A cluster of one fake-GPU worker and one CPU worker: every AE lands on the first."""
    distributed = pytest.importorskip("distributed")
    from distributed import Scheduler, SpecCluster, Worker

    workers = {"gpu": {"cls": Worker, "options": {"nthreads": 1, "resources": {"GPU": 1}, "dashboard_address": ":0"}},
               "cpu": {"cls": Worker, "options": {"nthreads": 1, "dashboard_address": ":0"}}}
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": None}}
    with SpecCluster(workers=workers, scheduler=scheduler) as cluster, distributed.Client(cluster) as client, \
            distributed.get_task_stream(client) as stream:
        gpu = next(address for address, info in client.scheduler_info()["workers"].items() if info["resources"])
        run_protocol(make_bunch(), config, tmp_path, backend="dask", ae_resources={"GPU": 1}, verbose=0,
                     report=False)
    where = {task["key"]: task["worker"] for task in stream.data if isinstance(task["key"], str)}
    assert {w for k, w in where.items() if k.startswith(("ae-", "decoder-"))} == {gpu}
    assert sum(k.startswith("ae-") for k in where) == 8
    assert len({w for k, w in where.items() if k.startswith("head-")}) == 2


def test_cluster_resource_requests():
    assert parse_resources("GPU=1") == {"GPU": 1.0}
    assert parse_resources("GPU=0.5, memory=8e9") == {"GPU": 0.5, "memory": 8e9}
    assert parse_resources(None) is None
    with pytest.raises(ValueError, match="--ae-resources 'GPU=one'.*not a number"):
        parse_resources("GPU=one")
    with pytest.raises(ValueError, match="names no resource"):
        parse_resources("=1")
    assert _ray_options({"GPU": 1}) == {"num_cpus": 1, "num_gpus": 1}
    assert _ray_options({"CPU": 4, "fast_disk": 1}) == {"num_cpus": 4, "resources": {"fast_disk": 1}}
    assert _runner._stage_resources({"GPU": 1}) == {"ae": {"GPU": 1}, "decoder": {"GPU": 1}}
    assert _runner._stage_resources(None) is None


def test_local_workers_read_large_arrays_from_one_shared_file():
    """As joblib's loky backend does: a large array goes to disk once, and workers memory-map it."""
    import os

    from skperceptual.protocol._scheduler import OnDisk, PoolExecutor
    from skperceptual.protocol._units import _run_one

    executor = PoolExecutor(2)
    big, small = np.arange(300_000, dtype=np.float64), np.arange(10)
    shared = executor.share((big, small, big))
    assert isinstance(shared[0], OnDisk) and shared[0] is shared[2] and shared[1] is small
    kind = executor.result(executor.submit("head", "kind", _run_one, (0, type, None, shared[0])))[1]
    assert kind is np.memmap  # what the worker's function received
    doubled = executor.result(executor.submit("head", "double", _run_one, (0, np.multiply, None, shared[0], 2.0)))[1]
    np.testing.assert_array_equal(doubled, 2 * big)
    folder = os.path.dirname(shared[0].path)
    executor.close()
    assert not os.path.exists(folder)
