"""Run the whole protocol on one dataset: data, the four stages, results.csv.

Every unit is saved to its own small files in ``<out>/units/`` as soon as it
finishes (see :mod:`._units`); each unit's file name carries a hash of
everything it depends on, so a re-run skips finished units and a changed
setting never reuses a stale one. ``results.csv`` is rebuilt from the
records of the current configuration, atomically, so it never has partial
or duplicate rows. One run at a time may use a run directory.
"""

import hashlib
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._atomic import atomic_path
from ._config import BASELINES, VARIANTS, ae_params, load_profile, run_key, validate_config
from ._heads import head_split
from ._metrics import mean_position_baseline, metric_ci
from ._registry import DATASETS, HEADS, TASK_METRICS
from ._report import select_figure_frames
from ._scheduler import check_backend
from ._stages import curve_rows, fit_and_search, learning_curves, retrain_decoders
from ._units import RunLock, progress_bar, runs_in_process, warning_summary, write_json


def load_dataset(name, **loader_kwargs):
    """Load one of the paper's datasets by name (see ``DATASETS``).

    Parameters
    ----------
    name : str
        A key of ``DATASETS``: ``"lunarlander"``, ``"stl10"``, ``"svhn"``
        or an Atari game (``"pong"``, ``"breakout"``, ``"mspacman"``).
    **loader_kwargs
        Passed to the dataset's loader in :mod:`skperceptual.datasets`.

    Returns
    -------
    bunch : Bunch
        With ``autoencoder``, ``predictor`` and ``test`` parts.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; valid: {sorted(DATASETS)}")
    return DATASETS[name].load(**loader_kwargs)


def _subsample(part, cap, rng):
    if not cap or len(part.X) <= cap:
        return part
    rows = np.sort(rng.choice(len(part.X), size=int(cap), replace=False))
    return Bunch(**{k: (v[rows] if isinstance(v, np.ndarray) and len(v) == len(part.X) else v) for k, v in part.items()})


def prepare_data(bunch, config):
    """Apply the profile's size caps and infer the task.

    Parameters
    ----------
    bunch : Bunch
        ``autoencoder``, ``predictor`` and ``test`` parts with ``X`` (uint8,
        (n, C, H, W)) and ``y``; optionally ``task``.
    config : dict

    Returns
    -------
    data : Bunch
        The capped parts, ``task``, ``dataset`` and ``fingerprint`` (a hash
        of the arrays).
    """
    rng = np.random.default_rng(config["random_state"])
    parts = {}
    for name in ("autoencoder", "predictor", "test"):
        if name not in bunch:
            raise ValueError(f"The dataset Bunch lacks its {name!r} part")
        parts[name] = _subsample(bunch[name], config["data"][f"n_{name}"], rng)
    task = bunch.get("task")
    if task is None:
        y = np.asarray(parts["predictor"].y)
        task = "positioning" if np.issubdtype(y.dtype, np.floating) and y.ndim == 2 else "classification"
    digest = hashlib.sha256()
    for name in ("autoencoder", "predictor", "test"):
        for arr in (parts[name].X, parts[name].get("y")):
            if arr is not None:
                arr = np.ascontiguousarray(arr)
                digest.update(f"{name}{arr.shape}{arr.dtype}".encode())
                digest.update(memoryview(arr).cast("B"))
    return Bunch(**parts, task=task, fingerprint=digest.hexdigest()[:16],
                 dataset=bunch.get("name", config["dataset"]))


class _Progress:
    """A run's progress on stderr: one tqdm bar per stage, a line per unit.

    Lines carry the time since the run started and are written above the
    bars (``tqdm.write``), so bars and lines never overwrite each other.
    ``verbose=0`` shows nothing; ``on_unit_done`` is called either way.
    """

    def __init__(self, verbose, on_unit_done=None):
        self.verbose = bool(verbose)
        self.on_unit_done = on_unit_done
        self.start = time.perf_counter()

    def __call__(self, message):
        if self.verbose:
            line = f"[{time.perf_counter() - self.start:7.1f}s] {message}"
            from tqdm.auto import tqdm

            tqdm.write(line, file=sys.stderr)

    @contextmanager
    def stage(self, label, n_todo):
        """Show a bar over a stage's ``n_todo`` units; yield the per-unit callback of ``run_units``."""
        with progress_bar(total=n_todo, desc=label, unit="unit", enabled=self.verbose and n_todo > 0) as bar:
            def unit_done(unit, n_done, n_total):
                bar.update(1)
                if self.verbose:
                    self(self.describe(unit, n_done, n_total))
                if self.on_unit_done is not None:
                    self.on_unit_done(unit, n_done, n_total)

            yield unit_done

    @staticmethod
    def describe(unit, n_done, n_todo):
        r = unit.record
        what = {
            "ae": lambda: f"fitted in {r['fit_time']:.1f}s ({r['n_epochs']} epochs)",
            "baseline": lambda: f"fitted in {r['fit_time']:.1f}s",
            "head": lambda: f"{unit.info['kind']}: val {r['val_metric']:.4g}, test {r['test_metric']:.4g}",
            "decoder": lambda: f"L1 {r['l1_before']:.4f} -> {r['test_metric']:.4f}",
            "curve": lambda: f"learning curve, {len(r['rows'])} head fits",
        }[unit.stage]()
        n = r.get("n_warnings") or 0
        warned = f", {n} warning{'s' * (n != 1)}" if n else ""
        return f"{unit.stage} {n_done}/{n_todo}: {unit.info['variant']} z={unit.info['z']} {what}{warned}"


