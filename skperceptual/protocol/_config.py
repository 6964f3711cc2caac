"""Experiment profiles: loading, command-line overrides and the run key.

A profile is a small TOML file (``experiments/<name>.toml``) with the
sections below; every value missing from it takes the default in
:data:`DEFAULTS`. Any value can be overridden, either from Python
(``load_profile("cpu", ae__max_epochs=2)``) or from the command line
(``--set ae.max_epochs=2``).
"""

import copy
import hashlib
import json
from pathlib import Path

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Path, relative to the repository root, of the offline ImageNet AlexNet
#: weights this workplace keeps beside the checkout; ``perceptual_weights =
#: "auto"`` uses it when present and falls back to ``"imagenet"`` otherwise.
SHARED_WEIGHTS = Path("..") / "shared" / "weights" / "alexnet-imagenet-features.pth"

#: The four autoencoder variants: (loss, variational).
VARIANTS = {
    "AE": ("pixel", False),
    "VAE": ("pixel", True),
    "P. AE": ("perceptual", False),
    "P. VAE": ("perceptual", True),
}

DEFAULTS = {
    # Name of the dataset loader (skperceptual.datasets.load_<dataset>);
    # ignored when run_protocol is given a Bunch directly.
    "dataset": "lunarlander",
    # Seeds the subsampling, every AE fit, the head split and the heads.
    "random_state": 0,
    "data": {
        # Keyword arguments of each dataset's loader, by dataset name, e.g.
        # {"lunarlander": {"n_rollouts": 1400}}.
        "loader": {},
        # Optional caps on each part's size (0 = all), drawn at random with
        # random_state, to scale a profile down without a new loader.
        "n_autoencoder": 0,
        "n_predictor": 0,
        "n_test": 0,
    },
    "ae": {
        # A list, or a table of lists by dataset name.
        "z_dims": [32, 64],
        "variants": list(VARIANTS),
        "kl_weight": 0.01,
        "perceptual_net": "alexnet",
        "perceptual_layer": 5,
        # "imagenet", a path, None ("none" in TOML) or "auto" (see SHARED_WEIGHTS).
        "perceptual_weights": "imagenet",
        "perceptual_normalize": False,
        "max_epochs": 50,
        "batch_size": 512,
        "lr": 1e-3,
        "validation_fraction": 0.2,
        "patience": 10,
        "device": "auto",
    },
    "heads": {
        # Which head families to tune: "mlp" and/or "linear" (classification
        # adds LogisticRegression as "logistic" alongside "linear").
        "kinds": ["mlp", "linear"],
        # Share of the predictor set that PredefinedSplit holds out for
        # selecting a head (the paper's 80/20 split).
        "validation_fraction": 0.2,
        "layer_sizes": [32, 64, 128],
        "max_layers": 2,
        "activations": ["relu", "logistic"],
        # MLPs stop early on their own 10% of the training fold; a generous
        # max_iter makes that, not the iteration cap, end training.
        "max_iter": 2000,
        "n_iter_no_change": 20,
        "early_stopping_fraction": 0.1,
        "alphas": [0.01, 0.1, 1.0, 10.0, 100.0],
        "logistic_C": [0.01, 0.1, 1.0, 10.0],
    },
    "decoder": {
        # Table VIII: epochs of pixel-loss decoder retraining (encoder frozen).
        "max_epochs": 50,
        "lr": 1e-3,
        "patience": 10,
    },
    "report": {
        # Test frames shown in figure6.png.
        "n_frames": 8,
    },
}


def _merge(base, update, where=""):
    out = copy.deepcopy(base)
    for key, value in update.items():
        if key not in out:
            raise KeyError(f"Unknown profile key {where + key!r}; valid keys: {sorted(out)}")
        if isinstance(out[key], dict) and key != "loader":
            if not isinstance(value, dict):
                raise TypeError(f"Profile key {where + key!r} is a section; got {value!r}")
            out[key] = _merge(out[key], value, where + key + ".")
        else:
            out[key] = value
    return out


def repo_root():
    """Return the folder that holds the ``skperceptual`` package (the repository root)."""
    import skperceptual

    return Path(skperceptual.__file__).resolve().parents[1]


