"""What the protocol evaluates: the prediction heads and the datasets.

Adding a head or a dataset is one entry here; the runner, the results'
row order and the report all read these registries.
"""

from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Optional

from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

from .. import datasets


def mlp_architectures(layer_sizes=(32, 64, 128), max_layers=2):
    """Hidden-layer tuples of the paper's MLP heads.

    Every 1-layer network, and every 2-layer network whose second layer is no
    larger than its first, with sizes from ``layer_sizes``.

    Parameters
    ----------
    layer_sizes : sequence of int, default=(32, 64, 128)
    max_layers : {1, 2}, default=2

    Returns
    -------
    architectures : list of tuple of int

    Examples
    --------
    >>> mlp_architectures((32, 64))
    [(32,), (64,), (32, 32), (64, 32), (64, 64)]
    """
    sizes = sorted(int(s) for s in layer_sizes)
    archs = [(s,) for s in sizes]
    if max_layers >= 2:
        archs += [(a, b) for a in sizes for b in sizes if b <= a]
    return archs


def _mlp(task, h, random_state):
    common = dict(early_stopping=True, validation_fraction=h["early_stopping_fraction"],
                  n_iter_no_change=h["n_iter_no_change"], max_iter=h["max_iter"], random_state=random_state)
    # The paper's architectures and activations, each with sklearn's default
    # L2 penalty and with a strong one. Without the strong one, every MLP on
    # pixel-loss embeddings of LunarLander did worse than predicting the mean
    # on held-out rollouts (validation 20-38 px against 13.9 px): the
    # embeddings mostly encode the rollout's terrain, the MLP learns each
    # training rollout's positions from it, and its early-stopping split,
    # drawn from the same rollouts, cannot see that this fails on new ones.
    # With alpha=10 the best candidate is at or below the mean (12.9 px).
    grid = {"hidden_layer_sizes": mlp_architectures(h["layer_sizes"], h["max_layers"]),
            "activation": list(h["activations"]), "alpha": list(h["mlp_alphas"])}
    if task == "classification":
        return MLPClassifier(**common), grid
    # Standardising the pixel targets too keeps the MLP's identity output
    # well scaled (an affine map, undone on predict); Adam with unscaled
    # targets in [0, 64) converges much more slowly.
    head = TransformedTargetRegressor(regressor=MLPRegressor(**common), transformer=StandardScaler())
    return head, {"regressor__" + k: v for k, v in grid.items()}


def _linear(task, h, random_state):
    # The paper's linear regression; on one-hot targets for classification.
    return (Ridge() if task == "positioning" else RidgeClassifier()), {"alpha": list(h["alphas"])}


def _logistic(task, h, random_state):
    return LogisticRegression(max_iter=h["max_iter"]), {"C": list(h["logistic_C"])}


@dataclass(frozen=True)
class Head:
    """One prediction head of the protocol.

    Attributes
    ----------
    build : callable
        ``build(task, heads_config, random_state) -> (estimator, param_grid)``;
        the estimator is placed after a StandardScaler.
    family : str
        The ``heads.kinds`` value that selects this head.
    table : str or None
        The paper table family it is reported in (``_paper.TABLES``), None
        for an extra row the paper does not have.
    tasks : tuple of str
        The tasks it applies to.
    """

    build: Callable
    family: str
    table: Optional[str]
    tasks: tuple = ("positioning", "classification")


#: Every head, in the order of results.csv and the report.
HEADS = {
    "mlp": Head(_mlp, family="mlp", table="mlp"),
    "linear": Head(_linear, family="linear", table="linear"),
    "logistic": Head(_logistic, family="linear", table=None, tasks=("classification",)),
}


def heads_for(task, kinds):
    """Names of the heads tuned for a task when ``heads.kinds`` is ``kinds``.

    Examples
    --------
    >>> heads_for("classification", ["linear"])
    ['linear', 'logistic']
    """
    return [name for name, head in HEADS.items() if head.family in kinds and task in head.tasks]


@dataclass(frozen=True)
class Dataset:
    """One dataset of the protocol.

    Attributes
    ----------
    load : callable
        A loader of :mod:`skperceptual.datasets`, or a :func:`functools.partial`
        of one that picks the dataset (the Atari game); its keyword-only
        arguments are the profile's ``data.loader.<name>`` keys. It returns a
        Bunch with ``autoencoder``, ``predictor`` and ``test`` parts.
    task : {"positioning", "classification"}
    metric : str
        Unit of the heads' test metric in results.csv.
    z_dims : tuple of int
        The paper's embedding sizes (``ae.z_dims = "paper"``); the Atari
        games take LunarLander's.
    """

    load: Callable
    task: str
    metric: str
    z_dims: tuple = field(default=())


DATASETS = {
    "lunarlander": Dataset(datasets.load_lunarlander, "positioning", "pixels", (32, 64, 128, 256)),
    "stl10": Dataset(datasets.load_stl10, "classification", "accuracy", (64, 128, 256, 512)),
    "svhn": Dataset(datasets.load_svhn, "classification", "accuracy", (32, 64, 128)),
    # Not in the paper: small objects of Atari games, in LunarLander's design.
    **{game: Dataset(partial(datasets.load_atari, game), "positioning", "pixels", (32, 64, 128, 256))
       for game in datasets.ATARI_GAMES},
}

#: The metric of each task, for a Bunch that is not in :data:`DATASETS`.
TASK_METRICS = {"positioning": "pixels", "classification": "accuracy"}
