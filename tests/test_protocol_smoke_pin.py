"""The smoke profile's metrics, pinned from a run of the code before the issue 9 redesign.

Re-pinned five times since. First for three deliberate changes: the MLP
grid's strong-L2 candidates (issue 14), the baseline's validation value
taken on the heads' own split, and float rounding from the speed work
(fused Adam, the space-to-depth first conv; issue 11). Then for float
rounding from issue 11's third round (the autoencoder's bias gradients
summed apart, the phase forward of its last transposed convolution, the
space-to-depth channel order): decoder-retrain errors moved by 1e-4 and
the baseline not at all, while some head errors moved by up to 2 px (the
smoke run's tiny heads amplify rounding). Then for float rounding from its
fifth round (the loss network's first convolution back to its plain
forward, space-to-depth in its input gradient only; MSE gradients kept
channels-last): decoder-retrain errors moved by at most 7e-5, head errors
by at most 0.08 px. Then for float rounding from its tenth round (the
autoencoder's seed-map product through oneDNN instead of MKL, and its last
encoder convolution as one matrix product of patches): decoder-retrain
errors moved by at most 3.3e-4, the baseline not at all, the heads' errors
by up to 32% (the VAE's z = 8 linear head, 3.67 to 4.84 px). Then for
float rounding from its eleventh round (the loss network's second
convolution through its spectrum): only the perceptual variants moved,
their decoder-retrain errors by at most 1.3e-4 and their heads' errors by
at most 3.7% (relative); the pixel variants and the baseline are
bit-identical. Then extended with the rows of the training-free baselines
(PCA and Frozen PCA), which left every earlier pin where it was.

The smoke run is deterministic on one CPU, but not across CPU models:
oneDNN, MKL and OpenBLAS pick kernels (and so summation orders) by the
instruction set and cache sizes they find. The pins come from an AMD EPYC
with AVX512-BF16 and no AMX (torch 2.14.1+cu130). On an Intel Xeon with AMX
the same code moved the decoder-retrain errors by at most 1.3e-4
(relative), left the mean-position baseline bit-identical, and moved the
tiny smoke heads' errors by up to 25%. The test therefore reads the
decoder-retrain errors first:

- where they reproduce the pins to 1e-9, this machine's torch rounds as the
  pinning one's did, and every metric must reproduce its pin to 1e-9, but
  the heads' to 1e-4: their solvers run on numpy's BLAS, which picks its
  own kernels by CPU (a second AMD EPYC that reproduced every decoder pin
  exactly moved the heads' errors by up to 6.8e-6, relative);
- elsewhere the baseline must still match exactly, the decoder-retrain
  errors to 1e-3, and the heads' errors to 45%. That still catches a
  protocol change that alters splits, units or which rows are produced, but
  not a subtle one; such a machine warns that only the coarse check ran.

Any refactoring of the protocol must reproduce these numbers. When a
deliberate change of the evaluation alters them (e.g. the head grid's
scaling), update :data:`EXPECTED` from the new run's ``results.csv`` on a
machine like the pinning one and say why in the commit.
"""

import math
import warnings

import pytest

from skperceptual.protocol import load_profile, run_protocol

#: (variant, z_dim, head) -> (val_metric, test_metric) of the smoke run on
#: LunarLander with the ImageNet AlexNet weights; None where there is none.
EXPECTED = {
    ('AE', 8, 'mlp'): (3.731193299617173, 5.354408311190625),
    ('AE', 8, 'linear'): (44.305035938512795, 10.362462286654557),
    ('AE', 8, 'decoder-retrain'): (None, 0.48534616065740493),
    ('AE', 16, 'mlp'): (6.665281225576005, 7.796191325048846),
    ('AE', 16, 'linear'): (22.911185139404672, 7.5782436734078),
    ('VAE', 8, 'mlp'): (4.4464222139687655, 3.690183956579592),
    ('VAE', 8, 'linear'): (14.18783501025885, 4.836773794751304),
    ('VAE', 8, 'decoder-retrain'): (None, 0.48598059631760737),
    ('VAE', 16, 'mlp'): (7.70148680407531, 5.168431140032271),
    ('VAE', 16, 'linear'): (2.7471943711242153, 9.772615783210764),
    ('P. AE', 8, 'mlp'): (3.387423453019694, 3.854759373184491),
    ('P. AE', 8, 'linear'): (9.171666658727721, 3.05150728851208),
    ('P. AE', 8, 'decoder-retrain'): (None, 0.48958707173751503),
    ('P. AE', 16, 'mlp'): (3.76125009256743, 3.728197682506288),
    ('P. AE', 16, 'linear'): (4.812655823022869, 7.50159982909453),
    ('P. VAE', 8, 'mlp'): (3.928849207256581, 3.801449706316601),
    ('P. VAE', 8, 'linear'): (3.879781912010612, 10.258725291859047),
    ('P. VAE', 8, 'decoder-retrain'): (None, 0.4900981392112712),
    ('P. VAE', 16, 'mlp'): (4.963531511443062, 4.047968518261963),
    ('P. VAE', 16, 'linear'): (7.7866063866232365, 3.3575976832692525),
    ('PCA', 8, 'mlp'): (2.9518364476263788, 2.8954516565468773),
    ('PCA', 8, 'linear'): (7.225828932595289, 4.600920283797565),
    ('PCA', 16, 'mlp'): (3.731994930654089, 2.6267778004892235),
    ('PCA', 16, 'linear'): (7.002840481295448, 5.234231345539809),
    ('Frozen PCA', 8, 'mlp'): (2.0222601444905863, 2.733366113542569),
    ('Frozen PCA', 8, 'linear'): (4.056201569629803, 2.0523122128019056),
    ('Frozen PCA', 16, 'mlp'): (3.1452296418232946, 1.9490402070907904),
    ('Frozen PCA', 16, 'linear'): (2.554106643431423, 1.4915575305708508),
    ('baseline', None, 'mean-position'): (5.407803566547861, 3.8220330502425583),
}


