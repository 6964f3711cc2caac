"""The protocol's four stages, each a list of units for :func:`~._units.run_units`.

1. :func:`autoencoder_units`: one unit per (variant, z) fits an AE and
   embeds the predictor and test sets with it; :func:`baseline_units` does
   the same for the training-free reference embeddings (``baselines``
   section).
2. :func:`head_units`: one unit per (embedding, head) tunes the head on the
   embeddings and scores it on the test set. It starts after its embedding's
   unit: with worker processes or a cluster, while other AEs still train
   (:func:`fit_and_search`).
3. :func:`learning_curves`: one unit per AE embedded during training
   (``learning_curve`` section) scores Ridge and its chosen MLP on each
   checkpoint's embeddings.
4. :func:`retrain_decoders`: Table VIII, one unit per variant retrains the
   decoder of its best AE with pixel loss.

The columns every row of an AE carries are built in :func:`ae_columns`; a
head's row in :func:`head_row`, a decoder's in :func:`decoder_row`.
"""

import json
import time

import joblib
import numpy as np
from sklearn.exceptions import NotFittedError

from .._atomic import atomic_path
from ._config import BASELINES, VARIANTS, ae_params, config_hash, key_params
from ._heads import head_search_space, search_head
from ._metrics import mean_l1
from ._registry import heads_for
from ._units import EpochProgress, Unit, jsonable, run_units, runs_in_process


def _slug(variant):
    return variant.lower().replace(". ", "").replace(" ", "")


def _variants(config):
    return [v for v in VARIANTS if v in config["ae"]["variants"]]


# ------------------------------------------------------------ autoencoders


def _fit_ae(params, X_ae, X_pred, X_test, frame_index, curve_at=()):
    """Worker: fit one AE and embed the predictor and test sets (also at ``curve_at`` images seen)."""
    from ..estimators import PerceptualAETransformer
    from ..training.callbacks import EmbeddingCheckpoints

    curve = EmbeddingCheckpoints({"predictor": X_pred, "test": X_test}, at=curve_at)
    ae = PerceptualAETransformer(**params)
    # The epoch bar also shows the decoder retraining's epochs (fit_decoder
    # trains this net again); it is silent outside a verbose runner.
    callbacks = [("learning_curve", curve)] if len(curve_at) else []
    ae.set_params(callbacks=[*callbacks, ("epoch_progress", EpochProgress())])
    ae.fit(X_ae)
    checkpoints = getattr(curve, "checkpoints_", [])
    # The saved model keeps the callback: empty it, so that it carries
    # neither the image sets nor their embeddings.
    curve.images, curve.checkpoints_ = {}, []
    frames = X_test[frame_index]
    return dict(ae=ae, Z_predictor=ae.transform(X_pred), Z_test=ae.transform(X_test),
                recon=reconstruct(ae, frames), curve=checkpoints,
                fit_time=float(ae.fit_time_), n_epochs=int(ae.n_epochs_))


def _save_ae(unit, result):
    data, frame_index = unit.info["data"], unit.info["frame_index"]
    with atomic_path(unit.file(".joblib")) as tmp:
        joblib.dump(result["ae"], tmp)
    with atomic_path(unit.file(".npz")) as tmp:
        np.savez(tmp, Z_predictor=result["Z_predictor"], Z_test=result["Z_test"], y_test=np.asarray(data.test.y),
                 recon=result["recon"], frames=data.test.X[frame_index], frame_index=frame_index)
    if result["curve"]:
        with atomic_path(unit.file(".curve.npz")) as tmp:
            np.savez(tmp, n_images=[n for n, _ in result["curve"]],
                     Z_predictor=np.stack([z["predictor"] for _, z in result["curve"]]),
                     Z_test=np.stack([z["test"] for _, z in result["curve"]]))
    return {"variant": unit.info["variant"], "z_dim": unit.info["z"], "key": unit.key,
            "params": unit.info["params"], "fit_time": result["fit_time"], "n_epochs": result["n_epochs"],
            "curve_points": len(result["curve"])}


def curve_schedule(config, n_images, variant, z):
    """Images seen at which the AE of ``(variant, z)`` is embedded for the learning curve.

    Geometric, ending at the whole training budget (``n_images`` training
    images times ``ae.max_epochs``); empty for AEs outside the curve.
    """
    lc = config["learning_curve"]
    if variant not in lc["variants"] or z != lc["z_dim"]:
        return []
    total = n_images * config["ae"].get("max_epochs", 50)
    return [int(round(total / 2 ** k)) for k in reversed(range(lc["n_points"]))]


