"""Atari rollouts (ALE through gymnasium): small moving objects located from the console's RAM.

The RAM addresses of the objects are those the AtariARI benchmark published
(Anand et al., "Unsupervised State Representation Learning in Atari",
NeurIPS 2019). The offsets that map them to pixels of the native 210x160
frame were measured on rendered frames, where the object is found by its
colour; ``tests/test_atari.py`` checks every shipped game against its
frames again.
"""

from dataclasses import asdict, dataclass
from functools import partial

import numpy as np
from sklearn.utils import Bunch

from . import _collection
from ._common import get_data_home

__all__ = ["ATARI_GAMES", "load_atari", "make_atari"]

IMAGE_SIZE = 64
NATIVE_SHAPE = (210, 160)
# Bumped whenever generation changes the bytes it produces for the same parameters.
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class AtariGame:
    """One game: its environment, the object located and where the RAM keeps it.

    Attributes
    ----------
    env_id : str
        The gymnasium id (v5: frame skip 4, sticky actions with probability
        0.25).
    target : str
        The object whose position is the label.
    ram : tuple of int
        RAM addresses of the object's x and y (AtariARI).
    offset : tuple of float
        Added to the RAM values to give the object's centre in pixel-centre
        coordinates of the native frame (column, row).
    colour : tuple of int
        The object's RGB colour in the native frame.
    rows : tuple of int
        Rows of the native frame where that colour is the object's alone;
        the label checks find the object there.
    absent_when_y : int or None
        The RAM y value that means the object is not on screen.
    """

    env_id: str
    target: str
    ram: tuple
    offset: tuple
    colour: tuple
    rows: tuple
    absent_when_y: object = 0


#: The shipped games. Their targets are about a pixel (the balls) to a few
#: pixels (Ms. Pac-Man) across in the 64x64 frame.
ATARI_GAMES = {
    "pong": AtariGame("ALE/Pong-v5", "ball", (49, 54), (-48.5, -12.5), (236, 236, 236), (34, 194)),
    # The ball shares its colour with the top row of bricks and the paddle:
    # between the bricks and the paddle it is alone.
    "breakout": AtariGame("ALE/Breakout-v5", "ball", (99, 101), (-48.5, 10.5), (200, 72, 72), (93, 189)),
    # The player; the lives below the maze are drawn in the same colour.
    "mspacman": AtariGame("ALE/MsPacman-v5", "Ms. Pac-Man", (10, 16), (-8.0, 5.5), (210, 164, 74), (0, 172),
                          absent_when_y=None),
}

DESCR = """\
Atari positioning datasets
--------------------------
Frames of an Atari 2600 game (the Arcade Learning Environment through
gymnasium, v5 settings: frame skip 4, sticky actions) under a uniformly
random policy, resized from 210x160 to 64x64 (bicubic), in the design of
Pihlgren et al.'s LunarLander dataset (IJCNN 2020).

The target is a small object's (x, y) position in pixel coordinates of the
64x64 frame, read from the console's RAM at the addresses of the AtariARI
benchmark (Anand et al., NeurIPS 2019). The first half of the rollouts is
unaltered and forms the autoencoder set. From the second half, frames
without the object on screen are dropped, and the remaining rollouts are
split 80/20 into predictor and test sets, whole rollouts at a time.
"""


def check_game(game):
    if game not in ATARI_GAMES:
        raise ValueError(f"Unknown Atari game {game!r}; valid: {sorted(ATARI_GAMES)}.")
    return ATARI_GAMES[game]


def _import_ale():
    try:
        import ale_py
        import gymnasium
    except ImportError:
        raise ImportError("The Atari datasets need ale-py and gymnasium: pip install 'skperceptual[atari]'. "
                          "The game ROMs come with ale-py's wheel.") from None
    gymnasium.register_envs(ale_py)
    return gymnasium


def ram_to_pixels(ram, game, image_size=IMAGE_SIZE):
    """The object's (x, y) in pixel-centre coordinates of the ``image_size`` frame, from RAM rows.

    Pixel ``i`` of a frame covers ``[i - 0.5, i + 0.5)``; the native frame's
    coordinates are scaled by the resize to ``image_size``.
    """
    spec = ATARI_GAMES[game]
    native = ram[:, list(spec.ram)].astype(np.float64) + np.asarray(spec.offset)
    scale = image_size / np.array([NATIVE_SHAPE[1], NATIVE_SHAPE[0]], dtype=np.float64)
    return ((native + 0.5) * scale - 0.5).astype(np.float32)


