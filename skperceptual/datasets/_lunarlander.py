"""LunarLander rollouts: generation, pixel-position labels and the cache."""

from functools import partial

import numpy as np
from sklearn.utils import Bunch

from . import _collection
from ._collection import PARTS as _PARTS
from ._common import get_data_home

__all__ = ["make_lunarlander", "load_lunarlander"]

ENV_ID = "LunarLander-v3"
IMAGE_SIZE = 64
# Bumped whenever generation changes the bytes it produces for the same
# parameters, so that stale caches are not mistaken for current ones.
_FORMAT_VERSION = 1
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
    """Worker entry point: several rollouts sharing one env, each as its frames, labels and observations."""
    env = _make_env()
    try:
        out = []
        for s in seeds:
            frames, observations = _rollout(env, s, n_steps, image_size)
            out.append({"X": frames, "y": _observation_to_pixels(observations, image_size),
                        "observation": observations})
        return out
    finally:
        env.close()


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
        name : str
            ``"lunarlander"``, the dataset's name in the protocol.
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
    _collection.check_params(n_rollouts, n_steps)
    size = IMAGE_SIZE
    fields = {"X": ((3, size, size), np.uint8), "y": ((2,), np.float32), "observation": ((8,), np.float32)}
    parts, entropy, part_of, n_dropped = _collection.generate(
        partial(_rollout_batch, n_steps=n_steps, image_size=size), n_rollouts, n_steps, fields,
        lambda rollout: _on_screen(rollout["y"], size),
        random_state=random_state, n_jobs=n_jobs, verbose=verbose, desc="LunarLander")
    _check_not_empty(parts, n_rollouts, n_steps, part_of)

    n_altered = (n_rollouts - part_of.count("autoencoder")) * n_steps
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
        "test_fraction": _collection.TEST_FRACTION,
        "format_version": _FORMAT_VERSION,
    }


def _bunch(parts, metadata):
    return Bunch(
        **parts,
        name="lunarlander",
        task="positioning",
        image_shape=(3, IMAGE_SIZE, IMAGE_SIZE),
        target_names=["x", "y"],
        metadata=metadata,
        DESCR=DESCR,
    )


def _cache_path(data_home, params):
    return _collection.cache_path(data_home, "lunarlander", params)


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
    _collection.check_params(n_rollouts, n_steps)
    _collection.check_cache_args(random_state, mmap_mode, "load_lunarlander")
    params = _params(n_rollouts, n_steps, _collection.entropy(random_state))
    return _collection.load_or_make(
        _cache_path(get_data_home(data_home), params), params, ("y", "observation"),
        lambda: make_lunarlander(n_rollouts, n_steps, random_state=random_state, n_jobs=n_jobs, verbose=verbose),
        _bunch, name="LunarLander", download_if_missing=download_if_missing, mmap_mode=mmap_mode)
