"""Experiment profiles: loading, command-line overrides, validation and the run key.

A profile is a small TOML file with the sections of :data:`DEFAULTS`; the
shipped ones (``smoke``, ``cpu``, ``paper``) are package data, and any other
TOML path works too. Every value missing from a profile takes its default:
the protocol's own in :data:`DEFAULTS`, and for the ``ae`` section the
estimator's, so any :class:`~skperceptual.PerceptualAETransformer`
parameter can be set there. Any value can be overridden from Python
(``load_profile("cpu", ae__max_epochs=2)``) or the command line
(``--set ae.max_epochs=2``). The whole configuration is validated before
any data is loaded or any file is written.
"""

import copy
import hashlib
import json
from importlib import resources
from functools import partial
from numbers import Integral, Real
from pathlib import Path

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from ._registry import DATASETS, HEADS

#: The autoencoder variants: (loss, variational). The paper's four, then
#: feature prediction (Pihlgren et al., ICPR 2021), which runs only when
#: ``ae.variants`` names it.
VARIANTS = {
    "AE": ("pixel", False),
    "VAE": ("pixel", True),
    "P. AE": ("perceptual", False),
    "P. VAE": ("perceptual", True),
    "F. AE": ("feature_prediction", False),
    "F. VAE": ("feature_prediction", True),
}

#: This project's training-free reference embeddings (not in the paper),
#: computed at every ``ae.z_dims`` on the autoencoders' images and scored
#: with the same heads: "PCA" of the pixels, and "Frozen PCA", the frozen
#: loss network's activations at the perceptual loss's layer
#: (``ae.perceptual_net``, ``ae.perceptual_layer``), then PCA.
BASELINES = ("PCA", "Frozen PCA")

#: Estimator parameters the protocol sets per unit, and the key that does.
PROTOCOL_AE_PARAMS = {"z_dim": "ae.z_dims", "loss": "ae.variants", "variational": "ae.variants",
                      "random_state": "random_state", "callbacks": "learning_curve"}

DEFAULTS = {
    # Name of the dataset (skperceptual.protocol DATASETS); ignored when
    # run_protocol is given a Bunch directly.
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
    # Besides these two, any PerceptualAETransformer parameter; the
    # estimator's defaults apply to those a profile leaves out.
    "ae": {
        # A list, a table of lists by dataset name, or "paper" (the
        # paper's sizes of the dataset).
        "z_dims": [32, 64],
        "variants": ["AE", "VAE", "P. AE", "P. VAE"],
    },
    "heads": {
        # Which head families to tune (skperceptual.protocol HEADS): "mlp"
        # and/or "linear" (classification adds LogisticRegression as
        # "logistic" alongside "linear").
        "kinds": ["mlp", "linear"],
        # Share of the predictor set held out for selecting a head (the
        # paper's 80/20 split).
        "validation_fraction": 0.2,
        "layer_sizes": [32, 64, 128],
        "max_layers": 2,
        "activations": ["relu", "logistic"],
        # L2 penalties of the MLPs (sklearn's alpha): its default, and one
        # strong enough to fall back to the mean where the embeddings carry
        # nothing that generalises to new rollouts (see _registry._mlp).
        "mlp_alphas": [1e-4, 10.0],
        # MLPs stop early on their own 10% of the training fold; a generous
        # max_iter makes that, not the iteration cap, end training.
        "max_iter": 2000,
        "n_iter_no_change": 20,
        "early_stopping_fraction": 0.1,
        # Ridge's penalties reach 1e8: on standardised embeddings that carry
        # nothing that transfers to new rollouts, the best Ridge is the
        # intercept alone, and alpha = 1e6 on ~15,000 rows still kept ~1%
        # of each direction (0.005 px above the mean baseline on
        # validation in the cpu run); 1e8 keeps ~0.01%.
        "alphas": [0.01, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8],
        "logistic_C": [0.01, 0.1, 1.0, 10.0],
    },
    "baselines": {
        # Which of BASELINES run; [] turns them off. They cost seconds to
        # minutes where the autoencoders cost minutes to hours.
        "variants": list(BASELINES),
        # PCA is fitted on at most this many autoencoder images (0 = all),
        # drawn with random_state: more barely moves 64 components, and
        # the images' float copy must fit in memory.
        "n_fit": 12000,
    },
    "decoder": {
        # Table VIII: pixel-loss decoder retraining (encoder frozen), the
        # arguments of PerceptualAETransformer.fit_decoder.
        "max_epochs": 50,
        "lr": 1e-3,
        "patience": 10,
    },
    "learning_curve": {
        # Head error against the images the AE has seen: these variants'
        # AEs at this z are embedded n_points times during their fit
        # (geometrically spaced, the last at the end of training), and Ridge
        # and the AE's chosen MLP are scored on each. variants = [] turns it off.
        "variants": ["AE", "P. AE"],
        "z_dim": 64,
        "n_points": 6,
    },
    "report": {
        # Test frames shown in figure6.png.
        "n_frames": 8,
    },
}


