"""LunarLander rollouts: generation, pixel-position labels and the cache."""

import hashlib
import json
import math
import warnings
import zipfile
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state

from .._atomic import atomic_path, sweep_stale_temps
from ._common import get_data_home

__all__ = ["make_lunarlander", "load_lunarlander"]

ENV_ID = "LunarLander-v3"
IMAGE_SIZE = 64
# Bumped whenever generation changes the bytes it produces for the same
# parameters, so that stale caches are not mistaken for current ones.
_FORMAT_VERSION = 1
_PARTS = ("autoencoder", "predictor", "test")
_TEST_FRACTION = 0.2
# Any render mode other than None, "human" and "rgb_array" makes
# LunarLander.render() draw into ``env.surf`` and return nothing. That skips
# its ``np.array(pixels3d(...))`` copy of a strided view, which costs more
# than the drawing itself; we read the surface's buffer directly instead.
_DRAW_ONLY = "skperceptual-draw-only"

DESCR = """\
LunarLander positioning dataset
-------------------------------
Frames of gymnasium's LunarLander-v3 under a uniformly random policy,
rendered at 600x400 and resized to 64x64 (bicubic), as in Pihlgren et al.,
"Improving Image Autoencoder Embeddings with Perceptual Loss" (IJCNN 2020).
v3 differs from the paper's v2 only by fixes to wind and seeding.

The target is the lander's (x, y) position in pixel coordinates of the 64x64
frame: x is the column and y the row, and (0, 0) is the centre of the top-left
pixel. The first half of the rollouts is unaltered and forms the autoencoder
set. From the second half, frames whose lander centre is off screen are
dropped, and the remaining rollouts are split 80/20 into predictor and test
sets, whole rollouts at a time.
"""


def _lander_module():
    from gymnasium.envs.box2d import lunar_lander

    return lunar_lander


def _observation_to_pixels(observation, image_size=IMAGE_SIZE):
    """Lander position in 64x64 pixel coordinates from raw observations.

    Inverts the normalisation in ``LunarLander.step`` (observation[0:2]) with
    the env's own viewport constants, then maps world units to the flipped,
    resized frame.
    """
    ll = _lander_module()
    w, h = ll.VIEWPORT_W, ll.VIEWPORT_H
    obs = np.asarray(observation, dtype=np.float64)
    # World x in viewport pixels: pos.x * SCALE == (obs0 + 1) * W / 2.
    x_view = (obs[:, 0] + 1.0) * (w / 2)
    # World y in viewport pixels, helipad_y == H / 4 in world units; the
    # renderer flips the image so that y grows downwards.
    y_world = obs[:, 1] * (h / 2) + h / 4 + ll.LEG_DOWN
    y_view = h - y_world
    # Pixel index i covers [i, i + 1) in continuous coordinates, so its centre
    # is at i + 0.5; labels use pixel-centre coordinates.
    x = x_view * (image_size / w) - 0.5
    y = y_view * (image_size / h) - 0.5
    return np.stack([x, y], axis=1).astype(np.float32)


def _on_screen(labels, image_size=IMAGE_SIZE):
    """Whether the lander's centre lies inside the frame."""
    lo, hi = -0.5, image_size - 0.5
    return np.all((labels >= lo) & (labels < hi), axis=1)


def _make_env():
    import gymnasium as gym

    env = gym.make(ENV_ID, render_mode="rgb_array").unwrapped
    env.render_mode = _DRAW_ONLY
    return env


def _surface_reader(surface):
    """Return a function turning the env's pygame surface into a PIL image."""
    from PIL import Image

    size = surface.get_size()
    shifts = surface.get_shifts()[:3]
    if surface.get_bytesize() == 4 and np.little_endian:
        # Bytes of a 32-bit pixel in memory order are low shift first.
        order = {0: None, 8: None, 16: None, 24: None}
        for channel, shift in zip("RGB", shifts):
            order[shift] = channel
        rawmode = "".join(order[s] or "X" for s in (0, 8, 16, 24))
        if sorted(rawmode.replace("X", "")) == ["B", "G", "R"]:
            pitch = surface.get_pitch()
            return lambda surf: Image.frombuffer(
                "RGB", size, surf.get_buffer(), "raw", rawmode, pitch, 1
            )

    import pygame

    return lambda surf: Image.frombytes("RGB", size, pygame.image.tobytes(surf, "RGB"))


