"""experiments/z_sweep.py: collecting seeds' runs into the table, the CSV and the figure (no training)."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "z_sweep.py"


@pytest.fixture
def sweep():
    spec = importlib.util.spec_from_file_location("z_sweep", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(folder, seed):
    """A seed's results.csv, shaped like the protocol's: error falls with z, the AE's least."""
    rows = [dict(variant=v, z_dim=z, head=h, test_metric=base * 8 / z + 0.1 * seed, test_ci_low=0.0,
                 test_ci_high=99.0, val_metric=1.0, best_params="{}")
            for v, base in (("AE", 14.0), ("P. AE", 1.0), ("PCA", 12.0), ("Frozen PCA", 2.0))
            for z in (4, 8, 16) for h in ("mlp", "linear")]
    rows += [dict(variant="P. AE", z_dim=8, head="decoder-retrain", test_metric=0.01),
             dict(variant="baseline", head="mean-position", test_metric=14.2)]
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "results.csv", index=False)


def test_seeds_are_averaged_with_their_range(sweep, tmp_path):
    for seed in (0, 1, 2):
        fake_run(tmp_path / "runs" / f"seed{seed}", seed)
    sweep.main(["--seeds", "0", "1", "2", "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "res"),
                "--summarise-only"])
    text = (tmp_path / "res" / "z_sweep.md").read_text()
    # P. AE at z = 8: 1.0 + 0.1 seed -> mean 1.1, range 1.0-1.2, seed 0's CI.
    assert "| 8 | 14.10 {14.00–14.20} [0.00, 99.00] | 1.10 {1.00–1.20} [0.00, 99.00] |" in text
    assert "### Ridge heads" in text and "Predict the mean: 14.20 px." in text
    rows = pd.read_csv(tmp_path / "res" / "z_sweep.csv")
    assert len(rows) == 3 * 4 * 3 * 2 and set(rows["head"]) == {"mlp", "linear"}
    assert (tmp_path / "res" / "z_sweep.png").stat().st_size > 0


def test_the_profile_sweeps_the_sizes_with_the_cpu_budget(sweep):
    config = sweep.load_profile(sweep.PROFILE)
    cpu = sweep.load_profile("cpu")
    assert config["ae"]["z_dims"] == [4, 8, 16, 32, 64] and config["ae"]["variants"] == ["AE", "P. AE"]
    assert config["baselines"]["variants"] == ["PCA", "Frozen PCA"] and config["learning_curve"]["variants"] == []
    for key in ("max_epochs", "batch_size", "precision"):
        assert config["ae"][key] == cpu["ae"][key]
    # The sweep runs on LunarLander: the cpu profile's collection and caps.
    lunar = lambda data: {**data, "loader": data["loader"]["lunarlander"]}  # noqa: E731
    assert lunar(config["data"]) == lunar(cpu["data"]) and config["heads"] == cpu["heads"]