def resolve_profile_path(name_or_path):
    """Find a profile file: an existing path, else ``<repo>/experiments/NAME.toml``.

    Parameters
    ----------
    name_or_path : str or path-like
        ``"smoke"``, ``"cpu"``, ``"paper"`` or the path of a TOML file.

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    FileNotFoundError
        Listing every location tried.
    """
    tried = [Path(name_or_path)]
    name = str(name_or_path)
    tried.append(repo_root() / "experiments" / (name if name.endswith(".toml") else name + ".toml"))
    for path in tried:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"No profile {name_or_path!r}; tried: " + ", ".join(str(p) for p in tried)
    )


def _parse_value(text):
    """Parse a command-line value as a TOML literal, falling back to a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(items):
    """Turn ``["ae.max_epochs=2", "heads.kinds=['mlp']"]`` into ``{"ae__max_epochs": 2, ...}``.

    Parameters
    ----------
    items : iterable of str
        ``KEY=VALUE`` pairs; dotted keys address sections, values are TOML
        literals (a bare word is read as a string).

    Returns
    -------
    overrides : dict
    """
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ValueError(f"Override {item!r} is not KEY=VALUE (e.g. ae.max_epochs=2)")
        key, value = item.split("=", 1)
        out[key.strip().replace(".", "__")] = _parse_value(value.strip())
    return out


def _nest(overrides):
    nested = {}
    for key, value in overrides.items():
        parts = key.split("__")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def resolve_weights(value):
    """Resolve ``perceptual_weights``: ``"auto"`` becomes the shared file or ``"imagenet"``.

    ``"none"`` (TOML has no null) becomes None. A relative path is taken
    relative to the repository root.
    """
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    if value == "auto":
        path = (repo_root() / SHARED_WEIGHTS).resolve()
        return str(path) if path.is_file() else "imagenet"
    if value == "imagenet":
        return value
    path = Path(value)
    return str(path if path.is_absolute() else (repo_root() / path).resolve())


def load_profile(name_or_path="smoke", **overrides):
    """Load a profile and apply overrides, returning the resolved configuration.

    Parameters
    ----------
    name_or_path : str, path-like or dict, default="smoke"
        A profile name (``"smoke"``, ``"cpu"``, ``"paper"``), the path of a
        TOML file, or an already loaded configuration dict.
    **overrides
        Values replacing the profile's; nested keys are joined with ``__``,
        e.g. ``ae__max_epochs=2`` or ``heads__kinds=["mlp"]``.

    Returns
    -------
    config : dict
        Every key of :data:`DEFAULTS`, with ``perceptual_weights`` resolved
        and ``profile`` naming the source.

    Examples
    --------
    >>> cfg = load_profile("smoke", ae__max_epochs=1)
    >>> cfg["ae"]["max_epochs"]
    1
    """
    if isinstance(name_or_path, dict):
        profile, source = copy.deepcopy(name_or_path), name_or_path.get("profile", "custom")
    else:
        path = resolve_profile_path(name_or_path)
        with open(path, "rb") as f:
            profile = tomllib.load(f)
        source = path.stem
    profile.pop("profile", None)
    config = _merge(DEFAULTS, profile)
    config = _merge(config, _nest(overrides))
    config["ae"]["perceptual_weights"] = resolve_weights(config["ae"]["perceptual_weights"])
    if isinstance(config["ae"]["z_dims"], dict):
        # Per-dataset lists, as in the paper profile.
        by_dataset = config["ae"]["z_dims"]
        if config["dataset"] not in by_dataset:
            raise KeyError(f"ae.z_dims has no entry for dataset {config['dataset']!r}: {sorted(by_dataset)}")
        config["ae"]["z_dims"] = by_dataset[config["dataset"]]
    unknown = set(config["ae"]["variants"]) - set(VARIANTS)
    if unknown:
        raise ValueError(f"Unknown variants {sorted(unknown)}; valid: {list(VARIANTS)}")
    config["profile"] = source
    return config


def config_hash(obj, length=12):
    """Short, stable hash of a JSON-able object (sorted keys)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def run_key(config):
    """Key of a run: hash of everything in the resolved configuration that changes results.

    The profile's name and the report settings do not change results, so
    they are left out: the same settings reached through another profile or
    overrides share the key.
    """
    return config_hash({k: v for k, v in config.items() if k not in ("profile", "report")})