def autoencoder_units(run):
    """Stage 1: a unit per (variant, z) autoencoder."""
    config, data, frame_index = run.config, run.data, run.figure_frames
    # Held-out images are not trained on, so they do not count as seen.
    n_train = int(len(data.autoencoder.X) * (1 - (config["ae"].get("validation_fraction", 0.2) or 0)))
    units = []
    for variant in _variants(config):
        for z in config["ae"]["z_dims"]:
            params = ae_params(config, variant, z)
            curve_at = curve_schedule(config, n_train, variant, z)
            key = config_hash({"data": data.fingerprint, "params": key_params(params), "frames": frame_index.tolist(),
                               **({"curve_at": curve_at} if curve_at else {})})
            units.append(Unit(
                "ae", f"{_slug(variant)}-z{z}-{key}", key, run.units_dir / "ae", _fit_ae,
                inputs=lambda p=params, c=curve_at: (p, data.autoencoder.X, data.predictor.X, data.test.X,
                                                     frame_index, c),
                save=_save_ae, info=dict(variant=variant, z=z, params=params, data=data, frame_index=frame_index)))
    return units


# -------------------------------------------------------------- baselines


def _unit_pixels(X):
    """Images as flat float32 rows in [0, 1]: what PCA of the pixels reads."""
    X = np.asarray(X)
    flat = X.reshape(len(X), -1).astype(np.float32)
    if X.dtype == np.uint8:
        flat /= 255  # in place: one float copy of the images, not two
    return flat


def baseline_embedding(variant, z_dim, frozen_params, random_state):
    """The unfitted pipeline of one reference embedding.

    Parameters
    ----------
    variant : {"PCA", "Frozen PCA"}
    z_dim : int
        PCA components.
    frozen_params : dict
        :class:`~skperceptual.FrozenFeatureTransformer` parameters of the
        frozen network ("Frozen PCA" only).
    random_state : int

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
    """
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from ..estimators.frozen_features import FrozenFeatureTransformer

    first = (FrozenFeatureTransformer(**frozen_params, random_state=random_state) if variant == "Frozen PCA"
             else FunctionTransformer(_unit_pixels))
    return make_pipeline(first, PCA(n_components=z_dim, random_state=random_state))


def frozen_params(config):
    """The frozen network of "Frozen PCA": the perceptual loss's own, as the ``ae`` section sets it.

    Its activations are taken raw, as a user of a frozen feature extractor
    would take them: no squash, whatever ``ae.perceptual_squash``, and the
    layers of a multi-layer loss concatenated, unweighted.
    """
    params = ae_params(config, "P. AE", 1)
    return {"net": params["perceptual_net"], "layer": params["perceptual_layer"],
            "weights": params["perceptual_weights"], "normalize": params["perceptual_normalize"],
            "device": params["device"]}


def _in_chunks(transform, X, size=2048):
    # Bounded memory: a frozen network's activations are 9,408 floats per
    # 64x64 image at AlexNet's relu2, before PCA reduces them.
    return np.concatenate([transform(X[i : i + size]) for i in range(0, len(X), size)])


def _fit_baseline(variant, z_dim, params, X_fit, X_pred, X_test, random_state):
    """Worker: fit one reference embedding and embed the predictor and test sets."""
    embedding = baseline_embedding(variant, z_dim, params, random_state)
    start = time.perf_counter()
    embedding.fit(X_fit)
    fit_time = time.perf_counter() - start
    return dict(embedding=embedding, Z_predictor=_in_chunks(embedding.transform, X_pred),
                Z_test=_in_chunks(embedding.transform, X_test), fit_time=fit_time)


def _save_baseline(unit, result):
    with atomic_path(unit.file(".joblib")) as tmp:
        joblib.dump(result["embedding"], tmp)
    with atomic_path(unit.file(".npz")) as tmp:
        np.savez(tmp, Z_predictor=result["Z_predictor"], Z_test=result["Z_test"],
                 y_test=np.asarray(unit.info["data"].test.y))
    return {"variant": unit.info["variant"], "z_dim": unit.info["z"], "key": unit.key,
            "params": unit.info["params"], "fit_time": result["fit_time"], "n_epochs": None, "curve_points": 0}


def baseline_fit_index(n_images, n_fit, random_state):
    """Rows of the autoencoders' images that the baselines' PCA is fitted on (sorted)."""
    if not n_fit or n_images <= n_fit:
        return np.arange(n_images)
    return np.sort(np.random.default_rng(random_state).choice(n_images, n_fit, replace=False))


