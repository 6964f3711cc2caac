"""The paper's metrics: positioning error in pixels, accuracy, reconstruction L1."""

import numpy as np
from sklearn.metrics import accuracy_score, make_scorer
from sklearn.metrics.pairwise import paired_euclidean_distances


def mean_euclidean_distance(y_true, y_pred):
    """Mean Euclidean distance between true and predicted positions.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples, n_dims)
        Positions, e.g. pixel coordinates of the 64x64 LunarLander frame.

    Returns
    -------
    distance : float
        In the units of the positions (pixels).

    Examples
    --------
    >>> mean_euclidean_distance([[0, 0], [1, 1]], [[3, 4], [1, 1]])
    2.5
    """
    return float(np.mean(per_sample_metric("positioning", y_true, y_pred)))


#: GridSearchCV scorer for positioning: the negated mean Euclidean distance,
#: so that higher is better.
euclidean_scorer = make_scorer(mean_euclidean_distance, greater_is_better=False)


def accuracy(y_true, y_pred):
    """Share of correct predictions, in [0, 1].

    Examples
    --------
    >>> accuracy([0, 1, 2, 2], [0, 1, 1, 2])
    0.75
    """
    return float(accuracy_score(y_true, y_pred))


def scoring_for(task):
    """Return the GridSearchCV ``scoring`` of a task ("positioning" or "classification")."""
    if task == "positioning":
        return euclidean_scorer
    if task == "classification":
        return "accuracy"
    raise ValueError(f"Unknown task {task!r}; expected 'positioning' or 'classification'")


def test_metric(task, y_true, y_pred):
    """The paper's test metric: pixels for positioning, accuracy in [0, 1] for classification."""
    return mean_euclidean_distance(y_true, y_pred) if task == "positioning" else accuracy(y_true, y_pred)


def mean_position_baseline(y_train, y_test):
    """Error of always predicting the mean training position.

    Parameters
    ----------
    y_train, y_test : array-like of shape (n, 2)

    Returns
    -------
    distance : float

    Examples
    --------
    >>> mean_position_baseline([[0, 0], [2, 0]], [[1, 3]])
    3.0
    """
    y_train = np.asarray(y_train, dtype=np.float64)
    y_test = np.asarray(y_test, dtype=np.float64)
    return mean_euclidean_distance(y_test, np.broadcast_to(y_train.mean(axis=0), y_test.shape))


def mean_l1(images, reconstructions):
    """Mean absolute error per pixel value, on the [0, 1] scale.

    Parameters
    ----------
    images : array of shape (n, C, H, W)
        uint8 in [0, 255] or floating in [0, 1].
    reconstructions : array of the same shape
        Floating in [0, 1], e.g. from ``inverse_transform``.

    Returns
    -------
    l1 : float

    Examples
    --------
    >>> import numpy as np
    >>> mean_l1(np.full((1, 3, 2, 2), 255, np.uint8), np.zeros((1, 3, 2, 2)))
    1.0
    """
    images = np.asarray(images)
    x = images.astype(np.float64) / 255.0 if images.dtype == np.uint8 else images.astype(np.float64)
    return float(np.mean(np.abs(x - np.asarray(reconstructions, dtype=np.float64))))


def relative_to_best(values):
    """Express errors as performance relative to the best, as in the paper's Table VIII.

    100% is the lowest error; every other value is ``lowest / value`` in
    percent, so below 100%. NaN stays NaN.

    Parameters
    ----------
    values : array-like of shape (n,)
        Errors, e.g. reconstruction L1; lower is better.

    Returns
    -------
    percent : list of float

    Examples
    --------
    >>> relative_to_best([2.0, 4.0, 2.5])
    [100.0, 50.0, 80.0]
    """
    values = np.asarray(values, dtype=np.float64)
    return (100.0 * np.nanmin(values) / values).tolist()