def _estimator_params():
    from ..estimators import PerceptualAETransformer

    return PerceptualAETransformer().get_params()


def _merge(base, update, where=""):
    out = copy.deepcopy(base)
    # The ae section takes estimator parameters (checked against the
    # estimator in validate_config) and data.loader any loader argument.
    free_form = where in ("ae.", "data.loader.") or where.startswith("data.loader.")
    for key, value in update.items():
        if key not in out and not free_form:
            raise KeyError(f"Unknown profile key {where + key!r}; valid keys: {sorted(out)}")
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value, where + key + ".")
        elif isinstance(out.get(key), dict) and key != "z_dims":
            raise TypeError(f"Profile key {where + key!r} is a section; got {value!r}")
        else:
            out[key] = value
    return out


def _shipped_profiles():
    return resources.files(__package__) / "profiles"


def resolve_profile_path(name_or_path):
    """Find a profile file: an existing path, else a profile shipped with the package.

    Parameters
    ----------
    name_or_path : str or path-like
        ``"smoke"``, ``"cpu"``, ``"paper"`` or the path of a TOML file.

    Returns
    -------
    path : pathlib.Path or importlib.resources.abc.Traversable

    Raises
    ------
    FileNotFoundError
        Naming the shipped profiles.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = _shipped_profiles()
    name = str(name_or_path).removesuffix(".toml")
    if (shipped / f"{name}.toml").is_file():
        return shipped / f"{name}.toml"
    names = sorted(p.name.removesuffix(".toml") for p in shipped.iterdir() if p.name.endswith(".toml"))
    raise FileNotFoundError(f"No profile {str(name_or_path)!r}: not a file, and the shipped profiles are {names}")


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


def _none(value):
    # TOML has no null: "none" stands for None.
    return None if isinstance(value, str) and value.lower() == "none" else value


def load_profile(name_or_path="smoke", **overrides):
    """Load a profile, apply overrides and validate the result.

    Parameters
    ----------
    name_or_path : str, path-like or dict, default="smoke"
        A shipped profile's name (``"smoke"``, ``"cpu"``, ``"paper"``), the
        path of a TOML file, or an already loaded configuration dict.
    **overrides
        Values replacing the profile's; nested keys are joined with ``__``,
        e.g. ``ae__max_epochs=2`` or ``heads__kinds=["mlp"]``.

    Returns
    -------
    config : dict
        Every key of :data:`DEFAULTS` plus the ``ae`` parameters the profile
        sets, ``z_dims`` resolved for the dataset, and ``profile`` naming the
        source.

    Raises
    ------
    ValueError
        Naming the first invalid key and how to fix it.

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
        try:
            profile = tomllib.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"Profile {path} is not a valid TOML file ({exc}). Fix it, or pass a shipped "
                             f"profile name: {', '.join(sorted(p.name[:-5] for p in _shipped_profiles().iterdir() if p.name.endswith('.toml')))}."
                             ) from None
        source = Path(str(path)).stem
    profile.pop("profile", None)
    config = _merge(_merge(DEFAULTS, profile), _nest(overrides))
    config["ae"] = {key: _none(value) for key, value in config["ae"].items()}
    config["decoder"]["patience"] = _none(config["decoder"]["patience"])
    z_dims = config["ae"]["z_dims"]
    if z_dims == "paper" and config["dataset"] in DATASETS:
        config["ae"]["z_dims"] = list(DATASETS[config["dataset"]].z_dims)
    elif isinstance(z_dims, dict):
        # Per-dataset lists.
        if config["dataset"] not in z_dims:
            raise ValueError(f"ae.z_dims has no entry for dataset {config['dataset']!r}: {sorted(z_dims)}")
        config["ae"]["z_dims"] = z_dims[config["dataset"]]
    config["profile"] = source
    validate_config(config)
    return config


def _is_int(value, low=None):
    return isinstance(value, Integral) and not isinstance(value, bool) and (low is None or value >= low)


def _is_fraction(value):
    return isinstance(value, Real) and not isinstance(value, bool) and 0 < value < 1


def _is_list(check):
    return lambda value: isinstance(value, list) and len(value) > 0 and all(check(v) for v in value)


def _is_positive(value):
    return isinstance(value, Real) and not isinstance(value, bool) and value > 0


