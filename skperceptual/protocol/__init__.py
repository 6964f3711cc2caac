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

import importlib

# Where each public name lives. Imports are deferred to first use so that
# ``skperceptual --help`` (which registers the CLI from ``_cli``) does not pay
# for torch, scikit-learn and matplotlib.
_LOCATIONS = {
    "_config": ("DEFAULTS", "VARIANTS", "load_profile", "parse_overrides", "run_key"),
    "_decoder": ("reconstruction_l1", "retrain_decoder"),
    "_heads": ("head_search_space", "mlp_architectures", "predefined_split", "search_head"),
    "_metrics": (
        "accuracy",
        "euclidean_scorer",
        "mean_euclidean_distance",
        "mean_l1",
        "mean_position_baseline",
        "relative_to_best",
    ),
    "_report": ("perceptual_overhead", "render_report"),
    "_runner": ("ae_params", "load_dataset", "prepare_data", "run_protocol", "write_results"),
}
_MODULE_OF = {name: module for module, names in _LOCATIONS.items() for name in names}


def __getattr__(name):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_MODULE_OF))


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