def _key(row):
    z = None if row["z_dim"] is None or (isinstance(row["z_dim"], float) and math.isnan(row["z_dim"])) else int(row["z_dim"])
    return row["variant"], z, row["head"]


#: Relative tolerance of "reproduces its pin": float rounding of the same kernels.
EXACT_REL = 1e-9

#: The same for the heads' errors, whose solvers' BLAS kernels differ between
#: CPUs that run torch's kernels alike (see the module docstring).
HEAD_BLAS_REL = 1e-4

#: Relative tolerances where this machine's float rounding differs from the
#: pinning machine's (see the module docstring): measured across two CPU
#: models, at most 1.3e-4 for the decoder-retrain errors and 25% for heads;
#: the tenth round's rounding changes on one CPU moved heads by up to 32%,
#: so 35% left too little room. A head off by half still fails.
CROSS_CPU_REL = {"decoder-retrain": 1e-3, "head": 0.45}


def _rounds_like_pinning_machine(got):
    """Whether the decoder-retrain errors reproduce their pins (to :data:`EXACT_REL`)."""
    retrain = [key for key in EXPECTED if key[2] == "decoder-retrain"]
    return all(got[key][1] == pytest.approx(EXPECTED[key][1], rel=EXACT_REL) for key in retrain)


def _tolerance(key, exact):
    if key[0] == "baseline" or (exact and key[2] == "decoder-retrain"):
        # The baseline is a mean of the same targets everywhere.
        return EXACT_REL
    if exact:
        return HEAD_BLAS_REL
    return CROSS_CPU_REL["decoder-retrain" if key[2] == "decoder-retrain" else "head"]


def _mismatches(got):
    """The (key, which metric) pairs of ``got`` that miss their pins, and whether the check was exact."""
    exact = _rounds_like_pinning_machine(got)
    missed = []
    for key, pinned in EXPECTED.items():
        for i, (want, have) in enumerate(zip(pinned, got[key])):
            ok = have is None if want is None else have == pytest.approx(want, rel=_tolerance(key, exact))
            if not ok:
                missed.append((key, ("val_metric", "test_metric")[i]))
    return missed, exact


@pytest.mark.slow
def test_smoke_metrics_are_pinned(tmp_path, alexnet_weights):
    config = load_profile("smoke", ae__perceptual_weights=str(alexnet_weights))
    results = run_protocol(None, config, tmp_path / "run", verbose=0, report=False)
    rows = results.astype(object).where(results.notna(), None).to_dict("records")
    got = {_key(r): (r["val_metric"], r["test_metric"]) for r in rows}
    assert set(got) == set(EXPECTED)
    missed, exact = _mismatches(got)
    if not exact:
        warnings.warn("this CPU rounds differently from the machine that pinned the smoke metrics: "
                      "they were compared with cross-CPU tolerances only", UserWarning)
    assert not missed, [(key, metric, EXPECTED[key], got[key]) for key, metric in missed]


@pytest.mark.parametrize("retrain_shift, head_shift, exact, fails", [
    (0.0, 0.0, True, False),      # the pinning machine
    (1e-12, 1e-12, True, False),  # rounding noise below the exact check's tolerance
    (0.0, 1e-3, True, True),      # same rounding, but a head moved: a real change
    (1e-4, 0.2, False, False),    # another CPU's rounding: coarse check only
    (1e-2, 0.0, False, True),     # a decoder-retrain error off by 1%: a real change
    (1e-4, 0.5, False, True),     # a head's error off by half: a real change
])
def test_pin_check_tells_rounding_from_change(retrain_shift, head_shift, exact, fails):
    """The machine check and tolerances, on pins moved as another CPU or a real change would move them."""
    def moved(key, value):
        if value is None or key[0] == "baseline":
            return value
        return value * (1 + (retrain_shift if key[2] == "decoder-retrain" else head_shift))

    missed, was_exact = _mismatches({key: (moved(key, val), moved(key, test)) for key, (val, test) in EXPECTED.items()})
    assert was_exact is exact
    assert bool(missed) is fails