def per_sample_metric(task, y_true, y_pred):
    """Per-sample values whose mean is the paper's test metric.

    Parameters
    ----------
    task : {"positioning", "classification"}
    y_true, y_pred : array-like
        Positions of shape (n, 2) for positioning, labels of shape (n,) for
        classification.

    Returns
    -------
    values : ndarray of shape (n,)
        The Euclidean error of each frame (pixels) for positioning; 1.0 for
        each correctly classified image and 0.0 otherwise for classification.

    Examples
    --------
    >>> per_sample_metric("positioning", [[0, 0], [1, 1]], [[3, 4], [1, 1]]).tolist()
    [5.0, 0.0]
    >>> per_sample_metric("classification", [0, 1, 2], [0, 2, 2]).tolist()
    [1.0, 0.0, 1.0]
    """
    if task == "positioning":
        y_true = np.asarray(y_true, dtype=np.float64)
        y_pred = np.asarray(y_pred, dtype=np.float64)
        if y_true.ndim == 1:
            y_true, y_pred = y_true[:, None], y_pred[:, None]
        return paired_euclidean_distances(y_true, y_pred)
    if task == "classification":
        return (np.asarray(y_true) == np.asarray(y_pred)).astype(np.float64)
    raise ValueError(f"Unknown task {task!r}; expected 'positioning' or 'classification'")


def bootstrap_ci(values, groups=None, n_boot=1000, confidence=0.95, random_state=0):
    """Percentile-bootstrap confidence interval of the mean of per-sample values.

    With ``groups``, whole groups are resampled (a cluster bootstrap): the
    frames of one LunarLander rollout are near-duplicates, so resampling
    frames would understate the uncertainty. Each resample draws as many
    groups as there are, with replacement, and takes the mean over all their
    samples.

    Parameters
    ----------
    values : array-like of shape (n,)
        Per-sample values, e.g. from :func:`per_sample_metric`.
    groups : array-like of shape (n,), default=None
        Group id of each sample (e.g. the test rollout); None resamples
        single samples.
    n_boot : int, default=1000
        Number of bootstrap resamples.
    confidence : float in (0, 1), default=0.95
    random_state : int, numpy Generator or None, default=0

    Returns
    -------
    low, high : float
        The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of
        the resampled means.

    Examples
    --------
    >>> low, high = bootstrap_ci([1.0, 2.0, 3.0, 4.0], groups=[0, 0, 1, 1])
    >>> low, high
    (1.5, 3.5)
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("bootstrap_ci needs at least one value; got an empty `values`.")
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must be in (0, 1); got {confidence!r}.")
    if int(n_boot) < 1:
        raise ValueError(f"`n_boot` must be a positive integer; got {n_boot!r}.")
    if groups is None:
        sums, counts = values, np.ones_like(values)
    else:
        groups = np.asarray(groups).ravel()
        if groups.shape != values.shape:
            raise ValueError(f"`groups` must have one id per value; got {groups.size} ids for {values.size} values.")
        _, inverse = np.unique(groups, return_inverse=True)
        sums = np.bincount(inverse, weights=values)
        counts = np.bincount(inverse).astype(np.float64)
    # Resampling the (sum, count) of each group and taking the ratio of the
    # totals is the mean over the resampled samples. scipy.stats.bootstrap
    # can do this with paired=True, but is ~4x slower; chunks of resamples
    # keep the index array small when there are tens of thousands of samples.
    rng = np.random.default_rng(random_state)
    n, means = len(sums), []
    chunk = max(1, min(int(n_boot), 4_000_000 // n))
    for start in range(0, int(n_boot), chunk):
        idx = rng.integers(0, n, size=(min(chunk, int(n_boot) - start), n))
        means.append(sums[idx].sum(axis=1) / counts[idx].sum(axis=1))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.concatenate(means), [alpha, 1.0 - alpha])
    return float(low), float(high)


def metric_ci(task, y_true, y_pred, groups=None, n_boot=1000, confidence=0.95, random_state=0):
    """Bootstrap confidence interval of the paper's test metric.

    Parameters
    ----------
    task : {"positioning", "classification"}
    y_true, y_pred : array-like
        As for :func:`per_sample_metric`.
    groups : array-like of shape (n,), default=None
        E.g. the test rollout of each LunarLander frame; None resamples
        single test samples (images).
    n_boot, confidence, random_state
        As for :func:`bootstrap_ci`.

    Returns
    -------
    low, high : float
        In the units of the test metric: pixels, or accuracy in [0, 1].

    Examples
    --------
    >>> metric_ci("classification", [0, 1, 1, 0], [0, 1, 1, 0])
    (1.0, 1.0)
    """
    return bootstrap_ci(per_sample_metric(task, y_true, y_pred), groups, n_boot, confidence, random_state)