def baseline_units(run):
    """Stage 1b: a unit per reference embedding (``baselines.variants`` x ``ae.z_dims``)."""
    config, data = run.config, run.data
    seed = config["random_state"]
    index = baseline_fit_index(len(data.autoencoder.X), config["baselines"]["n_fit"], seed)
    # One array for every unit: workers then share one copy of it.
    X_fit = data.autoencoder.X[index] if config["baselines"]["variants"] else None
    units = []
    for variant in (v for v in BASELINES if v in config["baselines"]["variants"]):
        net = frozen_params(config) if variant == "Frozen PCA" else {}
        for z in config["ae"]["z_dims"]:
            params = {"z_dim": int(z), "n_fit": len(index), **net}
            key = config_hash({"data": data.fingerprint, "variant": variant, "params": params, "rs": seed})
            units.append(Unit(
                "baseline", f"{_slug(variant)}-z{z}-{key}", key, run.units_dir / "baseline", _fit_baseline,
                inputs=lambda v=variant, z=z, p=net: (v, int(z), p, X_fit, data.predictor.X, data.test.X, seed),
                save=_save_baseline, info=dict(variant=variant, z=z, params=params, data=data)))
    return units


def ae_columns(ae_unit, out):
    """The ``ae_*`` columns of every result row computed from one AE (or reference embedding)."""
    record = ae_unit.record
    epochs = record["n_epochs"]
    return {
        "ae_fit_time": record["fit_time"], "ae_n_epochs": epochs,
        "ae_time_per_epoch": None if epochs is None else record["fit_time"] / max(epochs, 1),
        "ae_file": str(ae_unit.file(".joblib").relative_to(out)), "ae_key": ae_unit.key,
        "ae_n_warnings": record.get("n_warnings"),
        **{f"ae_{k}": v for k, v in record["params"].items()},
    }


def _embeddings(ae_unit):
    if ae_unit.result is not None:
        return ae_unit.result["Z_predictor"], ae_unit.result["Z_test"]
    with np.load(ae_unit.file(".npz")) as f:
        return f["Z_predictor"], f["Z_test"]


def _ae_model(ae_unit):
    return ae_unit.result["ae"] if ae_unit.result is not None else joblib.load(ae_unit.file(".joblib"))


# ------------------------------------------------------------------- heads


def _search(Z_pred, y_pred, Z_test, y_test, task, kind, heads_config, random_state, groups, test_groups):
    """Worker: tune one head on one AE's embeddings."""
    return search_head(Z_pred, y_pred, Z_test, y_test, task, kind, heads_config, random_state, groups=groups,
                       test_groups=test_groups)[0]


def head_row(run, ae_unit, kind, row, unit_key):
    """The results.csv row of one head tuned on one AE's embeddings."""
    data, heads = run.data, run.config["heads"]
    return {
        "dataset": data.dataset, "task": data.task, "variant": ae_unit.info["variant"], "z_dim": ae_unit.info["z"],
        "head": kind, "metric": run.metric, **row,
        "best_params": json.dumps(row["best_params"], sort_keys=True, default=jsonable),
        **ae_columns(ae_unit, run.out), "unit_key": unit_key,
        "head_grid": json.dumps(heads, sort_keys=True), "head_split": run.head_split,
    }


def head_units(run, ae_units):
    """Stage 2: a unit per head family and AE (or baseline), run after that AE's unit."""
    config, data = run.config, run.data
    units = []
    for ae_unit in ae_units:
        for kind in heads_for(data.task, config["heads"]["kinds"]):
            key = config_hash({"ae": ae_unit.key, "kind": kind, "heads": config["heads"], "rs": config["random_state"],
                               "task": data.task, "split": run.head_split})

            def inputs(ae_unit=ae_unit, kind=kind):
                Z_pred, Z_test = _embeddings(ae_unit)
                return (Z_pred, np.asarray(data.predictor.y), Z_test, np.asarray(data.test.y), data.task, kind,
                        config["heads"], config["random_state"], run.groups, run.test_groups)

            units.append(Unit(
                "head", f"{_slug(ae_unit.info['variant'])}-z{ae_unit.info['z']}-{kind}-{key}", key,
                run.units_dir / "heads", _search, inputs,
                save=lambda unit, row: head_row(run, unit.info["ae"], unit.info["kind"], row, unit.key),
                info=dict(ae=ae_unit, kind=kind, variant=ae_unit.info["variant"], z=ae_unit.info["z"]),
                after=[ae_unit]))
    return units