def _rollout(env, seeds, n_steps, image_size, read=None):
    """Run one random-policy rollout of ``n_steps`` frames.

    An episode that terminates early (crash, landing, leaving the screen
    sideways) is reset and the rollout continues, so that every rollout has
    exactly ``n_steps`` frames; the reset draws from the env's own generator,
    seeded at the start of the rollout, so the result depends on ``seeds``
    alone and not on what ``env`` ran before.
    """
    from PIL import Image

    env_seed, action_seed = (int(s) for s in seeds)
    actions = np.random.default_rng(action_seed).integers(
        0, env.action_space.n, size=n_steps
    )
    frames = np.empty((n_steps, 3, image_size, image_size), dtype=np.uint8)
    observations = np.empty((n_steps, 8), dtype=np.float32)
    env.reset(seed=env_seed)
    step, render = env.step, env.render
    for t, action in enumerate(actions.tolist()):
        obs, _, terminated, truncated, _ = step(action)
        observations[t] = obs
        render()
        if read is None:
            read = _surface_reader(env.surf)
        small = read(env.surf).resize((image_size, image_size), Image.BICUBIC)
        frames[t] = np.asarray(small).transpose(2, 0, 1)
        if terminated or truncated:
            env.reset()
    return frames, observations


def _rollout_batch(seeds, n_steps, image_size):
    """Worker entry point: several rollouts sharing one env."""
    env = _make_env()
    try:
        return [_rollout(env, s, n_steps, image_size) for s in seeds]
    finally:
        env.close()


