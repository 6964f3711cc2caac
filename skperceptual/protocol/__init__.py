"""The paper's evaluation protocol as scikit-learn code.

Fit the four autoencoder variants (AE, VAE, P. AE, P. VAE) for each
embedding size, tune prediction heads on their embeddings with
``GridSearchCV`` on an 80/20 ``PredefinedSplit``, score them on the test
set, retrain each best decoder with pixel loss (Table VIII), and write the
paper's tables next to the paper's own numbers. Runs are resumable and their
units can be spread over a cluster through joblib.

Examples
--------
>>> from skperceptual.protocol import load_profile, run_protocol  # doctest: +SKIP
>>> config = load_profile("smoke", ae__max_epochs=1)              # doctest: +SKIP
>>> results = run_protocol(my_bunch, config, "runs/mine")          # doctest: +SKIP
"""

from ._config import DEFAULTS, VARIANTS, load_profile, parse_overrides, run_key
from ._decoder import reconstruction_l1, retrain_decoder
from ._heads import head_search_space, mlp_architectures, predefined_split, search_head
from ._metrics import (
    accuracy,
    euclidean_scorer,
    mean_euclidean_distance,
    mean_l1,
    mean_position_baseline,
    relative_to_best,
)
from ._report import perceptual_overhead, render_report
from ._runner import ae_params, load_dataset, prepare_data, run_protocol, write_results

__all__ = [
    "DEFAULTS",
    "VARIANTS",
    "accuracy",
    "ae_params",
    "euclidean_scorer",
    "head_search_space",
    "load_dataset",
    "load_profile",
    "mean_euclidean_distance",
    "mean_l1",
    "mean_position_baseline",
    "mlp_architectures",
    "parse_overrides",
    "perceptual_overhead",
    "predefined_split",
    "prepare_data",
    "reconstruction_l1",
    "relative_to_best",
    "render_report",
    "retrain_decoder",
    "run_key",
    "run_protocol",
    "search_head",
    "write_results",
]
