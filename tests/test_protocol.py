"""Tests of the evaluation protocol (skperceptual.protocol).

Everything runs on a tiny synthetic dataset (64x64 frames with a bright
square whose position is the target) so that the suite stays fast on a CPU.
"""

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.utils import Bunch

from skperceptual.__main__ import main as cli_main
from skperceptual.protocol import _runner, load_profile, run_protocol, search_head
from skperceptual.protocol._config import ae_params, parse_overrides
from skperceptual.protocol._heads import head_search_space, head_split
from skperceptual.protocol._metrics import (
    accuracy,
    euclidean_scorer,
    mean_euclidean_distance,
    mean_l1,
    mean_position_baseline,
    relative_to_best,
)
from skperceptual.protocol._registry import mlp_architectures
from skperceptual.protocol._report import perceptual_overhead

PAPER_ARCHITECTURES = [
    (32,), (64,), (128,),
    (32, 32), (64, 32), (64, 64), (128, 32), (128, 64), (128, 128),
]


def _part(n, rng, with_y=True, classes=False):
    X = rng.integers(0, 40, (n, 3, 64, 64), dtype=np.uint8)
    pos = rng.uniform(4, 56, (n, 2)).astype(np.float32)
    for i, (c, r) in enumerate(pos.astype(int)):
        X[i, :, max(r - 3, 0) : r + 3, max(c - 3, 0) : c + 3] = 255
    if not with_y:
        return Bunch(X=X, y=None)
    y = (pos[:, 0] > 30).astype(np.int64) + 2 * (pos[:, 1] > 30) if classes else pos
    return Bunch(X=X, y=y)


def make_bunch(name="lunarlander", classes=False, seed=0):
    """A synthetic dataset following the skperceptual.datasets contract."""
    rng = np.random.default_rng(seed)
    predictor = _part(50, rng, classes=classes)
    predictor.rollout = np.repeat(np.arange(10), 5)  # as LunarLander parts carry
    return Bunch(
        autoencoder=_part(40, rng, with_y=False),
        predictor=predictor,
        test=_part(20, rng, classes=classes),
        task="classification" if classes else "positioning",
        image_shape=(3, 64, 64),
        name=name,
    )