def _check_run_options(n_jobs, config, bunch):
    if n_jobs is not None and (not isinstance(n_jobs, int) or n_jobs == 0):
        raise ValueError(f"n_jobs={n_jobs!r} is invalid: pass a positive number of units at once, -1 for all "
                         "cores, or leave it unset (one at a time).")
    if bunch is None and config["dataset"] not in DATASETS:
        raise ValueError(f"Unknown dataset {config['dataset']!r}; valid: {sorted(DATASETS)}, "
                         "or pass a Bunch to run_protocol.")


def _check_weights(config):
    """Load the perceptual network's weights once, so that a bad file fails before any data is made."""
    from ..losses.networks import resolve_layers
    from ..losses.perceptual import load_perceptual_net

    perceptual = [v for v in config["ae"]["variants"] if VARIANTS[v][0] != "pixel"]
    if not perceptual and "Frozen PCA" not in config["baselines"]["variants"]:
        return
    params = ae_params(config, "P. AE", config["ae"]["z_dims"][0])
    if params["perceptual_weights"] is not None:
        net = params["perceptual_net"]
        load_perceptual_net(net, max(resolve_layers(net, params["perceptual_layer"])), params["perceptual_weights"])


def run_protocol(bunch=None, config="smoke", out_dir=None, n_jobs=None, backend=None,
                 backend_kwargs=None, ae_resources=None, verbose=1, on_unit_done=None, report=True):
    """Run the paper's evaluation on one dataset and write its outputs.

    Fits the four autoencoder variants for every embedding size once, embeds
    the predictor and test sets once per AE, does the same with the
    training-free baselines (PCA of the pixels and of the frozen loss
    network's activations, ``baselines`` section), tunes and tests the heads
    on all of these embeddings, retrains each variant's best decoder for Table VIII, and
    writes ``results.csv``, ``tables.md``, ``figure6.png`` and
    ``embeddings.png`` to ``out_dir``. Re-running skips finished units; a
    second run on the same ``out_dir`` while one runs is refused.

    Parameters
    ----------
    bunch : Bunch or None, default=None
        Any Bunch with ``autoencoder``, ``predictor`` and ``test`` parts
        (``X`` uint8 (n, C, H, W); ``y`` float (n, 2) pixel positions for
        positioning or integer classes) and optionally ``name`` (the
        dataset's name in the reports; default ``config["dataset"]``),
        ``task`` and ``rollout`` groups in ``predictor``. None loads
        ``config["dataset"]``.
    config : str, path-like or dict, default="smoke"
        A profile name or path (see :func:`load_profile`) or a configuration.
    out_dir : str or path-like, default=None
        Run directory; None uses ``runs/<dataset>-<profile>-<run key>``.
    n_jobs : int, default=None
        Units run at once in local worker processes. None: one at a time in
        this process, or as many as the cluster runs when ``backend`` is
        given. With worker processes or a cluster, a head search starts as
        soon as its autoencoder is saved; when the AEs train on the GPU
        (``ae.device``), the local workers train one AE at a time and search
        heads in the others.
    backend : str, default=None
        None or ``"loky"`` (local worker processes when ``n_jobs > 1``),
        ``"dask"`` (the cluster of the current ``distributed.Client``),
        ``"ray"`` (the current Ray session, started if there is none), or
        any other registered joblib backend, which runs each stage's units
        after the stage before.
    backend_kwargs : dict, default=None
        Extra ``joblib.parallel_config`` arguments, for another joblib
        backend.
    ae_resources : dict, default=None
        What each autoencoder fit and decoder retraining asks the cluster
        for, e.g. ``{"GPU": 1}``: Dask worker resources, or Ray's
        ``num_gpus``. Head searches and baselines ask for one CPU.
    verbose : int, default=1
        Print progress to stderr.
    on_unit_done : callable, default=None
        Called as ``on_unit_done(unit, n_done, n_todo)`` after each unit is
        saved (``unit.stage``, ``unit.name``, ``unit.record``); an exception
        it raises stops the run, keeping the finished units.
    report : bool, default=True
        Render ``tables.md`` and the figures at the end.

    Returns
    -------
    results : pandas.DataFrame
        The rows of ``results.csv``.
    """
    config = load_profile(config) if not isinstance(config, dict) or "ae" not in config else config
    validate_config(config)
    _check_run_options(n_jobs, config, bunch)
    check_backend(backend)
    if backend is None:
        # Local units load the weights this machine resolves; a cluster's
        # workers may hold weights that this machine lacks.
        _check_weights(config)
    log = _Progress(verbose, on_unit_done)
    if out_dir is None:
        dataset = bunch.get("name", config["dataset"]) if bunch is not None else config["dataset"]
        out_dir = Path("runs") / f"{dataset}-{config['profile']}-{run_key(config)[:8]}"
    out = Path(out_dir)
    _check_out_dir(out)
    with RunLock(out):
        return _run_locked(bunch, config, out, log, report,
                           dict(n_jobs=n_jobs, backend=backend, backend_kwargs=backend_kwargs,
                                resources=_stage_resources(ae_resources),
                                limits=_local_limits(config, n_jobs, backend)))