def _entropy(random_state):
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, (int, np.integer)) and not isinstance(
        random_state, bool
    ):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}.")
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _check_params(n_rollouts, n_steps):
    for name, value, low in (("n_rollouts", n_rollouts, 3), ("n_steps", n_steps, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {value!r}.")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}.")


def _progress(total, verbose):
    if not verbose:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _PrintProgress(total)
    return tqdm(total=total, unit="rollout", desc="LunarLander")


class _PrintProgress:
    """Fallback progress report when tqdm is not installed."""

    def __init__(self, total):
        self.total, self.done, self._last = total, 0, -1

    def update(self, n):
        self.done += n
        decile = 10 * self.done // self.total
        if decile != self._last:
            self._last = decile
            print(f"LunarLander: {self.done}/{self.total} rollouts", flush=True)

    def close(self):
        pass


def _versions():
    import gymnasium
    import PIL

    from .. import __version__

    return {
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "skperceptual": __version__,
    }


def make_lunarlander(
    n_rollouts=1400, n_steps=150, *, random_state=None, n_jobs=None, verbose=0
):
    """Generate the LunarLander positioning dataset.

    Runs gymnasium's ``LunarLander-v3`` under a uniformly random policy and
    renders every step (600x400, resized to 64x64 with PIL's bicubic filter,
    as in the paper). ``LunarLander-v3`` is the paper's ``LunarLander-v2``
    with only its wind and seeding bugs fixed. The target is the lander's
    position in pixels of the 64x64 frame. Use :func:`load_lunarlander` to
    cache the result on disk.

    The first ``n_rollouts // 2`` rollouts are the unaltered autoencoder set.
    In the remaining ("altered") rollouts, frames whose lander centre is off
    screen are dropped, and then 20% of those rollouts (at least one) form
    the test set and the rest the predictor set, so that no rollout feeds
    both. A rollout always runs ``n_steps`` steps: when an episode ends early
    the env is reset and the same rollout continues with a new episode.

    Parameters
    ----------
    n_rollouts : int, default=1400
        Number of rollouts, at least 3.
    n_steps : int, default=150
        Frames per rollout.
    random_state : int, RandomState instance or None, default=None
        Seeds the env and the policy. Every rollout gets its own seed,
        spawned from this one with :class:`numpy.random.SeedSequence`, so the
        output is the same bytes whatever ``n_jobs`` is.
    n_jobs : int, default=None
        Number of processes (joblib semantics: None means 1, -1 all cores).
    verbose : int, default=0
        Show a progress bar (tqdm if installed, else printed lines).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With keys:

        autoencoder, predictor, test : Bunch
            Each with ``X`` (uint8, shape (n, 3, 64, 64)), ``y`` (float32,
            shape (n, 2): the lander's x (column) and y (row) in pixel-centre
            coordinates of the frame; None for the autoencoder set),
            ``rollout`` (int64, shape (n,): rollout id of each frame) and
            ``observation`` (float32, shape (n, 8): the raw gym observation).
        task : str
            ``"positioning"``.
        image_shape : tuple
            ``(3, 64, 64)``.
        target_names : list of str
            ``["x", "y"]``.
        metadata : dict
            Generation parameters, package versions and the number of
            altered frames dropped as off screen.
        DESCR : str
            Description of the dataset.

    Raises
    ------
    ValueError
        When the predictor or test set comes out empty because every frame
        of its rollouts was off screen (very small ``n_steps``).

    Notes
    -----
    With ``LunarLander-v3`` and a random policy about 20-25% of the altered
    frames are dropped as off screen (the lander starts at the top edge of
    the viewport, and every reset starts it there again), more than the
    roughly 10% the paper reports.

    Generation renders every step; it takes about 3-4 ms a frame on one
    core, half of it in the bicubic resize, so the default 210,000 frames
    take roughly 6-12 minutes with ``n_jobs=2``.

    Examples
    --------
    >>> from skperceptual.datasets import make_lunarlander
    >>> data = make_lunarlander(n_rollouts=4, n_steps=25, random_state=0)
    >>> data.autoencoder.X.shape
    (50, 3, 64, 64)
    >>> data.predictor.y.dtype
    dtype('float32')
    """
    _check_params(n_rollouts, n_steps)
    from joblib import Parallel, delayed, effective_n_jobs

    entropy = _entropy(random_state)
    children = np.random.SeedSequence(entropy).spawn(n_rollouts + 1)
    seeds = np.array([c.generate_state(2) for c in children[:n_rollouts]])
    split_rng = np.random.default_rng(children[n_rollouts])

    n_auto = n_rollouts // 2
    altered = np.arange(n_auto, n_rollouts)
    n_test = max(1, int(round(_TEST_FRACTION * len(altered))))
    test_ids = set(split_rng.permutation(altered)[:n_test].tolist())
    part_of = ["autoencoder"] * n_auto + [
        "test" if r in test_ids else "predictor" for r in altered.tolist()
    ]
    n_part = {p: part_of.count(p) for p in _PARTS}

    # Preallocate each part at its largest possible size and fill it in
    # rollout order as results arrive, so that peak memory stays near the
    # size of the dataset instead of twice that.
    size = IMAGE_SIZE
    bufs = {}
    for p in _PARTS:
        cap = n_part[p] * n_steps
        bufs[p] = {
            "X": np.empty((cap, 3, size, size), dtype=np.uint8),
            "y": np.empty((cap, 2), dtype=np.float32),
            "rollout": np.empty(cap, dtype=np.int64),
            "observation": np.empty((cap, 8), dtype=np.float32),
        }
    fill = dict.fromkeys(_PARTS, 0)

    workers = effective_n_jobs(n_jobs)
    # A few batches per worker balance the load; each batch pays for one env.
    batch = max(1, min(16, math.ceil(n_rollouts / (4 * workers))))
    starts = range(0, n_rollouts, batch)
    results = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_rollout_batch)(seeds[s:s + batch], n_steps, size) for s in starts
    )
    bar = _progress(n_rollouts, verbose)
    n_dropped = 0
    try:
        rollout = 0
        for out in results:
            for frames, obs in out:
                part = part_of[rollout]
                labels = _observation_to_pixels(obs, size)
                if part != "autoencoder":
                    keep = _on_screen(labels, size)
                    n_dropped += int(np.count_nonzero(~keep))
                    frames, obs, labels = frames[keep], obs[keep], labels[keep]
                buf, i = bufs[part], fill[part]
                j = i + len(frames)
                buf["X"][i:j] = frames
                buf["y"][i:j] = labels
                buf["rollout"][i:j] = rollout
                buf["observation"][i:j] = obs
                fill[part] = j
                rollout += 1
            if bar is not None:
                bar.update(len(out))
    finally:
        if bar is not None:
            bar.close()

    parts = {}
    for p in _PARTS:
        buf, n = bufs[p], fill[p]
        for arr in buf.values():
            # Shrinks in place (realloc), unlike slicing, which would keep
            # the whole buffer alive, or copying, which would double it.
            arr.resize((n,) + arr.shape[1:], refcheck=False)
        parts[p] = Bunch(**buf)
    parts["autoencoder"].y = None
    _check_not_empty(parts, n_rollouts, n_steps, part_of)

    n_altered = (n_rollouts - n_auto) * n_steps
    metadata = {
        "params": _params(n_rollouts, n_steps, entropy),
        "versions": _versions(),
        "n_altered_frames": n_altered,
        "n_off_screen": n_dropped,
        "off_screen_fraction": n_dropped / n_altered,
    }
    return _bunch(parts, metadata)


