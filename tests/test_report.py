"""Report side of the protocol: confidence intervals, Table VIII's scale,
Figure 6's frame choice, the learning curve and corrupt results files."""

import time

import numpy as np
import pandas as pd
import pytest

from skperceptual.protocol._metrics import bootstrap_ci, metric_ci, per_sample_metric, relative_to_best


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


def test_bootstrap_ci_is_fast_and_checks_its_input():
    values = np.random.default_rng(0).random(26_000)
    start = time.perf_counter()
    bootstrap_ci(values)
    bootstrap_ci(values, groups=np.arange(26_000) // 150)
    assert time.perf_counter() - start < 2.0
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