#: Checks of the protocol's own keys: key -> (check, what a valid value is).
_CHECKS = {
    "random_state": (_is_int, "an int"),
    "data.n_autoencoder": (lambda v: _is_int(v, 0), "an int >= 0 (0 = all)"),
    "data.n_predictor": (lambda v: _is_int(v, 0), "an int >= 0 (0 = all)"),
    "data.n_test": (lambda v: _is_int(v, 0), "an int >= 0 (0 = all)"),
    "data.loader": (lambda v: isinstance(v, dict) and all(isinstance(x, dict) for x in v.values()),
                    "a table of loader arguments by dataset, e.g. [data.loader.lunarlander]"),
    "ae.z_dims": (_is_list(lambda v: _is_int(v, 1)), "a list of ints >= 1, e.g. --set 'ae.z_dims=[8]'"),
    "ae.variants": (lambda v: isinstance(v, list) and all(x in VARIANTS for x in v),
                    f"a list of variants from {list(VARIANTS)}, or [] for the baselines alone"),
    "heads.kinds": (_is_list(lambda v: v in {h.family for h in HEADS.values()}),
                    f"a list of head families from {sorted({h.family for h in HEADS.values()})}"),
    "heads.validation_fraction": (_is_fraction, "a float in (0, 1)"),
    "heads.layer_sizes": (_is_list(lambda v: _is_int(v, 1)), "a list of ints >= 1"),
    "heads.max_layers": (lambda v: v in (1, 2) and not isinstance(v, bool), "1 or 2"),
    "heads.activations": (_is_list(lambda v: v in ("identity", "logistic", "tanh", "relu")),
                          "a list from ['identity', 'logistic', 'tanh', 'relu']"),
    "heads.max_iter": (lambda v: _is_int(v, 1), "an int >= 1"),
    "heads.n_iter_no_change": (lambda v: _is_int(v, 1), "an int >= 1"),
    "heads.early_stopping_fraction": (_is_fraction, "a float in (0, 1)"),
    "heads.alphas": (_is_list(_is_positive), "a list of floats > 0"),
    "heads.mlp_alphas": (_is_list(_is_positive), "a list of floats > 0"),
    "heads.logistic_C": (_is_list(_is_positive), "a list of floats > 0"),
    "baselines.variants": (lambda v: isinstance(v, list) and all(x in BASELINES for x in v),
                           f"a list from {list(BASELINES)}, or [] for no baselines"),
    "baselines.n_fit": (lambda v: _is_int(v, 0), "an int >= 0 (0 = all)"),
    "decoder.max_epochs": (lambda v: _is_int(v, 1), "an int >= 1"),
    "decoder.lr": (_is_positive, "a float > 0"),
    "decoder.patience": (lambda v: v is None or _is_int(v, 1), "an int >= 1 or none"),
    "learning_curve.variants": (lambda v: isinstance(v, list) and all(x in VARIANTS for x in v),
                                f"a list of variants from {list(VARIANTS)}, or [] for no learning curve"),
    "learning_curve.z_dim": (lambda v: _is_int(v, 1), "an int >= 1 (one of ae.z_dims)"),
    "learning_curve.n_points": (lambda v: _is_int(v, 1), "an int >= 1"),
    "report.n_frames": (lambda v: _is_int(v, 1), "an int >= 1"),
}


def _invalid(key, value, expected):
    return ValueError(f"Profile key {key} = {value!r} is invalid: expected {expected}. "
                      f"Fix it in the profile or with --set {key}=VALUE.")