def _check_not_empty(parts, n_rollouts, n_steps, part_of):
    """Raise when dropping off-screen frames left the predictor or test set empty."""
    empty = [p for p in _PARTS if len(parts[p].X) == 0]
    if not empty:
        return
    counts = ", ".join(f"{part_of.count(p)} {p} rollout(s)" for p in empty)
    raise ValueError(
        f"make_lunarlander(n_rollouts={n_rollouts}, n_steps={n_steps}) left the "
        f"{' and '.join(empty)} set(s) empty: every frame of their {counts} showed the "
        "lander off screen, and such frames are dropped. The lander starts at the top "
        "edge, often with its centre above the frame for dozens of steps: pass a "
        "larger n_steps (the default is 150) or more n_rollouts."
    )


def _params(n_rollouts, n_steps, entropy):
    return {
        "env_id": ENV_ID,
        "n_rollouts": int(n_rollouts),
        "n_steps": int(n_steps),
        "random_state": int(entropy),
        "image_size": IMAGE_SIZE,
        "test_fraction": _TEST_FRACTION,
        "format_version": _FORMAT_VERSION,
    }


def _bunch(parts, metadata):
    return Bunch(
        **parts,
        task="positioning",
        image_shape=(3, IMAGE_SIZE, IMAGE_SIZE),
        target_names=["x", "y"],
        metadata=metadata,
        DESCR=DESCR,
    )


def _cache_path(data_home, params):
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    return Path(data_home) / "lunarlander" / f"lunarlander_{key[:16]}.npz"


def _save(path, data):
    arrays = {"metadata": np.array(json.dumps(data.metadata))}
    for p in _PARTS:
        for key, value in data[p].items():
            if value is not None:
                arrays[f"{p}_{key}"] = value
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)


def _images_path(path, part):
    """The uncompressed copy of one part's images beside the cache, for memory maps."""
    return path.with_name(f"{path.stem}.{part}_X.npy")


def _mapped_images(path, part, n, images, mmap_mode):
    """One part's images as a memory map of their uncompressed copy, written first if needed.

    ``images`` is called for the images only when the copy is missing or
    does not hold ``n`` uint8 images.
    """
    copy = _images_path(path, part)
    try:
        mapped = np.load(copy, mmap_mode=mmap_mode)
        if mapped.dtype == np.uint8 and len(mapped) == n:
            return mapped
    except (OSError, ValueError):
        pass  # missing, or damaged outside our atomic writes: rewritten
    with atomic_path(copy) as tmp:
        np.save(tmp, images())
    return np.load(copy, mmap_mode=mmap_mode)


def _load(path, params, mmap_mode=None):
    with np.load(path, allow_pickle=False) as npz:
        metadata = json.loads(str(npz["metadata"]))
        if metadata["params"] != params:
            raise ValueError(f"{path} holds parameters {metadata['params']}.")
        parts = {}
        for p in _PARTS:
            n = len(npz[f"{p}_rollout"])
            parts[p] = Bunch(
                X=npz[f"{p}_X"] if mmap_mode is None else _mapped_images(
                    path, p, n, lambda p=p: npz[f"{p}_X"], mmap_mode),
                y=npz[f"{p}_y"] if p != "autoencoder" else None,
                rollout=npz[f"{p}_rollout"],
                observation=npz[f"{p}_observation"],
            )
    return _bunch(parts, metadata)


