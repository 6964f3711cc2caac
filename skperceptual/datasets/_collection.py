"""Collections of simulated rollouts in the paper's design: seeds, split, assembly and cache.

A collection runs ``n_rollouts`` rollouts of ``n_steps`` frames under a
random policy. The first half of the rollouts is the unaltered autoencoder
set; from the second half, frames where the target is not visible are
dropped and whole rollouts are split into predictor (80%) and test (20%)
sets. Every rollout has its own seed, spawned from one entropy value, so
the bytes do not depend on how many processes generate them.
:mod:`._lunarlander` and :mod:`._atari` supply the rollouts.
"""

import hashlib
import json
import math
import warnings
import zipfile
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state

from .._atomic import atomic_path, sweep_stale_temps

PARTS = ("autoencoder", "predictor", "test")
TEST_FRACTION = 0.2
MMAP_MODES = (None, "r", "c")


def entropy(random_state):
    """The int that seeds a whole collection, from a ``random_state``."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}.")
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def check_params(n_rollouts, n_steps):
    for name, value, low in (("n_rollouts", n_rollouts, 3), ("n_steps", n_steps, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {value!r}.")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}.")


def check_cache_args(random_state, mmap_mode, loader):
    """A cached collection needs an int seed; its images map from disk in the modes of MMAP_MODES."""
    if mmap_mode not in MMAP_MODES:
        raise ValueError(
            f"mmap_mode={mmap_mode!r} is not supported: pass None (images in memory), 'r' (read-only "
            "memory maps) or 'c' (copy-on-write memory maps)."
        )
    if not isinstance(random_state, (int, np.integer)) or isinstance(random_state, bool):
        raise TypeError(
            f"{loader} needs an int random_state so that the cached collection is reproducible, got "
            f"{random_state!r}; use {loader.replace('load_', 'make_')} for other seeds."
        )


def plan(n_rollouts, seed):
    """Each rollout's two seeds (env, policy) and the part it belongs to."""
    children = np.random.SeedSequence(seed).spawn(n_rollouts + 1)
    seeds = np.array([c.generate_state(2) for c in children[:n_rollouts]])
    split_rng = np.random.default_rng(children[n_rollouts])
    n_auto = n_rollouts // 2
    altered = np.arange(n_auto, n_rollouts)
    n_test = max(1, int(round(TEST_FRACTION * len(altered))))
    test_ids = set(split_rng.permutation(altered)[:n_test].tolist())
    part_of = ["autoencoder"] * n_auto + ["test" if r in test_ids else "predictor" for r in altered.tolist()]
    return seeds, part_of


def generate(rollout_batch, n_rollouts, n_steps, fields, visible, *, random_state, n_jobs, verbose, desc):
    """Run a collection's rollouts in ``n_jobs`` processes and assemble its three parts.

    ``rollout_batch(seeds)`` runs the rollouts of a batch of seed pairs in
    one env and returns them as :func:`assemble` reads them; ``fields`` and
    ``visible`` are :func:`assemble`'s. The autoencoder part has no labels.

    Returns
    -------
    parts : dict of str to Bunch
    seed : int
        The collection's entropy (:func:`entropy`).
    part_of : list of str
        The part of each rollout.
    n_dropped : int
        Frames of the predictor and test rollouts dropped as not visible.
    """
    from joblib import Parallel, delayed, effective_n_jobs

    seed = entropy(random_state)
    seeds, part_of = plan(n_rollouts, seed)
    # A few batches per worker balance the load; each batch pays for one env.
    batch = max(1, min(16, math.ceil(n_rollouts / (4 * effective_n_jobs(n_jobs)))))
    results = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(rollout_batch)(seeds[start:start + batch]) for start in range(0, n_rollouts, batch))
    parts, n_dropped = assemble(results, part_of, n_steps, fields, visible, progress(n_rollouts, verbose, desc))
    parts["autoencoder"].y = None
    return parts, seed, part_of, n_dropped


def assemble(results, part_of, n_steps, fields, visible, bar=None):
    """Fill the three parts from rollouts as they arrive; return ``(parts, n_dropped)``.

    ``results`` yields lists of rollouts in order, each a dict of per-frame
    arrays named as in ``fields`` (``{name: (shape, dtype)}``, ``"X"``
    included). Frames of the predictor and test rollouts where
    ``visible(rollout)`` is False are dropped.
    """
    n_part = {p: part_of.count(p) for p in PARTS}
    # Each part is allocated at its largest size and filled in rollout
    # order, so that peak memory stays near the collection's size.
    bufs = {p: {**{name: np.empty((n_part[p] * n_steps, *shape), dtype=dtype) for name, (shape, dtype) in
                   fields.items()}, "rollout": np.empty(n_part[p] * n_steps, dtype=np.int64)} for p in PARTS}
    fill = dict.fromkeys(PARTS, 0)
    n_dropped, rollout = 0, 0
    try:
        for out in results:
            for arrays in out:
                part = part_of[rollout]
                if part != "autoencoder":
                    keep = visible(arrays)
                    n_dropped += int(np.count_nonzero(~keep))
                    arrays = {name: a[keep] for name, a in arrays.items()}
                i = fill[part]
                j = i + len(arrays["X"])
                for name, a in arrays.items():
                    bufs[part][name][i:j] = a
                bufs[part]["rollout"][i:j] = rollout
                fill[part] = j
                rollout += 1
            if bar is not None:
                bar.update(len(out))
    finally:
        if bar is not None:
            bar.close()
    parts = {}
    for p in PARTS:
        for a in bufs[p].values():
            # In place (realloc): slicing would keep the whole buffer alive,
            # and copying would double it.
            a.resize((fill[p],) + a.shape[1:], refcheck=False)
        parts[p] = Bunch(**bufs[p])
    return parts, n_dropped


