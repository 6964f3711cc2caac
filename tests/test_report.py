"""Report side of the protocol: confidence intervals, Table VIII's scale,
Figure 6's frame choice, the learning curve and corrupt results files."""

import numpy as np
import pandas as pd
import pytest

from skperceptual.protocol._metrics import bootstrap_ci, metric_ci, per_sample_metric, relative_to_best
from skperceptual.protocol._report import select_figure_frames


def test_relative_to_best_is_the_papers_performance_scale():
    # Table VIII: 100% = lowest L1, the others best / L1 < 100%.
    assert relative_to_best([0.02, 0.01, 0.04]) == pytest.approx([50.0, 100.0, 25.0])
    assert np.isnan(relative_to_best([0.01, np.nan])[1])


def test_per_sample_metric_matches_hand_made_values():
    assert per_sample_metric("positioning", [[0, 0], [1, 1]], [[3, 4], [1, 1]]).tolist() == [5.0, 0.0]
    assert per_sample_metric("classification", [3, 1, 2], [3, 2, 2]).tolist() == [1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="task"):
        per_sample_metric("segmentation", [0], [0])


def test_bootstrap_ci_covers_a_known_mean_with_the_right_width():
    rng = np.random.default_rng(1)
    values = rng.normal(5.0, 2.0, size=4000)
    low, high = bootstrap_ci(values, n_boot=2000, random_state=0)
    # Normal theory: half-width 1.96 * sigma / sqrt(n) = 0.062.
    assert low < values.mean() < high
    assert (high - low) / 2 == pytest.approx(1.96 * 2.0 / np.sqrt(4000), rel=0.1)
    assert bootstrap_ci(values, random_state=0) == bootstrap_ci(values, random_state=0)


def test_bootstrap_ci_resamples_groups_as_wholes():
    # Two groups with constant values: any resample's mean is 1, 2 or 3 (mean
    # of two group means), never a mix of single frames.
    values = np.r_[np.full(50, 1.0), np.full(50, 3.0)]
    groups = np.r_[np.zeros(50), np.ones(50)]
    assert bootstrap_ci(values, groups, n_boot=500) == (1.0, 3.0)
    # Frame resampling of the same values gives a far narrower interval:
    # within-group correlation is what the group bootstrap keeps.
    low, high = bootstrap_ci(values, n_boot=500)
    assert 1.5 < low < 2.0 < high < 2.5
    # Unequal group sizes: the mean is over samples, not over group means.
    values = np.r_[np.zeros(3), np.ones(1)]
    low, high = bootstrap_ci(values, groups=[0, 0, 0, 1], n_boot=2000, confidence=0.5)
    assert 0.0 <= low <= 0.25 <= high <= 1.0


def test_bootstrap_ci_checks_its_input():
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="groups"):
        bootstrap_ci([1.0, 2.0], groups=[0])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=95)