def _visible(rollout, game, image_size=IMAGE_SIZE):
    """Frames whose object is on screen: its RAM does not mark it absent and its centre is in the frame."""
    spec = ATARI_GAMES[game]
    y = rollout["y"]
    inside = np.all((y >= -0.5) & (y < image_size - 0.5), axis=1)
    if spec.absent_when_y is None:
        return inside
    return inside & (rollout["ram"][:, spec.ram[1]] != spec.absent_when_y)


def _rollout(env, seeds, n_steps, image_size):
    """One random-policy rollout of ``n_steps`` frames; a finished episode is reset and the rollout goes on."""
    from PIL import Image

    env_seed, action_seed = (int(s) for s in seeds)
    actions = np.random.default_rng(action_seed).integers(0, env.action_space.n, size=n_steps)
    frames = np.empty((n_steps, 3, image_size, image_size), dtype=np.uint8)
    rams = np.empty((n_steps, 128), dtype=np.uint8)
    env.reset(seed=env_seed)
    ale = env.unwrapped.ale
    for t, action in enumerate(actions.tolist()):
        observation, _, terminated, truncated, _ = env.step(action)
        frames[t] = np.asarray(Image.fromarray(observation).resize((image_size, image_size), Image.BICUBIC)
                               ).transpose(2, 0, 1)
        rams[t] = ale.getRAM()
        if terminated or truncated:
            env.reset()
    return frames, rams


def _rollout_batch(game, seeds, n_steps, image_size):
    """Worker entry point: several rollouts sharing one env, each as its frames, labels and RAM."""
    env = _import_ale().make(ATARI_GAMES[game].env_id)
    try:
        out = []
        for s in seeds:
            frames, rams = _rollout(env, s, n_steps, image_size)
            out.append({"X": frames, "y": ram_to_pixels(rams, game, image_size), "ram": rams})
        return out
    finally:
        env.close()


def _versions():
    import ale_py
    import gymnasium
    import PIL

    from .. import __version__

    return {"ale_py": ale_py.__version__, "gymnasium": gymnasium.__version__, "numpy": np.__version__,
            "pillow": PIL.__version__, "skperceptual": __version__}


def make_atari(game, n_rollouts=1400, n_steps=150, *, random_state=None, n_jobs=None, verbose=0):
    """Generate an Atari positioning dataset: a small object's position in 64x64 frames.

    Runs the game's gymnasium v5 environment under a uniformly random policy
    and resizes every frame from 210x160 to 64x64 with PIL's bicubic
    filter. The target is the position of the game's object
    (Pong's ball, Breakout's ball, Ms. Pac-Man herself), read
    from the console's RAM. Use :func:`load_atari` to cache the result.

    The first ``n_rollouts // 2`` rollouts are the unaltered autoencoder
    set. In the others, frames without the object on screen are dropped, and
    20% of those rollouts (at least one) form the test set and the rest the
    predictor set. A rollout always runs ``n_steps`` steps: a finished
    episode is reset and the rollout continues.

    Parameters
    ----------
    game : {"pong", "breakout", "mspacman"}
    n_rollouts : int, default=1400
        Number of rollouts, at least 3.
    n_steps : int, default=150
        Frames per rollout (each 4 emulator frames).
    random_state : int, RandomState instance or None, default=None
        Seeds the env and the policy, one seed per rollout, so that the
        output is the same bytes whatever ``n_jobs`` is.
    n_jobs : int, default=None
        Number of processes (joblib semantics: None means 1, -1 all cores).
    verbose : int, default=0
        Show a progress bar.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``autoencoder``, ``predictor`` and ``test`` parts, each with ``X``
        (uint8, shape (n, 3, 64, 64)), ``y`` (float32, shape (n, 2): the
        object's x (column) and y (row) in pixel-centre coordinates; None
        for the autoencoder set), ``rollout`` (int64) and ``ram`` (uint8,
        shape (n, 128)); ``name`` and ``game`` (the game, which is the
        dataset's name in the protocol), ``task`` (``"positioning"``),
        ``image_shape``, ``target_names``, ``metadata`` and ``DESCR``.

    Raises
    ------
    ValueError
        For an unknown game, or when the predictor or test set comes out
        empty because the object never showed in its rollouts.
    ImportError
        When ale-py or gymnasium is missing.

    Examples
    --------
    >>> from skperceptual.datasets import make_atari
    >>> data = make_atari("pong", n_rollouts=4, n_steps=40, random_state=0)  # doctest: +SKIP
    >>> data.autoencoder.X.shape  # doctest: +SKIP
    (80, 3, 64, 64)
    """
    check_game(game)
    _collection.check_params(n_rollouts, n_steps)
    _import_ale()
    size = IMAGE_SIZE
    fields = {"X": ((3, size, size), np.uint8), "y": ((2,), np.float32), "ram": ((128,), np.uint8)}
    parts, entropy, part_of, n_dropped = _collection.generate(
        partial(_rollout_batch, game, n_steps=n_steps, image_size=size), n_rollouts, n_steps, fields,
        lambda rollout: _visible(rollout, game, size),
        random_state=random_state, n_jobs=n_jobs, verbose=verbose, desc=game)
    empty = [p for p in _collection.PARTS if len(parts[p].X) == 0]
    if empty:
        raise ValueError(f"make_atari({game!r}, n_rollouts={n_rollouts}, n_steps={n_steps}) left the "
                         f"{' and '.join(empty)} set(s) empty: the {ATARI_GAMES[game].target} never showed in "
                         "their rollouts. Pass a larger n_steps or more n_rollouts.")
    n_altered = (n_rollouts - part_of.count("autoencoder")) * n_steps
    metadata = {"params": _params(game, n_rollouts, n_steps, entropy), "versions": _versions(),
                "n_altered_frames": n_altered, "n_absent": n_dropped, "absent_fraction": n_dropped / n_altered}
    return _bunch(parts, metadata)