def progress(total, verbose, desc):
    if not verbose:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _PrintProgress(total, desc)
    return tqdm(total=total, unit="rollout", desc=desc)


class _PrintProgress:
    """Fallback progress report when tqdm is not installed."""

    def __init__(self, total, desc):
        self.total, self.desc, self.done, self._last = total, desc, 0, -1

    def update(self, n):
        self.done += n
        decile = 10 * self.done // self.total
        if decile != self._last:
            self._last = decile
            print(f"{self.desc}: {self.done}/{self.total} rollouts", flush=True)

    def close(self):
        pass


def cache_path(data_home, folder, params):
    """``data_home/folder/folder_<hash of params>.npz``."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    return Path(data_home) / folder / f"{folder}_{key[:16]}.npz"


def save(path, data):
    arrays = {"metadata": np.array(json.dumps(data.metadata))}
    for p in PARTS:
        for key, value in data[p].items():
            if value is not None:
                arrays[f"{p}_{key}"] = value
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)


def _images_path(path, part):
    """The uncompressed copy of one part's images beside the cache, for memory maps."""
    return path.with_name(f"{path.stem}.{part}_X.npy")


def mapped_images(path, part, n, images, mmap_mode):
    """One part's images as a memory map of their uncompressed copy, written first if needed.

    ``images`` is called for the images only when the copy is missing, older
    than the cache file (which was then made anew), or does not hold ``n``
    uint8 images.
    """
    copy = _images_path(path, part)
    try:
        if copy.stat().st_mtime >= path.stat().st_mtime:
            mapped = np.load(copy, mmap_mode=mmap_mode)
            if mapped.dtype == np.uint8 and len(mapped) == n:
                return mapped
    except (OSError, ValueError):
        pass  # missing, or damaged outside our atomic writes: rewritten
    with atomic_path(copy) as tmp:
        np.save(tmp, images())
    return np.load(copy, mmap_mode=mmap_mode)


def load(path, params, keys, mmap_mode=None):
    """The parts and metadata of a cache file; ``keys`` are each part's arrays besides ``X`` and ``rollout``."""
    with np.load(path, allow_pickle=False) as npz:
        metadata = json.loads(str(npz["metadata"]))
        if metadata["params"] != params:
            raise ValueError(f"{path} holds parameters {metadata['params']}.")
        parts = {}
        for p in PARTS:
            # With mmap_mode, the images are mapped by the caller, outside
            # the checks of the cache file's readability.
            X = npz[f"{p}_X"] if mmap_mode is None else None
            parts[p] = Bunch(X=X, rollout=npz[f"{p}_rollout"],
                             **{k: npz[f"{p}_{k}"] if f"{p}_{k}" in npz else None for k in keys})
    return parts, metadata


def _map_all(path, parts, mmap_mode):
    """Each part's images as memory maps, their copies written from the cache file where needed."""
    with np.load(path, allow_pickle=False) as npz:
        for p in PARTS:
            parts[p].X = mapped_images(path, p, len(parts[p].rollout), lambda p=p: npz[f"{p}_X"], mmap_mode)


def load_or_make(path, params, keys, make, bunch, *, name, download_if_missing, mmap_mode):
    """Read the cache at ``path``, or ``make()`` the collection and cache it; return the dataset Bunch.

    ``bunch(parts, metadata)`` builds the dataset from a cache file's parts.
    """
    # A process killed while writing the cache leaves its temporary file.
    sweep_stale_temps(path.parent, recursive=False)
    if path.exists():
        try:
            parts, metadata = load(path, params, keys, mmap_mode)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            # Only a file from another skperceptual version or a damaged
            # disk gets here: our writes are atomic.
            if not download_if_missing:
                raise ValueError(
                    f"The {name} cache {path} is unreadable ({exc}). Delete it, or "
                    "pass download_if_missing=True to regenerate it in its place."
                ) from exc
            warnings.warn(f"Regenerating unreadable cache {path}: {exc}")
        else:
            if mmap_mode is not None:
                _map_all(path, parts, mmap_mode)
            data = bunch(parts, metadata)
            data.filename = str(path)
            return data
    elif not download_if_missing:
        raise FileNotFoundError(f"{name} collection not cached at {path} and download_if_missing=False.")
    data = make()
    save(path, data)
    if mmap_mode is not None:
        for p in PARTS:
            images = data[p].X
            data[p].X = mapped_images(path, p, len(images), lambda images=images: images, mmap_mode)
    data.filename = str(path)
    return data
