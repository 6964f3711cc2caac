"""experiments/layer_study.py: collecting runs into the table, the note and the figure (no training)."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "layer_study.py"


@pytest.fixture
def study():
    spec = importlib.util.spec_from_file_location("layer_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_runs(study, out, seeds, fp_error):
    """results.csv files shaped like the protocol's, one per setting and seed."""
    for i, (label, variant, _) in enumerate(study.SETTINGS):
        for seed in seeds:
            error = fp_error if variant == "F. AE" else 3.0 + i
            time = 1.0 if variant == "F. AE" else 2.0
            rows = [{"variant": variant, "head": head, "test_metric": error + 0.1 * seed + (head == "linear"),
                     "ae_fit_time": 6 * time, "ae_n_epochs": 6, "ae_time_per_epoch": time} for head in study.HEADS]
            rows += [{"variant": "Frozen PCA", "head": head, "test_metric": 2.5 + 0.5 * i + 0.1 * seed,
                      "test_ci_low": 0.0, "test_ci_high": 99.0} for head in study.HEADS]
            rows += [{"variant": "PCA", "head": head, "test_metric": 12.0 + seed, "unit_key": f"pca{seed}{head}"}
                     for head in study.HEADS]
            rows.append({"variant": "baseline", "head": "mean-position", "test_metric": 20.0 + seed})
            path = out / f"{study.slug(label)}-seed{seed}" / "results.csv"
            path.parent.mkdir(parents=True)
            pd.DataFrame(rows).to_csv(path, index=False)


def test_several_seeds_give_t_intervals_a_note_and_a_figure(study, tmp_path):
    fake_runs(study, tmp_path / "runs", [0, 1, 2], fp_error=4.0)
    table = study.collect(tmp_path / "runs", [0, 1, 2])
    fp = table[(table["variant"] == "F. AE") & (table["head"] == "mlp")].iloc[0]
    assert fp["n_seeds"] == 3 and fp["test_error_px"] == pytest.approx(4.1)
    assert fp["ci_low"] < 4.1 < fp["ci_high"]
    baseline = table[table["variant"] == "baseline"].iloc[0]
    assert baseline["test_error_px"] == pytest.approx(21.0)
    study.write(table, tmp_path / "results")
    note = (tmp_path / "results" / "layer_study.md").read_text()
    # P. AE at relu2 has error 4.1 too (3 + 1): equal, so "as good", and 0.5x the time.
    assert "0.50 times the training time per epoch (faster)" in note
    assert "as good or better" in note
    assert (tmp_path / "results" / "layer_study.png").stat().st_size > 0


def test_each_layer_sits_beside_its_frozen_twin(study, tmp_path):
    fake_runs(study, tmp_path / "runs", [0, 1, 2], fp_error=4.0)
    table = study.collect(tmp_path / "runs", [0, 1, 2]).set_index(["setting", "head"])
    relu3 = table.loc[(study.SETTINGS[2][0], "mlp")]
    assert relu3["test_error_px"] == pytest.approx(5.1) and relu3["twin_test_error_px"] == pytest.approx(3.6)
    assert relu3["twin_n_seeds"] == 3 and relu3["twin_ci_low"] < 3.6 < relu3["twin_ci_high"]
    assert np.isnan(table.loc[(study.FP_LABEL, "mlp"), "twin_test_error_px"])  # relu2's twin, listed there
    pca = table.loc[("PCA of pixels (no training)", "mlp")]
    assert pca["test_error_px"] == pytest.approx(13.0) and pca["n_seeds"] == 3
    study.write(table.reset_index(), tmp_path / "results")
    text = (tmp_path / "results" / "layer_study.md").read_text()
    assert "| relu3 (cut 8) | mlp | 5.10 [" in text and "| 3.60 [" in text
    assert "Trained P. AE vs its training-free twin" in text and "relu3 (cut 8): 5.10 vs 3.60 px" in text


def test_worse_feature_prediction_is_called_worse(study, tmp_path):
    fake_runs(study, tmp_path / "runs", [0, 1, 2], fp_error=9.0)
    lines = study.verdict(study.collect(tmp_path / "runs", [0, 1, 2]))
    assert any("worse: higher error, separate intervals" in line for line in lines)
    assert np.isfinite(study.collect(tmp_path / "runs", [0])["test_error_px"]).all()


def test_one_seed_uses_the_protocols_bootstrap_interval(study, tmp_path):
    fake_runs(study, tmp_path / "runs", [0], fp_error=4.0)
    for path in (tmp_path / "runs").glob("*/results.csv"):
        rows = pd.read_csv(path)
        rows.assign(test_ci_low=rows["test_metric"] - 0.5, test_ci_high=rows["test_metric"] + 0.5).to_csv(path,
                                                                                                          index=False)
    table = study.collect(tmp_path / "runs", [0])
    fp = table[(table["variant"] == "F. AE") & (table["head"] == "mlp")].iloc[0]
    assert (fp["ci_low"], fp["test_error_px"], fp["ci_high"]) == pytest.approx((3.5, 4.0, 4.5))


def test_layers_at_the_mean_are_named(study, tmp_path):
    fake_runs(study, tmp_path / "runs", [0, 1, 2], fp_error=4.0)
    relu1 = tmp_path / "runs" / f"{study.slug(study.SETTINGS[0][0])}-seed{{}}" / "results.csv"
    for seed in (0, 1, 2):  # the first layer's heads at the baseline's 21 px
        rows = pd.read_csv(str(relu1).format(seed))
        rows.loc[rows["variant"] == "P. AE", "test_metric"] = 21.0 + 0.1 * seed
        rows.to_csv(str(relu1).format(seed), index=False)
    lines = study.verdict(study.collect(tmp_path / "runs", [0, 1, 2]))
    at_mean = [line for line in lines if line.startswith("- At the mean")]
    assert len(at_mean) == 1 and study.SETTINGS[0][0] in at_mean[0] and study.SETTINGS[1][0] not in at_mean[0]
