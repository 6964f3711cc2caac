"""The protocol as resumable units dispatched through joblib.

A run is a set of independent units, each saved to its own small files in
``<out>/units/`` as soon as it finishes, with :func:`~skperceptual._atomic.atomic_path`:

* ``ae``: fit one autoencoder (variant, z) and embed the predictor and test
  sets with it (``.joblib`` model, ``.npz`` embeddings, ``.json`` record);
* ``head``: tune one head family on one AE's embeddings (``.json`` row);
* ``decoder``: Table VIII's decoder retraining of one variant's best AE.

Each unit's file name carries a hash of everything it depends on (data,
parameters, seed), so a re-run skips finished units and a changed setting
never reuses a stale one. The ``.json`` record is written last and marks the
unit as done. ``results.csv`` is rebuilt from the records of the current
configuration, atomically, so it never has partial or duplicate rows.
"""

import hashlib
import importlib
import json
import sys
import time
from pathlib import Path

import joblib
import numpy as np
from sklearn.utils import Bunch

from .._atomic import atomic_path
from ._config import VARIANTS, config_hash, load_profile, run_key
from ._heads import FAMILIES, search_head
from ._metrics import mean_position_baseline

#: Order of the variants in tables and in results.csv.
VARIANT_ORDER = list(VARIANTS)


# --------------------------------------------------------------------- data


def load_dataset(name, **loader_kwargs):
    """Load a dataset by name through ``skperceptual.datasets.load_<name>``.

    The loaders are imported lazily, so the protocol works with any Bunch
    even where the datasets module is unavailable.
    """
    try:
        module = importlib.import_module("skperceptual.datasets")
        loader = getattr(module, f"load_{name}")
    except (ImportError, AttributeError) as exc:
        raise ValueError(
            f"No loader skperceptual.datasets.load_{name} ({exc}); pass a Bunch with "
            "autoencoder/predictor/test parts to run_protocol instead."
        ) from exc
    return loader(**loader_kwargs)


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
        The capped parts, ``task`` and ``fingerprint`` (a hash of the arrays).
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


# -------------------------------------------------------------------- units


def _slug(variant):
    return variant.lower().replace(". ", "").replace(" ", "")


def ae_params(config, variant, z_dim):
    """PerceptualAETransformer parameters of one AE unit.

    Parameters
    ----------
    config : dict
        A resolved configuration (:func:`load_profile`).
    variant : {"AE", "VAE", "P. AE", "P. VAE"}
        Pixel or perceptual loss, plain or variational.
    z_dim : int
        Embedding size.

    Returns
    -------
    params : dict
        Keyword arguments of :class:`~skperceptual.PerceptualAETransformer`.

    Examples
    --------
    >>> from skperceptual.protocol import load_profile
    >>> p = ae_params(load_profile("smoke"), "P. VAE", 16)
    >>> p["loss"], p["variational"], p["z_dim"]
    ('perceptual', True, 16)
    """
    loss, variational = VARIANTS[variant]
    ae = config["ae"]
    return dict(
        z_dim=int(z_dim), variational=variational, kl_weight=ae["kl_weight"], loss=loss,
        perceptual_net=ae["perceptual_net"], perceptual_layer=ae["perceptual_layer"],
        perceptual_weights=ae["perceptual_weights"], perceptual_normalize=ae["perceptual_normalize"],
        max_epochs=ae["max_epochs"], batch_size=ae["batch_size"], lr=ae["lr"],
        validation_fraction=ae["validation_fraction"], patience=ae["patience"],
        device=ae["device"], random_state=config["random_state"],
    )


def _fit_ae_unit(params, X_ae, X_pred, X_test, n_frames):
    """Worker: fit one AE and embed the predictor and test sets."""
    from .. import PerceptualAETransformer

    ae = PerceptualAETransformer(**params).fit(X_ae)
    frames = X_test[:n_frames]
    return dict(
        ae=ae,
        Z_predictor=ae.transform(X_pred),
        Z_test=ae.transform(X_test),
        recon=ae.inverse_transform(ae.transform(frames)),
        fit_time=float(ae.fit_time_),
        n_epochs=int(ae.n_epochs_),
    )


