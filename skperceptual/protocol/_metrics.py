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
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim == 1:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    return float(np.mean(paired_euclidean_distances(y_true, y_pred)))


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
    """Express values in percent of the smallest (100% = lowest).

    Examples
    --------
    >>> relative_to_best([2.0, 3.0])
    [100.0, 150.0]
    """
    values = np.asarray(values, dtype=np.float64)
    return (100.0 * values / np.nanmin(values)).tolist()