def load_lunarlander(
    *,
    data_home=None,
    n_rollouts=1400,
    n_steps=150,
    random_state=0,
    download_if_missing=True,
    n_jobs=None,
    verbose=0,
    mmap_mode=None,
):
    """Load the LunarLander positioning dataset, generating it once.

    The first call generates the collection with :func:`make_lunarlander`
    and caches it as one compressed ``.npz`` file under
    ``data_home/lunarlander/``, named by a hash of the generation parameters
    (so other parameters get their own file). The file is written atomically:
    an interrupted generation or write leaves no file behind. Later calls
    read the cache.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder; see :func:`get_data_home`.
    n_rollouts : int, default=1400
        Number of rollouts, at least 3.
    n_steps : int, default=150
        Frames per rollout.
    random_state : int, default=0
        Seed of the generation. Must be an int: a cache is only useful for a
        reproducible collection.
    download_if_missing : bool, default=True
        Generate the collection when it is not cached; if False, raise
        :class:`FileNotFoundError` instead. (The name follows
        scikit-learn's ``fetch_*`` functions.)
    n_jobs : int, default=None
        Processes used for generation; does not change the result.
    verbose : int, default=0
        Show a progress bar while generating.
    mmap_mode : {None, "r", "c"}, default=None
        None loads the images into memory. ``"r"`` (read-only) or ``"c"``
        (copy-on-write) returns each part's images ``X`` as a
        :class:`numpy.memmap` of an uncompressed ``.npy`` copy, written
        beside the cache on first use (12 KiB per image): they stay on disk,
        and :class:`~skperceptual.PerceptualAETransformer` reads them batch
        by batch. Labels and rollout ids are loaded into memory.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        As returned by :func:`make_lunarlander`, plus ``filename``, the path
        of the cache file.

    Raises
    ------
    FileNotFoundError
        When the collection is not cached and ``download_if_missing`` is False.
    ValueError
        When the cache file is unreadable and ``download_if_missing`` is
        False (with True it is regenerated, with a warning).

    Examples
    --------
    >>> import tempfile
    >>> from skperceptual.datasets import load_lunarlander
    >>> home = tempfile.mkdtemp()
    >>> data = load_lunarlander(data_home=home, n_rollouts=4, n_steps=25)
    >>> again = load_lunarlander(data_home=home, n_rollouts=4, n_steps=25)
    >>> bool((data.test.X == again.test.X).all())
    True
    """
    _check_params(n_rollouts, n_steps)
    if mmap_mode not in (None, "r", "c"):
        raise ValueError(
            f"mmap_mode={mmap_mode!r} is not supported: pass None (images in memory), 'r' (read-only "
            "memory maps) or 'c' (copy-on-write memory maps)."
        )
    if not isinstance(random_state, (int, np.integer)) or isinstance(
        random_state, bool
    ):
        raise TypeError(
            "load_lunarlander needs an int random_state so that the cached "
            f"collection is reproducible, got {random_state!r}; use "
            "make_lunarlander for other seeds."
        )
    params = _params(n_rollouts, n_steps, _entropy(random_state))
    path = _cache_path(get_data_home(data_home), params)
    # A process killed while writing the cache leaves its temporary file.
    sweep_stale_temps(path.parent, recursive=False)
    if path.exists():
        try:
            data = _load(path, params, mmap_mode)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            # Only a file from another skperceptual version or a damaged
            # disk gets here: our writes are atomic.
            if not download_if_missing:
                raise ValueError(
                    f"The LunarLander cache {path} is unreadable ({exc}). Delete it, or "
                    "pass download_if_missing=True to regenerate it in its place."
                ) from exc
            warnings.warn(f"Regenerating unreadable cache {path}: {exc}")
        else:
            data.filename = str(path)
            return data
    elif not download_if_missing:
        raise FileNotFoundError(
            f"LunarLander collection not cached at {path} and "
            "download_if_missing=False."
        )
    data = make_lunarlander(
        n_rollouts, n_steps, random_state=random_state, n_jobs=n_jobs, verbose=verbose
    )
    _save(path, data)
    if mmap_mode is not None:
        for p in _PARTS:
            images = data[p].X
            data[p].X = _mapped_images(path, p, len(images), lambda images=images: images, mmap_mode)
    data.filename = str(path)
    return data