def _run_locked(bunch, config, out, log, report, options):
    """The body of :func:`run_protocol`, once the run directory is held."""
    if bunch is None:
        bunch = load_dataset(config["dataset"], **_loader_kwargs(config, log.verbose))
    data = prepare_data(bunch, config)
    _check_baselines(config, data)
    write_json(out / "config.json", {**config, "run_key": run_key(config), "data_fingerprint": data.fingerprint,
                                     "task": data.task, "dataset": data.dataset})
    run = _run_context(config, data, out, log, options)
    ae_units, baseline_units, head_units = fit_and_search(run)
    # Learning curves and decoder retraining are the autoencoders' alone.
    ae_heads = [u for u in head_units if u.info["variant"] in VARIANTS]
    curve_units = learning_curves(run, ae_units, ae_heads)
    decoder_units = retrain_decoders(run, ae_units, ae_heads)
    rows = [u.record for u in head_units] + _baseline_rows(run) + [u.record for u in decoder_units]
    results = write_results(rows, out / "results.csv")
    if curve_units:
        write_csv(curve_rows(curve_units), out / "learning_curve.csv")
    log(f"wrote {out / 'results.csv'} ({len(results)} rows)")
    log(warning_summary(u.record for units in (ae_units, baseline_units, head_units, curve_units, decoder_units)
                        for u in units))
    if report:
        from ._report import render_report

        paths = render_report(out)
        log(f"wrote {paths[0]}, " + ", ".join(p.name for p in paths[1:]))
    return results


def _stage_resources(ae_resources):
    """The cluster resources of each stage: the AEs' for the stages that train an AE, the default for the rest."""
    return {"ae": dict(ae_resources), "decoder": dict(ae_resources)} if ae_resources else None


def _local_limits(config, n_jobs, backend):
    """Local workers train one AE at a time when the AEs train on the GPU: the others search heads."""
    from ..estimators._validation import resolve_device

    if backend not in (None, "loky") or runs_in_process(backend, n_jobs):
        return None
    if not resolve_device(config["ae"].get("device", "auto")).startswith("cuda"):
        return None
    return {"ae": 1, "decoder": 1}


def _check_out_dir(out):
    """The run directory must be a folder this process can write: checked before any work starts."""
    import tempfile

    if out.exists() and not out.is_dir():
        raise ValueError(f"The run directory (--out / out_dir) {out} is a file; pass the path of a folder, "
                         "new or from an earlier run.")
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    try:
        # A probe, not os.access: that says yes to root on a read-only mount.
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise PermissionError(f"The run directory (--out / out_dir) {out} cannot be written: {existing} refuses "
                              f"new files ({exc.strerror}). Pass a folder you can write.") from None