def test_metric_ci_is_in_the_units_of_the_test_metric():
    y = np.zeros((40, 2))
    pred = np.c_[np.full(40, 3.0), np.full(40, 4.0)]
    assert metric_ci("positioning", y, pred, groups=np.arange(40) // 10) == pytest.approx((5.0, 5.0))
    low, high = metric_ci("classification", np.r_[np.zeros(50), np.ones(50)], np.zeros(100))
    assert 0.35 < low < 0.5 < high < 0.65


# ------------------------------------------------------------- Figure 6 frames


def test_select_figure_frames_keeps_the_lander_on_screen_and_spreads_it():
    rng = np.random.default_rng(0)
    # Most frames near the top edge (as in one rollout's first steps), some spread out.
    y = np.r_[np.c_[rng.uniform(20, 40, 300), rng.uniform(-2, 3, 300)], rng.uniform(-5, 68, size=(200, 2))]
    idx = select_figure_frames(y, 8, margin=5)
    assert len(idx) == len(set(idx)) == 8
    assert np.all((y[idx] >= 4.5) & (y[idx] <= 58.5))
    # Spread: no two chosen frames show the lander at nearly the same place.
    distances = np.linalg.norm(y[idx][:, None] - y[idx][None], axis=-1)
    assert distances[np.triu_indices(8, 1)].min() > 4
    assert np.array_equal(idx, select_figure_frames(y, 8, margin=5))
    assert np.all(np.diff(y[idx, 0]) >= 0)  # left to right
    # Fewer eligible frames than asked: all of them, no off-screen filler.
    assert sorted(select_figure_frames([[0, 0], [30, 30], [70, 10], [20, 40]], 8)) == [1, 3]


def test_select_figure_frames_spreads_classification_over_classes():
    assert select_figure_frames([1, 1, 0, 2, 0, 1], 4).tolist() == [2, 0, 3, 4]
    with pytest.raises(ValueError, match="n_frames"):
        select_figure_frames([[1, 1]], 0)


# ------------------------------------------------------------- rendering


def write_run(out, n_frames=4, frame_index=True, learning_curve=False):
    """A tiny run directory as the runner writes it: results.csv and each variant's npz."""
    rng = np.random.default_rng(0)
    n_test = 30
    y_test = rng.uniform(6, 57, size=(n_test, 2)).astype(np.float32)
    X_test = np.zeros((n_test, 3, 64, 64), np.uint8)
    for i, (x, y) in enumerate(np.round(y_test).astype(int)):
        X_test[i, :, y - 2: y + 3, x - 2: x + 3] = 200  # the "lander"
    idx = select_figure_frames(y_test, n_frames) if frame_index else np.arange(n_frames)
    rows = []
    for k, variant in enumerate(["AE", "VAE", "P. AE", "P. VAE"]):
        recon = X_test[idx] / 255.0 * (k >= 2)  # the pixel variants drop the lander
        extra = {"frame_index": idx} if frame_index else {}
        (out / "units").mkdir(parents=True, exist_ok=True)
        np.savez(out / "units" / f"v{k}.npz", frames=X_test[idx], recon=recon, y_test=y_test,
                 Z_test=rng.normal(size=(n_test, 3)), **extra)
        np.savez(out / "units" / f"d{k}.npz", recon_after=recon)
        for head, m in (("mlp", 13 - 5 * k), ("linear", 14 - 4 * k)):
            rows.append(dict(dataset="lunarlander", task="positioning", variant=variant, z_dim=8, head=head,
                             test_metric=m, val_metric=m, test_ci_low=m - 1, test_ci_high=m + 1, best_params="{}",
                             ae_file=f"units/v{k}.joblib"))
        rows.append(dict(dataset="lunarlander", task="positioning", variant=variant, z_dim=8, head="decoder-retrain",
                         test_metric=0.01 + 0.01 * k, l1_before=0.05, ae_file=f"units/v{k}.joblib",
                         retrained_file=f"units/d{k}.joblib"))
    rows.append(dict(dataset="lunarlander", task="positioning", variant="baseline", head="mean-position",
                     test_metric=14.5, test_ci_low=13.9, test_ci_high=15.1))
    pd.DataFrame(rows).to_csv(out / "results.csv", index=False)
    (out / "config.json").write_text('{"profile": "test", "run_key": "0"}')
    if learning_curve:
        pd.DataFrame([dict(variant=v, z_dim=8, head=h, n_images=n, test_metric=m, test_ci_low=m - 1,
                           test_ci_high=m + 1, val_metric=m)
                      for v, m0 in (("AE", 13), ("P. AE", 3)) for h in ("mlp", "linear")
                      for n, m in ((100, m0 + 2), (1000, m0))]).to_csv(out / "learning_curve.csv", index=False)


def test_render_report_writes_tables_and_figures(tmp_path):
    import matplotlib.image

    from skperceptual.protocol._report import render_report

    write_run(tmp_path)
    paths = render_report(tmp_path)
    assert [p.name for p in paths] == ["tables.md", "figure6.png", "embeddings.png"]  # no learning curve
    assert not (tmp_path / "learning_curve.png").exists()
    assert matplotlib.image.imread(tmp_path / "figure6.png").ndim == 3
    text = (tmp_path / "tables.md").read_text()
    assert "| 8 | 13.00 [12.00, 14.00] | — |" in text  # our z the paper lacks
    assert "| Any | 13.00 [12.00, 14.00] (z 8) | 13.22 |" in text
    assert "baseline (test): 14.50 [13.90, 15.10] px" in text
    assert "| P. VAE | 8 | 0.0500 | 0.0400 | 25% | 73% |" in text  # Table VIII, best L1 / L1


def test_figure6_reads_old_runs_and_draws_the_learning_curve(tmp_path):
    import matplotlib.image

    from skperceptual.protocol._report import render_report

    write_run(tmp_path, frame_index=False, learning_curve=True)  # frames saved before frame selection
    paths = render_report(tmp_path)
    assert paths[-1].name == "learning_curve.png"
    assert matplotlib.image.imread(paths[-1]).ndim == 3


def test_a_truncated_row_missing_units_or_config_are_refused_before_writing(tmp_path):
    from skperceptual.protocol._report import render_report

    write_run(tmp_path)
    whole = (tmp_path / "results.csv").read_text()
    (tmp_path / "results.csv").write_text(whole[: len(whole) - 40])  # cut mid-line, as a full disk would
    with pytest.raises(ValueError, match=r"results.csv is truncated or corrupt: its row \d+ has \d+ of the \d+ fields"):
        render_report(tmp_path)
    (tmp_path / "results.csv").write_text(whole)
    (tmp_path / "units" / "v2.npz").unlink()
    with pytest.raises(FileNotFoundError, match=r"units/v2.npz does not exist: the run directory lacks a unit"):
        render_report(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"config.json does not exist: .* is not a whole run directory"):
        render_report(tmp_path)
    assert not any((tmp_path / name).exists() for name in ("tables.md", "figure6.png", "embeddings.png"))


@pytest.mark.parametrize("content, match", [
    ('dataset,task,variant,z_dim,head,test_metric,best_params\nlunarlander,positioning,AE,8,mlp,1.0,"{""a', "corrupt"),
    ("dataset,task,variant\nlunarlander,positioning,AE,8,mlp,1.0,x,y\n", "corrupt"),
    ("", "corrupt"),
    ("dataset,task\nlunarlander,positioning\n", "lacks the columns"),
])
def test_corrupt_results_csv_gets_a_clear_error(tmp_path, content, match):
    from skperceptual.protocol._report import render_report

    (tmp_path / "results.csv").write_text(content)
    with pytest.raises(ValueError, match=match) as info:
        render_report(tmp_path)
    assert "results.csv" in str(info.value) and "re-running" in str(info.value)
    assert not (tmp_path / "tables.md").exists()
    with pytest.raises(FileNotFoundError, match="results.csv"):
        render_report(tmp_path / "missing")
