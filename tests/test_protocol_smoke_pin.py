"""The smoke profile's metrics, pinned from a run of the code before the issue 9 redesign.

The smoke run is deterministic on CPU, so any refactoring of the protocol
must reproduce these numbers. When a deliberate change of the evaluation
alters them (e.g. the head grid's scaling), update :data:`EXPECTED` from the
new run's ``results.csv`` and say why in the commit.
"""

import math

import pytest

from skperceptual.protocol import load_profile, run_protocol

#: (variant, z_dim, head) -> (val_metric, test_metric) of the smoke run on
#: LunarLander with the ImageNet AlexNet weights; None where there is none.
EXPECTED = {
    ("AE", 8, "mlp"): (16.20836371327463, 5.606693264429906),
    ("AE", 8, "linear"): (44.828994296708935, 10.557870982452952),
    ("AE", 16, "mlp"): (6.917624530601365, 6.310654400338544),
    ("AE", 16, "linear"): (22.54394803358709, 7.682222796226465),
    ("AE", 16, "decoder-retrain"): (None, 0.48958354837221324),
    ("VAE", 8, "mlp"): (6.094711887772533, 3.2359381558960014),
    ("VAE", 8, "linear"): (14.467251767942448, 3.872098776811636),
    ("VAE", 8, "decoder-retrain"): (None, 0.48603552657127186),
    ("VAE", 16, "mlp"): (7.515144356145003, 4.945405739933847),
    ("VAE", 16, "linear"): (2.6180039930140535, 7.752638414368531),
    ("P. AE", 8, "mlp"): (3.3685318590265783, 3.842540092506194),
    ("P. AE", 8, "linear"): (9.23925833008817, 3.0475812385183447),
    ("P. AE", 8, "decoder-retrain"): (None, 0.4894830593833026),
    ("P. AE", 16, "mlp"): (3.822096515109146, 3.571847629051247),
    ("P. AE", 16, "linear"): (5.053242744651997, 6.67070485877753),
    ("P. VAE", 8, "mlp"): (4.566608933822481, 3.7457870899325436),
    ("P. VAE", 8, "linear"): (4.064196166783694, 10.142048441579389),
    ("P. VAE", 8, "decoder-retrain"): (None, 0.4900307410933798),
    ("P. VAE", 16, "mlp"): (5.303546925097966, 2.985183381587923),
    ("P. VAE", 16, "linear"): (7.433922824594634, 3.214501361074832),
    ("baseline", None, "mean-position"): (3.922406497930072, 3.8220330502425583),
}


def _key(row):
    z = None if row["z_dim"] is None or (isinstance(row["z_dim"], float) and math.isnan(row["z_dim"])) else int(row["z_dim"])
    return row["variant"], z, row["head"]


@pytest.mark.slow
def test_smoke_metrics_are_pinned(tmp_path, alexnet_weights):
    config = load_profile("smoke", ae__perceptual_weights=str(alexnet_weights))
    results = run_protocol(None, config, tmp_path / "run", verbose=0, report=False)
    rows = results.astype(object).where(results.notna(), None).to_dict("records")
    got = {_key(r): (r["val_metric"], r["test_metric"]) for r in rows}
    assert set(got) == set(EXPECTED)
    for key, (val, test) in EXPECTED.items():
        if val is None:
            assert got[key][0] is None, key
        else:
            assert got[key][0] == pytest.approx(val, rel=1e-9), key
        assert got[key][1] == pytest.approx(test, rel=1e-9), key