def _check_baselines(config, data):
    """PCA needs at least as many images as components: fail before any unit runs."""
    n_fit, n_ae = config["baselines"]["n_fit"], len(data.autoencoder.X)
    n = min(n_fit, n_ae) if n_fit else n_ae
    z = max(config["ae"]["z_dims"])
    if config["baselines"]["variants"] and z > n:
        raise ValueError(f"The baselines' PCA cannot find ae.z_dims' {z} components in {n} autoencoder images. "
                         "Use more images (data.n_autoencoder, baselines.n_fit), smaller ae.z_dims, or "
                         "--set 'baselines.variants=[]' to skip the baselines.")


def _loader_kwargs(config, verbose):
    """The dataset loader's arguments: the profile's, plus its progress bar when the run is verbose."""
    import inspect

    kwargs = dict(config["data"]["loader"].get(config["dataset"], {}))
    loader = DATASETS[config["dataset"]].load
    if verbose and "verbose" in inspect.signature(loader).parameters:
        kwargs.setdefault("verbose", 1)
    return kwargs


def _run_context(config, data, out, log, options):
    # LunarLander frames of one rollout are near-duplicates: the head split
    # keeps rollouts whole when the dataset says which frame is whose.
    groups, test_groups = data.predictor.get("rollout"), data.test.get("rollout")
    dataset = DATASETS.get(data.dataset)
    return Bunch(config=config, data=data, out=out, units_dir=out / "units", log=log,
                 options=options, groups=None if groups is None else np.asarray(groups),
                 test_groups=None if test_groups is None else np.asarray(test_groups),
                 figure_frames=np.asarray(select_figure_frames(data.test.y, config["report"]["n_frames"])),
                 head_split="ShuffleSplit" if groups is None else "GroupShuffleSplit",
                 metric=dataset.metric if dataset else TASK_METRICS[data.task])


def _baseline_rows(run):
    """The "predict the mean position" baseline (positioning only).

    Its validation value uses the heads' own split: the mean of the training
    part predicts the validation part, as a head would.
    """
    data = run.data
    if data.task != "positioning":
        return []
    y, y_test = np.asarray(data.predictor.y), np.asarray(data.test.y)
    (train, valid), = head_split(len(y), run.config["heads"]["validation_fraction"], run.config["random_state"],
                                 run.groups)
    low, high = metric_ci(data.task, y_test, np.broadcast_to(y.mean(axis=0), y_test.shape),
                          groups=run.test_groups, random_state=run.config["random_state"])
    return [{"dataset": data.dataset, "task": data.task, "variant": "baseline", "head": "mean-position",
             "metric": "pixels", "val_metric": mean_position_baseline(y[train], y[valid]),
             "test_metric": mean_position_baseline(y, y_test), "test_ci_low": low, "test_ci_high": high}]


def write_results(rows, path):
    """Write the rows as ``results.csv``, atomically, in a stable order.

    Returns
    -------
    results : pandas.DataFrame
    """
    import pandas as pd

    order = {v: i for i, v in enumerate([*VARIANTS, *BASELINES, "baseline"])}
    head_order = {h: i for i, h in enumerate([*HEADS, "mean-position", "decoder-retrain"])}
    df = pd.DataFrame(rows)
    df = df.assign(_v=df["variant"].map(order), _h=df["head"].map(head_order))
    sort = ["_v", "z_dim", "_h"] if "z_dim" in df else ["_v", "_h"]
    df = df.sort_values(sort, na_position="last").drop(columns=["_v", "_h"]).reset_index(drop=True)
    if "z_dim" in df:
        df["z_dim"] = df["z_dim"].astype("Int64")
    front = [c for c in ("dataset", "task", "variant", "z_dim", "head", "metric", "val_metric", "test_metric",
                         "best_params", "ae_fit_time", "ae_n_epochs", "ae_time_per_epoch") if c in df]
    df = df[front + [c for c in df.columns if c not in front]]
    return write_csv(df, path)


def write_csv(rows, path):
    """Write a DataFrame or a list of row dicts as a CSV file, atomically; return the DataFrame."""
    import pandas as pd

    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return df
