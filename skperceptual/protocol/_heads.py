"""Prediction heads on embeddings, tuned on the paper's 80/20 predictor split."""

import time

import numpy as np
from sklearn.model_selection import GridSearchCV, GroupShuffleSplit, ShuffleSplit
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ._config import DEFAULTS
from ._metrics import metric_ci, scoring_for, test_metric
from ._registry import HEADS


def _heads_config(config):
    heads = dict(DEFAULTS["heads"])
    if config is not None:
        heads.update(config.get("heads", config))
    return heads


def head_search_space(task, kind, config=None, random_state=0):
    """Build a head's pipeline (StandardScaler -> head) and its parameter grid.

    Parameters
    ----------
    task : {"positioning", "classification"}
    kind : {"mlp", "linear", "logistic"}
        ``"mlp"``: MLPRegressor / MLPClassifier (identity / softmax output).
        ``"linear"``: Ridge / RidgeClassifier (the paper's linear regression,
        on one-hot targets for classification). ``"logistic"``:
        LogisticRegression, classification only.
    config : dict, default=None
        A configuration from :func:`load_profile` or its ``heads`` section;
        None uses the defaults.
    random_state : int, default=0
        Seed of the MLP's initialisation and early-stopping split.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
    param_grid : dict
        For ``GridSearchCV``.

    Examples
    --------
    >>> pipe, grid = head_search_space("positioning", "mlp")
    >>> len(grid["head__regressor__hidden_layer_sizes"]), grid["head__regressor__activation"]
    (9, ['relu', 'logistic'])
    """
    h = _heads_config(config)
    if task not in ("positioning", "classification"):
        raise ValueError(f"Unknown task {task!r}; expected 'positioning' or 'classification'")
    if kind not in HEADS or task not in HEADS[kind].tasks:
        valid = [name for name, head in HEADS.items() if task in head.tasks]
        raise ValueError(f"Unknown head {kind!r} for task {task!r}; valid: {valid}")
    head, grid = HEADS[kind].build(task, h, random_state)
    pipeline = Pipeline([("scale", StandardScaler()), ("head", head)])
    return pipeline, {"head__" + k: v for k, v in grid.items()}


def _n_iter(estimator):
    # MLPs report an int; Ridge None; LogisticRegression an array per class.
    n_iter = getattr(estimator, "n_iter_", None)
    return None if n_iter is None else int(np.max(n_iter))


def head_split(n_samples, validation_fraction=0.2, random_state=0, groups=None):
    """The paper's single 80% train / 20% validation split of the predictor set.

    Parameters
    ----------
    n_samples : int
    validation_fraction : float, default=0.2
    random_state : int, default=0
    groups : array-like of shape (n_samples,), default=None
        Group of each sample, e.g. LunarLander rollout ids. When given (with
        at least 2 groups), :class:`~sklearn.model_selection.GroupShuffleSplit`
        puts whole groups on one side, so that validation frames are not
        near-duplicates of training frames from the same rollout; otherwise
        :class:`~sklearn.model_selection.ShuffleSplit` splits samples at random.

    Returns
    -------
    cv : list of one (train, validation) pair of index arrays
        The splitter's one split, as ``GridSearchCV``'s ``cv``.

    Examples
    --------
    >>> cv = head_split(10, 0.2, groups=[0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    >>> (train, valid), = cv
    >>> len(train), len(valid)
    (8, 2)
    """
    X = np.zeros((n_samples, 1))
    if groups is not None and len(np.unique(groups)) >= 2:
        splitter = GroupShuffleSplit(n_splits=1, test_size=validation_fraction, random_state=random_state)
        return list(splitter.split(X, groups=groups))
    return list(ShuffleSplit(n_splits=1, test_size=validation_fraction, random_state=random_state).split(X))


def search_head(Z_train, y_train, Z_test, y_test, task, kind, config=None, random_state=0, n_jobs=None,
                groups=None, test_groups=None, param_grid=None):
    """Tune one head on the predictor set and score the chosen one on the test set.

    The grid is searched on a :func:`head_split` of ``(Z_train,
    y_train)``; the best candidate by validation score is refitted once on
    the whole predictor set (``refit=True``) and scored once on the test set.

    Parameters
    ----------
    Z_train, y_train : arrays
        Predictor-set embeddings and targets.
    Z_test, y_test : arrays
        Test-set embeddings and targets.
    task : {"positioning", "classification"}
    kind : {"mlp", "linear", "logistic"}
    config : dict, default=None
    random_state : int, default=0
    n_jobs : int, default=None
        Passed to ``GridSearchCV``.
    groups : array-like, default=None
        Groups of the predictor samples (LunarLander rollouts) for
        :func:`head_split`.
    test_groups : array-like, default=None
        Groups of the test samples (LunarLander rollouts): the bootstrap
        confidence interval of the test metric resamples whole groups. None
        resamples single test samples.
    param_grid : dict, default=None
        Search this grid (keys as in :func:`head_search_space`'s) instead of
        the configured one, e.g. one chosen candidate.

    Returns
    -------
    row : dict
        ``best_params``, ``val_score`` (the scorer's value, higher is
        better), ``val_metric`` and ``test_metric`` (pixels, or accuracy in
        [0, 1]), ``test_ci_low`` and ``test_ci_high`` (its 95% bootstrap
        confidence interval), ``n_candidates``, ``search_time``, ``refit_time``,
        ``n_iter`` (MLP iterations of the refitted head, else None).
    search : GridSearchCV
        Fitted, for inspection.
    """
    h = _heads_config(config)
    pipeline, grid = head_search_space(task, kind, config, random_state)
    search = GridSearchCV(
        pipeline,
        grid if param_grid is None else param_grid,
        scoring=scoring_for(task),
        cv=head_split(len(Z_train), h["validation_fraction"], random_state, groups),
        refit=True,
        n_jobs=n_jobs,
        error_score="raise",
    )
    start = time.perf_counter()
    search.fit(Z_train, y_train)
    search_time = time.perf_counter() - start
    fitted = search.best_estimator_.named_steps["head"]
    fitted = getattr(fitted, "regressor_", fitted)
    val = float(search.best_score_)
    y_pred = search.predict(Z_test)
    ci_low, ci_high = metric_ci(task, y_test, y_pred, groups=test_groups, random_state=random_state)
    row = {
        "best_params": {k.rsplit("__", 1)[-1]: v for k, v in search.best_params_.items()},
        "val_score": val,
        "val_metric": -val if task == "positioning" else val,
        "test_metric": test_metric(task, y_test, y_pred),
        "test_ci_low": ci_low,
        "test_ci_high": ci_high,
        "n_candidates": len(search.cv_results_["params"]),
        "search_time": search_time,
        "refit_time": float(search.refit_time_),
        "n_iter": _n_iter(fitted),
    }
    return row, search