def _head_unit(Z_pred, y_pred, Z_test, y_test, task, kind, heads_config, random_state, groups=None):
    """Worker: tune one head family on one AE's embeddings."""
    row, _ = search_head(Z_pred, y_pred, Z_test, y_test, task, kind, {"heads": heads_config}, random_state,
                         groups=groups)
    return row


def _decoder_unit(ae, X_ae, X_test, n_frames, decoder_config, random_state):
    """Worker: Table VIII's pixel-loss decoder retraining of one AE."""
    from ._decoder import reconstruction_l1, retrain_decoder

    retrained = retrain_decoder(ae, X_ae, max_epochs=decoder_config["max_epochs"], lr=decoder_config["lr"],
                                patience=decoder_config["patience"], random_state=random_state)
    frames = X_test[:n_frames]
    return dict(
        ae=retrained,
        l1_before=reconstruction_l1(ae, X_test),
        l1_after=reconstruction_l1(retrained, X_test),
        recon_after=retrained.inverse_transform(retrained.transform(frames)),
        decoder_fit_time=float(retrained.decoder_fit_time_),
        decoder_epochs=len(retrained.decoder_history_),
    )


def _write_json(path, obj):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=_jsonable))


def _jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, np.ndarray)):
        return list(obj)
    return str(obj)


def _read_json(path):
    return json.loads(Path(path).read_text())


# ----------------------------------------------------------------- dispatch