def fit_and_search(run):
    """Stages 1 and 2: fit the AEs and baselines and search their heads; return the three lists of units.

    With worker processes or a cluster (``run.options``), they run as one
    pipeline: a head search starts as soon as its embedding is saved, so
    that the heads' CPUs work while the AEs train. In this process, one
    stage after the other.
    """
    aes, baselines = autoencoder_units(run), baseline_units(run)
    heads = head_units(run, aes + baselines)
    if runs_in_process(run.options["backend"], run.options["n_jobs"]):
        run_stage(run, "autoencoders", aes)
        run_stage(run, "baselines", baselines)
        run_stage(run, "head searches", heads)
    else:
        run_stage(run, "autoencoders, baselines and head searches", aes + baselines + heads)
    return aes, baselines, heads


# ---------------------------------------------------------- learning curve


def _one_candidate(task, heads_config, best_params):
    """The MLP grid reduced to one chosen candidate (``best_params`` without prefixes)."""
    _, grid = head_search_space(task, "mlp", heads_config)
    pick = {k: tuple(v) if isinstance(v, list) else v for k, v in best_params.items()}
    return {key: [pick[key.rsplit("__", 1)[-1]]] for key in grid}


def _curve(n_images, Z_pred, y_pred, Z_test, y_test, task, mlp_grid, heads_config, random_state, groups,
           test_groups):
    """Worker: Ridge (its grid) and the chosen MLP on each checkpoint's embeddings."""
    rows = []
    for n, Zp, Zt in zip(n_images, Z_pred, Z_test):
        for kind, grid in (("linear", None), ("mlp", mlp_grid)):
            if kind == "mlp" and grid is None:
                continue
            row = search_head(Zp, y_pred, Zt, y_test, task, kind, heads_config, random_state, groups=groups,
                              test_groups=test_groups, param_grid=grid)[0]
            rows.append({"head": kind, "n_images": int(n), "val_metric": row["val_metric"],
                         "test_metric": row["test_metric"], "test_ci_low": row["test_ci_low"],
                         "test_ci_high": row["test_ci_high"]})
    return rows


def _curve_inputs(run, ae_unit, mlp_grid):
    data, config = run.data, run.config
    with np.load(ae_unit.file(".curve.npz")) as f:
        n_images, Z_pred, Z_test = f["n_images"], f["Z_predictor"], f["Z_test"]
    return (n_images, Z_pred, np.asarray(data.predictor.y), Z_test, np.asarray(data.test.y), data.task, mlp_grid,
            config["heads"], config["random_state"], run.groups, run.test_groups)


def learning_curves(run, ae_units, head_units):
    """Stage 3: head error against images seen, for the AEs with checkpoint embeddings.

    Ridge gets its whole grid at each checkpoint; the MLP keeps the
    architecture its search chose on the AE's final embeddings.
    """
    config = run.config
    chosen = {h.info["ae"].key: json.loads(h.record["best_params"]) for h in head_units if h.info["kind"] == "mlp"}
    units = []
    for ae_unit in ae_units:
        if not ae_unit.record.get("curve_points"):
            continue
        best = chosen.get(ae_unit.key)
        mlp_grid = None if best is None else _one_candidate(run.data.task, config["heads"], best)
        key = config_hash({"ae": ae_unit.key, "mlp": best, "heads": config["heads"], "rs": config["random_state"],
                           "split": run.head_split})
        variant, z = ae_unit.info["variant"], ae_unit.info["z"]
        units.append(Unit(
            "curve", f"{_slug(variant)}-z{z}-{key}", key, run.units_dir / "curve", _curve,
            inputs=lambda a=ae_unit, g=mlp_grid: _curve_inputs(run, a, g),
            save=lambda unit, rows: {"variant": unit.info["variant"], "z_dim": unit.info["z"], "rows": rows},
            info=dict(variant=variant, z=z)))
    return run_stage(run, "learning curves", units)


def curve_rows(curve_units):
    """The rows of ``learning_curve.csv``: one per (variant, head, checkpoint).

    Each row carries its curve unit's ``n_warnings`` and
    ``warning_categories``, so that the run's warning summary can point at
    this file; a unit's count is repeated on each of its rows.
    """
    return [{"variant": u.record["variant"], "z_dim": u.record["z_dim"], **row,
             "n_warnings": u.record.get("n_warnings", 0), "warning_categories": u.record.get("warning_categories")}
            for u in curve_units for row in u.record["rows"]]


# ---------------------------------------------------------------- decoders


def reconstruct(ae, X):
    """``ae``'s reconstructions of ``X``: all NaN while it has no pixel decoder.

    A feature-prediction AE (F. AE, F. VAE) decodes features until
    :meth:`~skperceptual.PerceptualAETransformer.fit_decoder` trains its pixel
    decoder, so its Table VIII "before" error and Figure 6 row are NaN.
    """
    try:
        return ae.inverse_transform(ae.transform(X))
    except NotFittedError:
        return np.full(np.shape(X), np.nan, dtype=np.float32)