def _params(game, n_rollouts, n_steps, entropy):
    # The whole game entry: each of its fields changes the labels or which frames are kept.
    spec = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(ATARI_GAMES[game]).items()}
    return {"game": game, **spec,
            "n_rollouts": int(n_rollouts), "n_steps": int(n_steps), "random_state": int(entropy),
            "image_size": IMAGE_SIZE, "test_fraction": _collection.TEST_FRACTION, "format_version": _FORMAT_VERSION}


def _bunch(parts, metadata):
    game = metadata["params"]["game"]
    return Bunch(**parts, name=game, task="positioning", image_shape=(3, IMAGE_SIZE, IMAGE_SIZE),
                 target_names=["x", "y"], game=game, metadata=metadata, DESCR=DESCR)


def load_atari(game, *, data_home=None, n_rollouts=1400, n_steps=150, random_state=0, download_if_missing=True,
               n_jobs=None, verbose=0, mmap_mode=None):
    """Load an Atari positioning dataset, generating it once.

    The first call generates the collection with :func:`make_atari` and
    caches it as one compressed ``.npz`` file under ``data_home/atari/``,
    named by a hash of the game and the generation parameters, written
    atomically. Later calls read the cache.

    Parameters
    ----------
    game : {"pong", "breakout", "mspacman"}
    data_home : str or path-like, default=None
        Cache folder; see :func:`get_data_home`.
    n_rollouts, n_steps, n_jobs, verbose
        As for :func:`make_atari`.
    random_state : int, default=0
        Seed of the generation.
    download_if_missing : bool, default=True
        Generate the collection when it is not cached; if False, raise
        :class:`FileNotFoundError` instead.
    mmap_mode : {None, "r", "c"}, default=None
        As for :func:`load_lunarlander`: memory-mapped images.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        As returned by :func:`make_atari`, plus ``filename``.

    Raises
    ------
    ValueError
        For an unknown game, or when the cache file is unreadable and
        ``download_if_missing`` is False (with True it is regenerated, with
        a warning).
    FileNotFoundError
        When the collection is not cached and ``download_if_missing`` is False.
    ImportError
        When the collection must be generated and ale-py or gymnasium is
        missing.

    Examples
    --------
    >>> from skperceptual.datasets import load_atari
    >>> data = load_atari("breakout", n_rollouts=4, n_steps=40)  # doctest: +SKIP
    >>> data.name, data.test.y.shape[1]  # doctest: +SKIP
    ('breakout', 2)
    """
    check_game(game)
    _collection.check_params(n_rollouts, n_steps)
    _collection.check_cache_args(random_state, mmap_mode, "load_atari")
    params = _params(game, n_rollouts, n_steps, _collection.entropy(random_state))
    return _collection.load_or_make(
        _collection.cache_path(get_data_home(data_home), "atari", params), params, ("y", "ram"),
        lambda: make_atari(game, n_rollouts, n_steps, random_state=random_state, n_jobs=n_jobs, verbose=verbose),
        _bunch, name=f"Atari {game}", download_if_missing=download_if_missing, mmap_mode=mmap_mode)