class _Progress:
    def __init__(self, verbose):
        self.verbose = verbose
        self.start = time.perf_counter()

    def __call__(self, message):
        if self.verbose:
            elapsed = time.perf_counter() - self.start
            print(f"[{elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)


def _dispatch(function, tasks, n_jobs, backend, backend_kwargs, on_result):
    """Run ``function(*args)`` for each ``(unit, args)`` of ``tasks`` through joblib.

    Results are handed to ``on_result(unit, result)`` as each finishes (not
    when all have), so that finished units are saved before the next
    completes: killing the run loses only the units in flight.
    """
    if not tasks:
        return
    from joblib import Parallel, delayed, parallel_config

    # n_jobs=None means sequential in this process, unless a backend (a
    # cluster) is named: then use every worker it offers.
    if n_jobs is None:
        n_jobs = -1 if backend else 1
    units = [unit for unit, _ in tasks]
    options = dict(backend_kwargs or {}, n_jobs=n_jobs)
    if backend is not None:
        options["backend"] = backend
    with parallel_config(**options):
        results = Parallel(return_as="generator_unordered")(
            delayed(_tagged)(i, function, args) for i, (_, args) in enumerate(tasks)
        )
        for i, result in results:
            on_result(units[i], result)


def _tagged(i, function, args):
    return i, function(*args)


# ------------------------------------------------------------------ protocol


def run_protocol(bunch=None, config="smoke", out_dir=None, n_jobs=None, backend=None,
                 backend_kwargs=None, verbose=1, on_unit_done=None, report=True):
    """Run the paper's evaluation on one dataset and write its outputs.

    Fits the four autoencoder variants for every embedding size once, embeds
    the predictor and test sets once per AE, tunes and tests the heads on
    the embeddings, retrains each variant's best decoder for Table VIII, and
    writes ``results.csv``, ``tables.md``, ``figure6.png`` and
    ``embeddings.png`` to ``out_dir``. Re-running skips finished units.

    Parameters
    ----------
    bunch : Bunch or None, default=None
        Any Bunch with ``autoencoder``, ``predictor`` and ``test`` parts
        (``X`` uint8 (n, C, H, W); ``y`` float (n, 2) pixel positions for
        positioning or integer classes) and optionally ``task``. None loads
        ``config["dataset"]`` through ``skperceptual.datasets``.
    config : str, path-like or dict, default="smoke"
        A profile name or path (see :func:`load_profile`) or a resolved
        configuration.
    out_dir : str or path-like, default=None
        Run directory; None uses ``runs/<dataset>-<profile>-<run key>``.
    n_jobs : int, default=None
        Units run at once. None: one at a time in this process, or every
        worker of the cluster when ``backend`` is given.
    backend : str, default=None
        joblib backend: None (loky processes when n_jobs > 1), ``"dask"``
        (needs a ``distributed.Client``), ``"ray"`` (after
        ``ray.util.joblib.register_ray()``), or any registered backend.
    backend_kwargs : dict, default=None
        Extra ``joblib.parallel_config`` arguments, e.g.
        ``{"resources": {"GPU": 1}}`` for one unit per GPU worker on dask.
    verbose : int, default=1
        Print progress to stderr.
    on_unit_done : callable, default=None
        Called as ``on_unit_done(kind, name)`` after each unit is saved.
    report : bool, default=True
        Render ``tables.md`` and the figures at the end.

    Returns
    -------
    results : pandas.DataFrame
        The rows of ``results.csv``.
    """
    if not isinstance(config, dict) or "ae" not in config:
        config = load_profile(config)
    if bunch is None:
        bunch = load_dataset(config["dataset"], **config["data"]["loader"].get(config["dataset"], {}))
    data = prepare_data(bunch, config)
    key = run_key(config)
    if out_dir is None:
        out_dir = Path("runs") / f"{data.dataset}-{config['profile']}-{key[:8]}"
    out = Path(out_dir)
    units_dir = out / "units"
    progress = _Progress(verbose)
    _write_json(out / "config.json", {**config, "run_key": key, "data_fingerprint": data.fingerprint,
                                      "task": data.task, "dataset": data.dataset})
    rs = config["random_state"]
    n_frames = config["report"]["n_frames"]
    notify = on_unit_done or (lambda kind, name: None)

    # 1. Autoencoders: fitted once each; embeddings computed with them.
    ae_units = {}
    for variant in (v for v in VARIANT_ORDER if v in config["ae"]["variants"]):
        for z in config["ae"]["z_dims"]:
            params = ae_params(config, variant, z)
            ukey = config_hash({"data": data.fingerprint, "params": params, "n_frames": n_frames})
            stem = units_dir / "ae" / f"{_slug(variant)}-z{z}-{ukey}"
            ae_units[(variant, z)] = Bunch(variant=variant, z=z, params=params, key=ukey, stem=stem)
    todo = [u for u in ae_units.values() if not u.stem.with_suffix(".json").is_file()]
    progress(f"{len(ae_units) - len(todo)}/{len(ae_units)} autoencoders already fitted; fitting {len(todo)}")
    counter = iter(range(1, len(todo) + 1))

    def save_ae(unit, result):
        with atomic_path(unit.stem.with_suffix(".joblib")) as tmp:
            joblib.dump(result["ae"], tmp)
        with atomic_path(unit.stem.with_suffix(".npz")) as tmp:
            np.savez(tmp, Z_predictor=result["Z_predictor"], Z_test=result["Z_test"],
                     y_test=np.asarray(data.test.y), recon=result["recon"],
                     frames=X_test[:n_frames])
        record = {"variant": unit.variant, "z_dim": unit.z, "key": unit.key, "params": unit.params,
                  "fit_time": result["fit_time"], "n_epochs": result["n_epochs"]}
        _write_json(unit.stem.with_suffix(".json"), record)
        progress(f"AE {next(counter)}/{len(todo)}: {unit.variant} z={unit.z} fitted in "
                 f"{result['fit_time']:.1f}s ({result['n_epochs']} epochs)")
        notify("ae", unit.stem.name)

    X_ae, X_pred, X_test = data.autoencoder.X, data.predictor.X, data.test.X
    _dispatch(_fit_ae_unit, [(u, (u.params, X_ae, X_pred, X_test, n_frames)) for u in todo],
              n_jobs, backend, backend_kwargs, save_ae)

    # 2-3. Heads: one grid search per (AE, head family), on saved embeddings.
    heads_cfg = config["heads"]
    kinds = [k for family in heads_cfg["kinds"] for k in FAMILIES[data.task][family]]
    # LunarLander frames of one rollout are near-duplicates: split the
    # predictor set by rollout when the dataset says which frame is whose.
    groups = data.predictor.get("rollout")
    groups = None if groups is None else np.asarray(groups)
    split = "random" if groups is None else "by-group"
    head_units, tasks = [], []
    for unit in ae_units.values():
        record = _read_json(unit.stem.with_suffix(".json"))
        embeddings = None
        for kind in kinds:
            hkey = config_hash({"ae": unit.key, "kind": kind, "heads": heads_cfg, "rs": rs, "task": data.task,
                                "split": split})
            path = units_dir / "heads" / f"{_slug(unit.variant)}-z{unit.z}-{kind}-{hkey}.json"
            hunit = Bunch(ae=unit, record=record, kind=kind, key=hkey, path=path)
            head_units.append(hunit)
            if not path.is_file():
                if embeddings is None:
                    with np.load(unit.stem.with_suffix(".npz")) as f:
                        embeddings = (f["Z_predictor"], f["Z_test"])
                tasks.append((hunit, (embeddings[0], np.asarray(data.predictor.y), embeddings[1],
                                      np.asarray(data.test.y), data.task, kind, heads_cfg, rs, groups)))
    progress(f"{len(head_units) - len(tasks)}/{len(head_units)} head searches already done; running {len(tasks)}")
    hcounter = iter(range(1, len(tasks) + 1))

    def save_head(hunit, row):
        unit, record = hunit.ae, hunit.record
        full = {
            "dataset": data.dataset, "task": data.task, "variant": unit.variant, "z_dim": unit.z,
            "head": hunit.kind, "metric": "pixels" if data.task == "positioning" else "accuracy",
            **row, "best_params": json.dumps(row["best_params"], sort_keys=True, default=_jsonable),
            "ae_fit_time": record["fit_time"], "ae_n_epochs": record["n_epochs"],
            "ae_time_per_epoch": record["fit_time"] / max(record["n_epochs"], 1),
            "ae_file": str(unit.stem.with_suffix(".joblib").relative_to(out)),
            "ae_key": unit.key, "unit_key": hunit.key,
            "head_grid": json.dumps(heads_cfg, sort_keys=True), "head_split": split,
            **{f"ae_{k}": v for k, v in unit.params.items()},
        }
        _write_json(hunit.path, full)
        progress(f"head {next(hcounter)}/{len(tasks)}: {unit.variant} z={unit.z} {hunit.kind}: "
                 f"val {row['val_metric']:.4g}, test {row['test_metric']:.4g} ({row['search_time']:.1f}s)")
        notify("head", hunit.path.name)

    _dispatch(_head_unit, tasks, n_jobs, backend, backend_kwargs, save_head)

    # 4. The "predict the mean position" baseline (positioning only).
    extra = []
    if data.task == "positioning":
        extra.append({
            "dataset": data.dataset, "task": data.task, "variant": "baseline", "head": "mean-position",
            "metric": "pixels",
            "val_metric": mean_position_baseline(data.predictor.y, data.predictor.y),
            "test_metric": mean_position_baseline(data.predictor.y, data.test.y),
        })

    # 5. Table VIII: each variant's best AE (by validation score of its MLP
    # head, else its first head family) gets its decoder retrained.
    rows = [_read_json(h.path) for h in head_units]
    select_kind = "mlp" if "mlp" in kinds else (kinds[0] if kinds else None)
    dec_tasks, dec_units = [], []
    for variant in (v for v in VARIANT_ORDER if v in config["ae"]["variants"]):
        candidates = [r for r in rows if r["variant"] == variant and r["head"] == select_kind]
        if not candidates:
            continue
        best = max(candidates, key=lambda r: (r["val_score"], -r["z_dim"]))
        unit = ae_units[(variant, best["z_dim"])]
        dkey = config_hash({"ae": unit.key, "decoder": config["decoder"], "rs": rs, "n_frames": n_frames})
        stem = units_dir / "decoder" / f"{_slug(variant)}-z{unit.z}-{dkey}"
        dunit = Bunch(ae=unit, key=dkey, stem=stem, selected_by=select_kind)
        dec_units.append(dunit)
        if not stem.with_suffix(".json").is_file():
            dec_tasks.append((dunit, (joblib.load(unit.stem.with_suffix(".joblib")), X_ae, X_test, n_frames,
                                      config["decoder"], rs)))
    progress(f"{len(dec_units) - len(dec_tasks)}/{len(dec_units)} decoder retrainings already done; "
             f"running {len(dec_tasks)}")

    def save_decoder(dunit, result):
        unit = dunit.ae
        with atomic_path(dunit.stem.with_suffix(".joblib")) as tmp:
            joblib.dump(result["ae"], tmp)
        with atomic_path(dunit.stem.with_suffix(".npz")) as tmp:
            np.savez(tmp, recon_after=result["recon_after"])
        record = _read_json(unit.stem.with_suffix(".json"))
        _write_json(dunit.stem.with_suffix(".json"), {
            "dataset": data.dataset, "task": data.task, "variant": unit.variant, "z_dim": unit.z,
            "head": "decoder-retrain", "metric": "l1", "selected_by": dunit.selected_by,
            "test_metric": result["l1_after"], "l1_before": result["l1_before"],
            "decoder_fit_time": result["decoder_fit_time"], "decoder_epochs": result["decoder_epochs"],
            "ae_fit_time": record["fit_time"], "ae_n_epochs": record["n_epochs"],
            "ae_time_per_epoch": record["fit_time"] / max(record["n_epochs"], 1),
            "ae_file": str(unit.stem.with_suffix(".joblib").relative_to(out)),
            "retrained_file": str(dunit.stem.with_suffix(".joblib").relative_to(out)),
            "ae_key": unit.key, "unit_key": dunit.key,
            **{f"ae_{k}": v for k, v in unit.params.items()},
        })
        progress(f"decoder {unit.variant} z={unit.z}: L1 {result['l1_before']:.4f} -> {result['l1_after']:.4f} "
                 f"({result['decoder_fit_time']:.1f}s)")
        notify("decoder", dunit.stem.name)

    _dispatch(_decoder_unit, dec_tasks, n_jobs, backend, backend_kwargs, save_decoder)
    rows += extra + [_read_json(d.stem.with_suffix(".json")) for d in dec_units]

    results = write_results(rows, out / "results.csv")
    progress(f"wrote {out / 'results.csv'} ({len(results)} rows)")
    if report:
        from ._report import render_report

        render_report(out)
        progress(f"wrote {out / 'tables.md'}, figure6.png, embeddings.png")
    return results


def write_results(rows, path):
    """Write the rows as ``results.csv``, atomically, in a stable order.

    Returns
    -------
    results : pandas.DataFrame
    """
    import pandas as pd

    order = {v: i for i, v in enumerate(VARIANT_ORDER + ["baseline"])}
    head_order = {"mlp": 0, "linear": 1, "logistic": 2, "mean-position": 3, "decoder-retrain": 4}
    df = pd.DataFrame(rows)
    df = df.assign(_v=df["variant"].map(order), _h=df["head"].map(head_order))
    sort = ["_v", "z_dim", "_h"] if "z_dim" in df else ["_v", "_h"]
    df = df.sort_values(sort, na_position="last").drop(columns=["_v", "_h"]).reset_index(drop=True)
    if "z_dim" in df:
        df["z_dim"] = df["z_dim"].astype("Int64")
    front = [c for c in ("dataset", "task", "variant", "z_dim", "head", "metric", "val_metric", "test_metric",
                         "best_params", "ae_fit_time", "ae_n_epochs", "ae_time_per_epoch") if c in df]
    df = df[front + [c for c in df.columns if c not in front]]
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return df
