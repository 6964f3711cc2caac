"""The smoke profile's metrics, pinned from a run of the code before the issue 9 redesign.

Re-pinned once since, for three deliberate changes: the MLP grid's strong-L2
candidates (issue 14), the baseline's validation value taken on the heads'
own split, and float rounding from the speed work (fused Adam, the
space-to-depth first conv; issue 11).

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
    ('AE', 8, 'mlp'): (3.6804406124805706, 5.324098706540341),
    ('AE', 8, 'linear'): (44.68179768159665, 10.560726328566954),
    ('AE', 8, 'decoder-retrain'): (None, 0.4854126667692474),
    ('AE', 16, 'mlp'): (6.822107149625294, 8.547921681118197),
    ('AE', 16, 'linear'): (22.30630861801425, 7.647342544995013),
    ('VAE', 8, 'mlp'): (3.735907563155221, 3.517213660721002),
    ('VAE', 8, 'linear'): (14.308749051901424, 3.945536057348104),
    ('VAE', 8, 'decoder-retrain'): (None, 0.48599023090737514),
    ('VAE', 16, 'mlp'): (7.457508262275317, 5.226752845484251),
    ('VAE', 16, 'linear'): (2.6476791406355944, 7.81581781875175),
    ('P. AE', 8, 'mlp'): (3.3705817965172287, 3.8407450391681186),
    ('P. AE', 8, 'linear'): (9.23763849048822, 3.0515212698872594),
    ('P. AE', 8, 'decoder-retrain'): (None, 0.4895351571657662),
    ('P. AE', 16, 'mlp'): (3.79187821789285, 3.6559003300004713),
    ('P. AE', 16, 'linear'): (5.089912486882091, 6.653943575083537),
    ('P. VAE', 8, 'mlp'): (3.924989260969626, 3.805593933825857),
    ('P. VAE', 8, 'linear'): (4.134676969909955, 10.123850600222445),
    ('P. VAE', 8, 'decoder-retrain'): (None, 0.49005676149798444),
    ('P. VAE', 16, 'mlp'): (4.927899653656834, 4.039046255288377),
    ('P. VAE', 16, 'linear'): (7.443505019424595, 3.1923017898522277),
    ('baseline', None, 'mean-position'): (5.407803566547861, 3.8220330502425583),
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
