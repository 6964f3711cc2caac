"""experiments/budget_curve.py: collecting seeds' runs into the summary, the CSVs and the figure (no training)."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "budget_curve.py"


@pytest.fixture
def budget():
    spec = importlib.util.spec_from_file_location("budget_curve", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(folder, seed, n_images, pixel_learns_at):
    """A seed's learning_curve.csv and results.csv, shaped like the protocol's."""
    rows = []
    for variant in ("AE", "P. AE"):
        for head in ("mlp", "linear"):
            for n in n_images:
                error = 2.0 if variant == "P. AE" else (14.0 if n < pixel_learns_at else 5.0 if n < 4 * pixel_learns_at
                                                        else 2.5)
                rows.append(dict(variant=variant, z_dim=64, head=head, n_images=n, test_metric=error + 0.01 * seed,
                                 test_ci_low=error - 0.5, test_ci_high=error + 0.5, val_metric=error))
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "learning_curve.csv", index=False)
    refs = [dict(variant=v, z_dim=64, head=h, test_metric=e, test_ci_low=e - 0.1, test_ci_high=e + 0.1,
                 val_metric=e, best_params="{}") for v, e in (("PCA", 11.0), ("Frozen PCA", 0.8)) for h in ("mlp", "linear")]
    refs.append(dict(variant="baseline", head="mean-position", test_metric=14.2))
    pd.DataFrame(refs).to_csv(folder / "results.csv", index=False)


def test_seeds_are_summarised_with_first_crossings_and_spread(budget, tmp_path):
    full = [1_000_000 // 2 ** k for k in range(8, -1, -1)]
    fake_run(tmp_path / "runs" / "seed0", 0, full, pixel_learns_at=62_500)
    fake_run(tmp_path / "runs" / "seed1", 1, full[:6], pixel_learns_at=62_500)
    budget.main(["--seeds", "0", "1", "2", "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "res"),
                 "--summarise-only"])
    text = (tmp_path / "res" / "summary.md").read_text()
    # Seed 0's value with its CI, and the range over the seeds that reached the checkpoint.
    assert "| 62,500 | 5.00 [4.50, 5.50] {5.00–5.01}" in text
    assert "| 1,000,000 | 2.50 [2.00, 3.00] |" in text
    assert "- AE, seed 0: < 10 px: 62,500, < 3 px: 250,000" in text
    assert "- AE, seed 1: < 10 px: 62,500, < 3 px: not within 125,000" in text
    assert "- P. AE, seed 0: < 10 px: 3,906, < 3 px: 3,906" in text
    assert "| 0 | 11.00 [10.90, 11.10] | 11.00 [10.90, 11.10] | 0.80 [0.70, 0.90] | 0.80 [0.70, 0.90] | 14.20 |" in text
    curve = pd.read_csv(tmp_path / "res" / "budget_curve.csv")
    assert sorted(curve["seed"].unique()) == [0, 1] and len(curve) == 4 * (9 + 6)
    assert (tmp_path / "res" / "budget_curve.png").stat().st_size > 0


def test_short_seeds_keep_the_full_runs_checkpoints(budget, tmp_path, monkeypatch):
    seen = []

    def fake_protocol(bunch, config, out, n_jobs):
        seen.append(config)
        n = config["data"]["n_autoencoder"] * config["ae"]["max_epochs"]
        fake_run(out, config["random_state"], [round(n / 2 ** k) for k in range(config["learning_curve"]["n_points"])],
                 pixel_learns_at=n)

    monkeypatch.setattr(budget, "run_protocol", fake_protocol)
    budget.main(["--seeds", "1", "0", "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "res"),
                 "--set", "ae.max_epochs=16"])
    full, short = seen
    assert (full["random_state"], full["ae"]["max_epochs"], full["learning_curve"]["n_points"]) == (1, 16, 9)
    assert (short["random_state"], short["ae"]["max_epochs"], short["learning_curve"]["n_points"]) == (0, 4, 7)
    curve = pd.read_csv(tmp_path / "res" / "budget_curve.csv")
    grid = set(curve.loc[curve["seed"] == 1, "n_images"])
    assert set(curve.loc[curve["seed"] == 0, "n_images"]) <= grid and max(grid) == 500_000
    # The first seed named is the full-budget one, whatever its number.
    assert "seed 1 [95% CI" in (tmp_path / "res" / "summary.md").read_text()


@pytest.mark.parametrize("epochs", ["3", "5", "64"])
def test_short_epochs_must_be_a_power_of_two_fraction(budget, epochs):
    with pytest.raises(SystemExit, match=f"--short-epochs {epochs} must divide"):
        budget.short_overrides(budget.PROFILE, int(epochs))