def tiny_config(**overrides):
    """The smoke profile cut down further, without pretrained weights."""
    base = dict(ae__perceptual_weights=None, ae__z_dims=[4, 8], data__n_autoencoder=0,
                data__n_predictor=0, data__n_test=0, report__n_frames=3)
    base.update(overrides)
    return load_profile("smoke", **base)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One local end-to-end run of the smoke protocol, shared by several tests."""
    out = tmp_path_factory.mktemp("smoke")
    results = run_protocol(make_bunch(), tiny_config(), out, verbose=0)
    return out, results


# ------------------------------------------------------------------ heads


def test_mlp_grid_is_the_papers():
    assert mlp_architectures() == PAPER_ARCHITECTURES
    for task, est, prefix in [("positioning", MLPRegressor, "head__regressor__"),
                              ("classification", MLPClassifier, "head__")]:
        pipe, grid = head_search_space(task, "mlp", load_profile("paper"))
        assert sorted(grid[prefix + "hidden_layer_sizes"]) == sorted(PAPER_ARCHITECTURES)
        assert grid[prefix + "activation"] == ["relu", "logistic"]
        assert [name for name, _ in pipe.steps] == ["scale", "head"]
        mlp = pipe.named_steps["head"]
        mlp = getattr(mlp, "regressor", mlp)
        assert isinstance(mlp, est)
        assert mlp.early_stopping and mlp.max_iter >= 1000


def test_mlp_output_layers():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(60, 4))
    pipe, _ = head_search_space("positioning", "mlp", {"heads": {"max_iter": 50}})
    pipe.fit(Z, rng.normal(size=(60, 2)))
    assert pipe.named_steps["head"].regressor_.out_activation_ == "identity"
    pipe, _ = head_search_space("classification", "mlp", {"heads": {"max_iter": 50}})
    pipe.fit(Z, rng.integers(0, 3, 60))
    assert pipe.named_steps["head"].out_activation_ == "softmax"


def test_linear_heads():
    pipe, grid = head_search_space("positioning", "linear")
    assert isinstance(pipe.named_steps["head"], Ridge) and "head__alpha" in grid
    pipe, _ = head_search_space("classification", "linear")
    assert isinstance(pipe.named_steps["head"], RidgeClassifier)
    pipe, grid = head_search_space("classification", "logistic")
    assert isinstance(pipe.named_steps["head"], LogisticRegression) and "head__C" in grid
    with pytest.raises(ValueError):
        head_search_space("positioning", "logistic")


def test_head_split_is_80_20():
    (train, valid), = head_split(100, 0.2, random_state=0)
    assert len(train) == 80 and len(valid) == 20 and not set(train) & set(valid)
    # With rollout ids, whole rollouts go to one side.
    groups = np.repeat(np.arange(10), 10)
    (train, valid), = head_split(100, 0.2, random_state=0, groups=groups)
    assert len(valid) == 20 and not set(groups[train]) & set(groups[valid])


def test_search_head_refits_on_whole_predictor_set():
    rng = np.random.default_rng(0)
    Z, y = rng.normal(size=(50, 3)), None
    y = (Z[:, :2] * 10 + 30).astype(np.float32)
    row, search = search_head(Z, y, Z[:10], y[:10], "positioning", "linear")
    assert search.best_estimator_.named_steps["scale"].n_samples_seen_ == 50
    assert row["val_metric"] == pytest.approx(-row["val_score"]) and row["test_metric"] < 1.0
    assert row["n_candidates"] == 11


def test_selected_ridge_is_no_worse_than_the_mean_on_uninformative_embeddings():
    # Embeddings that encode each rollout (like terrain) but nothing about
    # the positions: the best Ridge is the intercept alone, which the grid's
    # largest alpha must reach (alpha = 1e6 still left 0.007 px above the
    # mean on this data, as in the cpu run's pixel-AE heads).
    rng = np.random.default_rng(0)
    n_rollouts, n_steps, dim = 30, 100, 32
    groups = np.repeat(np.arange(n_rollouts), n_steps)
    y = (rng.normal(32, 8, (n_rollouts, 1, 2)) + rng.normal(0, 8, (n_rollouts, n_steps, 2))).reshape(-1, 2)
    Z = (rng.normal(size=(n_rollouts, 1, dim)) + 0.5 * rng.normal(size=(n_rollouts, n_steps, dim))).reshape(-1, dim)
    (train, valid), = head_split(len(y), 0.2, random_state=0, groups=groups)
    baseline = mean_position_baseline(y[train], y[valid])
    row, _ = search_head(Z, y, Z, y, "positioning", "linear", groups=groups)
    assert row["val_metric"] <= baseline + 1e-3
    capped = {"heads": {"alphas": [0.01, 1.0, 100.0, 1e4, 1e6]}}
    row_capped, _ = search_head(Z, y, Z, y, "positioning", "linear", capped, groups=groups)
    assert row_capped["val_metric"] > baseline + 3e-3


def test_selected_mlp_is_no_worse_than_the_mean_on_collapsed_vae_embeddings():
    # Real embeddings (float16) of 3,000 LunarLander predictor frames from
    # 36 rollouts, by a pixel VAE (z=64, 6 epochs on 6,000 frames; the
    # earlier, smaller cpu profile): collapsed, near-constant dimensions
    # beside ones that encode each rollout's terrain, which an MLP can use
    # to memorise the training rollouts' positions. On held-out rollouts
    # every candidate of the paper's grid did worse than the mean; the grid
    # must hold one that is not, and the search must pick it.
    with np.load(Path(__file__).parent / "data" / "pixel_vae_lunarlander_embeddings.npz") as f:
        Z, y, groups = f["Z"].astype(np.float32), f["y"], f["rollout"]
    (train, valid), = head_split(len(y), 0.2, random_state=0, groups=groups)
    baseline = mean_position_baseline(y[train], y[valid])
    config = {"heads": {"layer_sizes": [64], "max_layers": 1, "activations": ["logistic"], "max_iter": 300}}
    row, _ = search_head(Z, y, Z, y, "positioning", "mlp", config, groups=groups)
    assert row["val_metric"] <= baseline * 1.02
    # Without the strong L2 candidates the same search is worse than the
    # mean: the test catches losing them.
    weak = {"heads": {**config["heads"], "mlp_alphas": [1e-4]}}
    row_weak, _ = search_head(Z, y, Z, y, "positioning", "mlp", weak, groups=groups)
    assert row_weak["val_metric"] > baseline * 1.1


# ---------------------------------------------------------------- metrics


def test_metrics_on_hand_made_inputs():
    assert mean_euclidean_distance([[0, 0], [1, 1]], [[3, 4], [1, 1]]) == 2.5
    assert mean_position_baseline([[0, 0], [2, 0]], [[1, 3], [1, -1]]) == 2.0
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    assert mean_l1(np.full((1, 3, 2, 2), 255, np.uint8), np.full((1, 3, 2, 2), 0.75)) == 0.25
    assert mean_l1(np.zeros((2, 3, 2, 2)), np.full((2, 3, 2, 2), 0.5)) == 0.5
    assert relative_to_best([0.2, 0.1, 0.4]) == pytest.approx([50.0, 100.0, 25.0])  # the paper's Table VIII scale

    from sklearn.dummy import DummyRegressor

    zero = DummyRegressor(strategy="constant", constant=[0.0, 0.0]).fit(np.zeros((2, 1)), np.zeros((2, 2)))
    assert euclidean_scorer(zero, np.zeros((2, 1)), np.array([[3.0, 4.0], [0, 0]])) == -2.5


def test_perceptual_overhead():
    df = pd.DataFrame({"variant": ["AE", "P. AE", "VAE", "P. VAE"], "z_dim": [8] * 4,
                       "ae_time_per_epoch": [10.0, 11.0, 10.0, 13.0]})
    mean, std, pairs = perceptual_overhead(df)
    assert mean == pytest.approx(0.2) and std == pytest.approx(np.std([0.1, 0.3], ddof=1))
    assert len(pairs) == 2


# ----------------------------------------------------------------- config


def test_profiles_resolve_and_override(tmp_path):
    for name in ("smoke", "cpu", "paper"):
        cfg = load_profile(name)
        assert set(cfg["ae"]["variants"]) == {"AE", "VAE", "P. AE", "P. VAE"}
    assert load_profile("cpu")["ae"]["z_dims"] == [32, 64]
    assert load_profile("paper", dataset="stl10")["ae"]["z_dims"] == [64, 128, 256, 512]
    # The estimator's own default, not restated by the protocol.
    assert ae_params(load_profile("paper"), "P. AE", 32)["perceptual_weights"] == "imagenet"
    cfg = load_profile("smoke", **parse_overrides(["ae.max_epochs=3", "heads.activations=['relu']",
                                                   "ae.perceptual_weights=none"]))
    assert cfg["ae"]["max_epochs"] == 3 and cfg["heads"]["activations"] == ["relu"]
    assert cfg["ae"]["perceptual_weights"] is None
    path = tmp_path / "mine.toml"
    path.write_text("[ae]\nz_dims = [5]\n")
    assert load_profile(path)["ae"]["z_dims"] == [5]
    with pytest.raises(FileNotFoundError, match="shipped profiles are .*smoke"):
        load_profile("no-such-profile")
    with pytest.raises(ValueError, match="Unknown profile key 'ae.max_epoch'; valid keys: .*max_epochs"):
        load_profile("smoke", ae__max_epoch=1)
    with pytest.raises(KeyError, match="heads.kind"):
        load_profile("smoke", heads__kind=["mlp"])


# ------------------------------------------------------------- end to end


def test_smoke_end_to_end(smoke_run):
    out, results = smoke_run
    for name in ("results.csv", "tables.md", "figure6.png", "embeddings.png", "config.json"):
        assert (out / name).is_file(), name
    df = pd.read_csv(out / "results.csv")
    # (4 variants + 2 reference embeddings) x 2 z x (mlp + linear), the mean baseline, 4 decoder retrainings.
    assert len(df) == (4 + 2) * 2 * 2 + 1 + 4
    assert list(df["variant"].drop_duplicates()) == ["AE", "VAE", "P. AE", "P. VAE", "PCA", "Frozen PCA", "baseline"]
    assert not df.duplicated(["variant", "z_dim", "head"]).any()
    assert set(df["head"]) == {"mlp", "linear", "mean-position", "decoder-retrain"}
    heads = df[df["head"].isin(["mlp", "linear"])]
    assert heads["test_metric"].notna().all() and heads["ae_fit_time"].gt(0).all()
    assert (heads["head_split"] == "GroupShuffleSplit").all()
    text = (out / "tables.md").read_text()
    for table in ("Table II", "Table V", "Table VIII"):
        assert table in text
    assert "| PCA† | Frozen PCA† |" in text and "training-free baselines, not in the paper" in text
    assert "13.22" in text and "1.44" in text and "— " in text  # the paper's numbers, and cells we did not run
    assert "overhead" in text
    import matplotlib.image

    assert matplotlib.image.imread(out / "figure6.png").ndim == 3
    assert matplotlib.image.imread(out / "embeddings.png").ndim == 3
    ae = joblib.load(out / df.loc[0, "ae_file"])
    assert ae.transform(make_bunch().test.X[:2]).shape == (2, df.loc[0, "z_dim"])
    json.loads((out / "config.json").read_text())


def test_baselines_are_pca_of_pixels_and_of_the_frozen_loss_network(smoke_run):
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline

    from skperceptual import FrozenFeatureTransformer

    out, results = smoke_run
    bunch, rows = make_bunch(), results.set_index(["variant", "z_dim", "head"])
    pixels = lambda X: X.reshape(len(X), -1).astype(np.float32) / 255  # noqa: E731
    # The perceptual loss's network and layer, with the run's (random, seeded) weights.
    frozen = make_pipeline(FrozenFeatureTransformer("alexnet", 5, weights=None, random_state=0, device="cpu"),
                           PCA(8, random_state=0)).fit(bunch.autoencoder.X)
    expected = {"PCA": PCA(8, random_state=0).fit(pixels(bunch.autoencoder.X)).transform(pixels(bunch.test.X)),
                "Frozen PCA": frozen.transform(bunch.test.X)}
    for variant, Z in expected.items():
        with np.load(out / rows.loc[(variant, 8, "mlp"), "ae_file"].replace(".joblib", ".npz")) as f:
            np.testing.assert_allclose(f["Z_test"], Z, rtol=1e-4, atol=1e-4)
        assert joblib.load(out / rows.loc[(variant, 8, "mlp"), "ae_file"]).transform(bunch.test.X[:2]).shape == (2, 8)
    # Scored like the autoencoders, with CIs; no learning curve or decoder retraining.
    base = results[results["variant"].isin(["PCA", "Frozen PCA"])]
    assert set(base["head"]) == {"mlp", "linear"} and base["test_ci_low"].notna().all()
    assert base["ae_n_epochs"].isna().all() and base["ae_fit_time"].gt(0).all()


def test_baselines_need_as_many_images_as_components(tmp_path):
    with pytest.raises(ValueError, match=r"cannot find ae.z_dims' 64 components in 40 autoencoder images.*"
                                         r"baselines.variants=\[\]"):
        run_protocol(make_bunch(), tiny_config(ae__z_dims=[64]), tmp_path / "run", verbose=0)
    assert not (tmp_path / "run" / "config.json").exists()
    with pytest.raises(ValueError, match=r"baselines.variants = \['PCA', 'ICA'\] is invalid"):
        tiny_config(baselines__variants=["PCA", "ICA"])


def test_baselines_alone(tmp_path):
    results = run_protocol(make_bunch(), tiny_config(ae__variants=[]), tmp_path, verbose=0)
    assert list(results["variant"].drop_duplicates()) == ["PCA", "Frozen PCA", "baseline"]
    assert len(results) == 2 * 2 * 2 + 1
    assert (tmp_path / "tables.md").is_file() and (tmp_path / "embeddings.png").is_file()
    assert not (tmp_path / "figure6.png").exists() and not (tmp_path / "units" / "ae").exists()
    with pytest.raises(ValueError, match="ae.variants and baselines.variants are both empty"):
        tiny_config(ae__variants=[], baselines__variants=[])


def test_report_rerenders_from_results_csv(smoke_run):
    out, _ = smoke_run
    before = (out / "tables.md").read_text()
    for name in ("tables.md", "figure6.png", "embeddings.png"):
        (out / name).unlink()
    assert cli_main(["report", str(out)]) == 0
    assert (out / "tables.md").read_text() == before
    assert (out / "figure6.png").is_file() and (out / "embeddings.png").is_file()


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("stage, k", [("ae", 1), ("baseline", 1), ("head", 3), ("decoder", 1)])
def test_each_stage_resumes(tmp_path, stage, k):
    """Kill a run after k units of one stage; the re-run computes only what was not saved."""
    config = tiny_config(ae__z_dims=[4], ae__variants=["AE", "P. AE"], report__n_frames=2)
    first = []

    def stop_after_k(unit, n_done, n_todo):
        first.append(unit.name)
        if unit.stage == stage and n_done == k:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        run_protocol(make_bunch(), config, tmp_path, verbose=0, on_unit_done=stop_after_k, report=False)
    assert not (tmp_path / "results.csv").exists()

    second = []
    results = run_protocol(make_bunch(), config, tmp_path, verbose=0, report=False,
                           on_unit_done=lambda unit, n_done, n_todo: second.append(unit.name))
    assert not set(first) & set(second)  # nothing finished is recomputed
    # 2 AEs, 2 baselines, 4 x 2 heads, 2 decoders
    assert len(first) + len(second) == 2 + 2 + 8 + 2
    assert len(results) == 4 * 2 + 1 + 2
    assert not pd.read_csv(tmp_path / "results.csv").duplicated(["variant", "z_dim", "head"]).any()
    third = []
    again = run_protocol(make_bunch(), config, tmp_path, verbose=0, report=False,
                         on_unit_done=lambda *args: third.append(args))
    assert third == []
    pd.testing.assert_frame_equal(results, again)


def test_changed_setting_does_not_reuse_stale_units(tmp_path):
    config = tiny_config(ae__z_dims=[4], ae__variants=["AE"], heads__kinds=["linear"], decoder__max_epochs=1)
    run_protocol(make_bunch(), config, tmp_path, verbose=0, report=False)
    n_files = len(list((tmp_path / "units" / "ae").glob("*.json")))
    run_protocol(make_bunch(), tiny_config(ae__z_dims=[4], ae__variants=["AE"], heads__kinds=["linear"],
                                           ae__lr=2e-3), tmp_path, verbose=0, report=False)
    assert len(list((tmp_path / "units" / "ae").glob("*.json"))) == n_files + 1
    # AE, PCA and Frozen PCA linear heads, the mean baseline, the decoder.
    assert len(pd.read_csv(tmp_path / "results.csv")) == 3 + 1 + 1


def test_dask_backend_matches_local(smoke_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    out_local, local = smoke_run
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        remote = run_protocol(make_bunch(), tiny_config(), tmp_path, backend="dask", verbose=0, report=False)
    cols = ["variant", "z_dim", "head", "best_params", "val_metric", "test_metric", "ae_n_epochs", "l1_before"]
    pd.testing.assert_frame_equal(local[cols], remote[cols], check_exact=False, rtol=1e-6)


def test_another_joblib_backend_runs_the_stages_in_waves(smoke_run, tmp_path):
    out_local, local = smoke_run
    order = []
    remote = run_protocol(make_bunch(), tiny_config(), tmp_path, backend="threading", n_jobs=2, verbose=0,
                          report=False, on_unit_done=lambda unit, *_: order.append(unit.stage))
    # Concurrent fits in threads share torch's thread pool, so their sums
    # round differently: the same units, not the same bits.
    def units(df):
        return sorted(map(tuple, df.loc[df["head"] != "decoder-retrain", ["variant", "z_dim", "head"]]
                          .astype(str).to_numpy()))

    assert units(remote) == units(local)
    # Without the pipeline, every AE and baseline is saved before the first head search.
    assert order.index("head") > max(i for i, stage in enumerate(order) if stage in ("ae", "baseline"))


def test_classification_tables_and_cli(tmp_path, monkeypatch):
    bunch = make_bunch(name="svhn", classes=True)
    monkeypatch.setattr(_runner, "load_dataset", lambda name, **kw: bunch)
    assert cli_main([
        "experiment", "--dataset", "svhn", "--profile", "smoke", "--out", str(tmp_path), "--quiet",
        "--set", "ae.perceptual_weights=none", "--set", "ae.z_dims=[4]", "--set", "ae.variants=['AE', 'P. AE']",
        "--set", "data.n_autoencoder=0", "--set", "data.n_predictor=0", "--set", "data.n_test=0",
    ]) == 0
    df = pd.read_csv(tmp_path / "results.csv")
    assert set(df["head"]) == {"mlp", "linear", "logistic", "decoder-retrain"}
    assert df.loc[df["head"] != "decoder-retrain", "test_metric"].between(0, 1).all()
    text = (tmp_path / "tables.md").read_text()
    assert "Table IV" in text and "Table VII" in text and "Table VIII" in text
    assert "82.7" in text and "71.2" in text and "LogisticRegression" in text


@pytest.mark.slow
def test_paper_profile_scaled_down_end_to_end(tmp_path, alexnet_weights):
    """The paper profile itself (validation split, early stopping, all variants), made tiny."""
    assert cli_main([
        "experiment", "--dataset", "lunarlander", "--profile", "paper", "--out", str(tmp_path), "--quiet",
        "--set", "data.loader.lunarlander.n_rollouts=20", "--set", "ae.max_epochs=1",
        "--set", f"ae.perceptual_weights='{alexnet_weights}'", "--set", "ae.device=cpu", "--set", "ae.z_dims=[4]",
        "--set", "ae.batch_size=32", "--set", "data.n_autoencoder=64", "--set", "data.n_predictor=60",
        "--set", "data.n_test=30", "--set", "heads.layer_sizes=[8]", "--set", "heads.max_layers=1",
        "--set", "heads.activations=['relu']", "--set", "heads.max_iter=50", "--set", "decoder.max_epochs=1",
    ]) == 0
    df = pd.read_csv(tmp_path / "results.csv")
    assert len(df) == (4 + 2) * 2 + 1 + 4
    assert (df["ae_validation_fraction"].dropna() == 0.2).all() and (df["ae_patience"].dropna() == 10).all()
    assert "Table II" in (tmp_path / "tables.md").read_text()


def test_dask_backend_without_a_client_fails_before_any_work(tmp_path):
    pytest.importorskip("distributed")
    with pytest.raises(ValueError, match="backend='dask' runs on the current distributed.Client"):
        run_protocol(make_bunch(), tiny_config(), tmp_path / "run", backend="dask", verbose=0)
    assert not (tmp_path / "run").exists()