def reconstruction_l1(ae, X, batch_size=256):
    """Mean L1 error (on the [0, 1] scale) of ``ae``'s reconstructions of ``X``.

    Reconstructs from the mean embedding, batch by batch.
    """
    total = 0.0
    for start in range(0, len(X), batch_size):
        chunk = X[start : start + batch_size]
        total += mean_l1(chunk, reconstruct(ae, chunk)) * len(chunk)
    return total / len(X)


def _retrain(ae, X_ae, X_test, frame_index, decoder_config, random_state):
    """Worker: Table VIII's pixel-loss decoder retraining of one AE."""
    l1_before = reconstruction_l1(ae, X_test)
    ae.fit_decoder(X_ae, **decoder_config, random_state=random_state)
    return dict(ae=ae, l1_before=l1_before, l1_after=reconstruction_l1(ae, X_test),
                recon_after=ae.inverse_transform(ae.transform(X_test[frame_index])),
                decoder_fit_time=float(ae.decoder_fit_time_), decoder_epochs=len(ae.decoder_history_))


def decoder_row(run, ae_unit, result, unit, selected_by):
    """The results.csv row of one retrained decoder."""
    return {
        "dataset": run.data.dataset, "task": run.data.task, "variant": ae_unit.info["variant"],
        "z_dim": ae_unit.info["z"], "head": "decoder-retrain", "metric": "l1", "selected_by": selected_by,
        "test_metric": result["l1_after"], "l1_before": result["l1_before"],
        "decoder_fit_time": result["decoder_fit_time"], "decoder_epochs": result["decoder_epochs"],
        **ae_columns(ae_unit, run.out), "retrained_file": str(unit.file(".joblib").relative_to(run.out)),
        "unit_key": unit.key,
    }


def _save_decoder(unit, result):
    with atomic_path(unit.file(".joblib")) as tmp:
        joblib.dump(result["ae"], tmp)
    with atomic_path(unit.file(".npz")) as tmp:
        np.savez(tmp, recon_after=result["recon_after"])
    return decoder_row(unit.info["run"], unit.info["ae"], result, unit, unit.info["selected_by"])


def best_autoencoders(ae_units, head_units, select_kind):
    """Each variant's best AE: highest validation score of its ``select_kind`` head, then smallest z."""
    best = {}
    for head in head_units:
        if head.info["kind"] != select_kind:
            continue
        score = (head.record["val_score"], -head.info["z"])
        variant = head.info["variant"]
        if variant not in best or score > best[variant][0]:
            best[variant] = (score, head.info["ae"])
    return [best[v][1] for v in VARIANTS if v in best]


def retrain_decoders(run, ae_units, head_units):
    """Stage 4: retrain each variant's best decoder with pixel loss; return the decoder units."""
    config, data, frame_index = run.config, run.data, run.figure_frames
    kinds = heads_for(data.task, config["heads"]["kinds"])
    select_kind = "mlp" if "mlp" in kinds else (kinds[0] if kinds else None)
    units = []
    for ae_unit in best_autoencoders(ae_units, head_units, select_kind):
        key = config_hash({"ae": ae_unit.key, "decoder": config["decoder"], "rs": config["random_state"],
                           "frames": frame_index.tolist()})
        units.append(Unit(
            "decoder", f"{_slug(ae_unit.info['variant'])}-z{ae_unit.info['z']}-{key}", key,
            run.units_dir / "decoder", _retrain,
            inputs=lambda a=ae_unit: (_ae_model(a), data.autoencoder.X, data.test.X, frame_index,
                                      config["decoder"], config["random_state"]),
            save=_save_decoder,
            info=dict(run=run, ae=ae_unit, selected_by=select_kind, variant=ae_unit.info["variant"],
                      z=ae_unit.info["z"])))
    return run_stage(run, "decoder retrainings", units)


def run_stage(run, label, units):
    """Run one stage's units through :func:`run_units`, reporting progress."""
    done = sum(unit.record_path.is_file() for unit in units)
    with run.log.stage(label, len(units) - done) as progress:
        run.log(f"{done}/{len(units)} {label} already done; running {len(units) - done}")
        return run_units(units, progress=progress, show_epochs=run.log.verbose, **run.options)


def retrain_decoder(ae, X, **kwargs):
    """Return a copy of ``ae`` whose decoder :meth:`~skperceptual.PerceptualAETransformer.fit_decoder` retrained.

    ``ae`` itself is left untouched; ``kwargs`` go to ``fit_decoder``.
    """
    import copy

    return copy.deepcopy(ae).fit_decoder(X, **kwargs)