def _check_ae_params(ae):
    """Check the ``ae`` section's estimator parameters against the estimator itself."""
    import torch
    from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

    from ..estimators import PerceptualAETransformer

    valid = sorted(set(_estimator_params()) - set(PROTOCOL_AE_PARAMS))
    params = {k: v for k, v in ae.items() if k not in DEFAULTS["ae"]}
    for key in params:
        if key in PROTOCOL_AE_PARAMS:
            raise ValueError(f"ae.{key} is set by the protocol for each unit; use {PROTOCOL_AE_PARAMS[key]} instead.")
        if key not in valid:
            raise ValueError(f"Unknown profile key 'ae.{key}'; valid keys: {sorted(DEFAULTS['ae']) + valid}")
    try:
        validate_parameter_constraints(PerceptualAETransformer._parameter_constraints, params,
                                       caller_name="PerceptualAETransformer")
    except InvalidParameterError as exc:
        key = next(k for k in params if f"'{k}'" in str(exc))
        raise ValueError(f"Profile key ae.{key}: {exc} Fix it in the profile or with --set ae.{key}=VALUE.") from exc
    device = str(params.get("device", "auto"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"ae.device = {device!r} but no CUDA device is visible; "
                         "use --set ae.device=auto (CUDA when present) or ae.device=cpu.")


def _check_loader_params(loaders):
    """Check ``data.loader.<dataset>`` keys against the dataset loader's own keyword arguments."""
    import inspect

    for name, kwargs in loaders.items():
        if name not in DATASETS:
            continue  # a Bunch passed to run_protocol needs no loader
        loader = DATASETS[name].load
        valid = sorted(p.name for p in inspect.signature(loader).parameters.values()
                       if p.kind == p.KEYWORD_ONLY and p.name not in ("data_home", "verbose"))
        for key in kwargs:
            if key not in valid:
                raise ValueError(f"Unknown profile key 'data.loader.{name}.{key}'; {_loader_name(loader)} takes "
                                 f"{valid}. Fix it in the profile or with --set data.loader.{name}.KEY=VALUE.")


def _loader_name(loader):
    """``load_atari('pong')`` for a partial, ``load_lunarlander`` for a function."""
    if isinstance(loader, partial):
        return f"{loader.func.__name__}({', '.join(map(repr, loader.args))})"
    return loader.__name__


def validate_config(config):
    """Check a whole configuration, raising an error that names the key and the fix.

    Runs before any data is loaded or any file written, so that a typo
    never costs a fitted autoencoder.

    Parameters
    ----------
    config : dict
        As returned by :func:`load_profile`.

    Raises
    ------
    ValueError
    """
    for key, (check, expected) in _CHECKS.items():
        section, _, name = key.rpartition(".")
        value = (config[section] if section else config)[name]
        if not check(value):
            raise _invalid(key, value, expected)
    _check_ae_params(config["ae"])
    _check_loader_params(config["data"]["loader"])
    if not config["ae"]["variants"] and not config["baselines"]["variants"]:
        raise ValueError("ae.variants and baselines.variants are both empty: there is nothing to run. "
                         "Name at least one autoencoder variant or baseline.")


def ae_params(config, variant, z_dim):
    """Every :class:`~skperceptual.PerceptualAETransformer` parameter of one AE unit.

    The profile's ``ae`` section, the variant's loss, the embedding size and
    the run's seed; the estimator's defaults for everything else.

    Parameters
    ----------
    config : dict
        A configuration from :func:`load_profile`.
    variant : {"AE", "VAE", "P. AE", "P. VAE"}
    z_dim : int

    Returns
    -------
    params : dict
        ``PerceptualAETransformer(**params)`` builds the unit's estimator.

    Examples
    --------
    >>> p = ae_params(load_profile("smoke"), "P. VAE", 16)
    >>> p["loss"], p["variational"], p["z_dim"]
    ('perceptual', True, 16)
    """
    loss, variational = VARIANTS[variant]
    params = {k: v for k, v in config["ae"].items() if k not in DEFAULTS["ae"]}
    params.update(z_dim=int(z_dim), loss=loss, variational=variational, random_state=config["random_state"])
    return {**_estimator_params(), **params}


#: Estimator parameters added after experiments' unit keys were first
#: written, each with the value that computes what the estimator computed
#: before it existed. At that value a parameter stays out of the keys
#: (:func:`key_params`), so that runs started before it resume.
KEY_NEUTRAL_PARAMS = {"loss_precision": None}


def key_params(params):
    """``params`` as an autoencoder unit's key hashes them.

    Parameters
    ----------
    params : dict
        The estimator parameters, as from :func:`ae_params`.

    Returns
    -------
    params : dict
        ``params`` without the entries of :data:`KEY_NEUTRAL_PARAMS` that
        hold their neutral value.

    Examples
    --------
    >>> key_params({"z_dim": 8, "loss_precision": None})
    {'z_dim': 8}
    >>> key_params({"z_dim": 8, "loss_precision": "bf16"})
    {'z_dim': 8, 'loss_precision': 'bf16'}
    """
    return {k: v for k, v in params.items()
            if not (k in KEY_NEUTRAL_PARAMS and v == KEY_NEUTRAL_PARAMS[k])}


def config_hash(obj, length=12):
    """Short, stable hash of a JSON-able object (sorted keys)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


#: Configuration sections added after run keys were first written, with
#: their defaults (see :func:`run_key`).
KEY_NEUTRAL_SECTIONS = {"baselines": DEFAULTS["baselines"]}


def run_key(config):
    """Key of a run: hash of everything in the configuration that changes results.

    The profile's name and the report settings do not change results, so
    they are left out: the same settings reached through another profile or
    overrides share the key.
    """
    keyed = {k: v for k, v in config.items() if k not in ("profile", "report")}
    # Sections added after runs were first keyed stay out at their defaults,
    # so that a command repeated without --out finds its earlier run directory.
    for section, default in KEY_NEUTRAL_SECTIONS.items():
        if keyed.get(section) == default:
            keyed.pop(section)
    return config_hash(keyed)
