"""Tests of skperceptual.datasets and the ``skperceptual data`` command."""

import builtins
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from skperceptual.datasets import (
    _lunarlander,
    _stl10,
    _svhn,
    get_data_home,
    load_atari,
    load_lunarlander,
    load_stl10,
    load_svhn,
    make_lunarlander,
)

N_ROLLOUTS, N_STEPS = 4, 60


@pytest.fixture(scope="module")
def lunar():
    pytest.importorskip("gymnasium")
    return make_lunarlander(N_ROLLOUTS, N_STEPS, random_state=0, n_jobs=1)


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test on any attempt to open a connection or download."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(_stl10, "_download", refuse)
    monkeypatch.setattr(_svhn, "_download", refuse)


def _purple_centroid(img):
    """Centre of the lander's purple pixels (body (128, 102, 230)) in a frame."""
    r, g, b = img.astype(int)
    # Purple stays "blue well above red and green" when blended with the
    # white sky, the black ground or the reddish flames by the resize.
    mask = (b - r > 40) & (b - g > 60)
    rows, cols = np.nonzero(mask)
    return mask.sum(), cols.mean() if len(cols) else None, rows.mean() if len(rows) else None


# --------------------------------------------------------------------- LunarLander


def test_get_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SKPERCEPTUAL_DATA", str(tmp_path / "env"))
    assert get_data_home() == (tmp_path / "env").resolve()
    assert (tmp_path / "env").is_dir()
    assert get_data_home(tmp_path / "arg") == (tmp_path / "arg").resolve()
    monkeypatch.delenv("SKPERCEPTUAL_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert get_data_home() == (tmp_path / "home" / "skperceptual_data").resolve()


def test_lunarlander_contract(lunar):
    assert lunar.task == "positioning"
    assert lunar.image_shape == (3, 64, 64)
    assert lunar.target_names == ["x", "y"]
    assert "LunarLander-v3" in lunar.DESCR
    assert lunar.autoencoder.y is None
    assert len(lunar.autoencoder.X) == N_ROLLOUTS // 2 * N_STEPS
    for part in ("autoencoder", "predictor", "test"):
        p = lunar[part]
        n = len(p.X)
        assert n > 0
        assert p.X.dtype == np.uint8 and p.X.shape == (n, 3, 64, 64)
        assert p.rollout.shape == (n,) and np.issubdtype(p.rollout.dtype, np.integer)
        assert p.observation.dtype == np.float32 and p.observation.shape == (n, 8)
        if part != "autoencoder":
            assert p.y.dtype == np.float32 and p.y.shape == (n, 2)
    # Frames are real pictures: white sky and black ground both appear.
    X = lunar.autoencoder.X
    assert (X == 255).all(axis=1).any() and (X == 0).all(axis=1).any()


def test_lunarlander_label_matches_picture(lunar):
    checked = 0
    for part in ("autoencoder", "predictor", "test"):
        p = lunar[part]
        labels = p.y if p.y is not None else _lunarlander._observation_to_pixels(
            p.observation
        )
        for img, (x, y) in zip(p.X, labels):
            # Fully visible: the lander (about 4 px wide, 3 px tall plus legs)
            # is well inside the frame.
            if not (5 <= x <= 58 and 5 <= y <= 58):
                continue
            n, cx, cy = _purple_centroid(img)
            assert n >= 4
            assert abs(cx - x) <= 2 and abs(cy - y) <= 2, (cx, cy, x, y)
            checked += 1
    assert checked >= 20


def test_lunarlander_frames_match_env_render():
    gym = pytest.importorskip("gymnasium")
    from PIL import Image

    seeds, n_steps = (11, 12), 40
    frames, obs = _lunarlander._rollout(_lunarlander._make_env(), seeds, n_steps, 64)

    env = gym.make("LunarLander-v3", render_mode="rgb_array")
    env.reset(seed=seeds[0])
    actions = np.random.default_rng(seeds[1]).integers(0, 4, size=n_steps)
    for t, a in enumerate(actions):
        o, _, term, trunc, _ = env.step(int(a))
        ref = Image.fromarray(env.render()).resize((64, 64), Image.BICUBIC)
        np.testing.assert_array_equal(frames[t], np.asarray(ref).transpose(2, 0, 1))
        np.testing.assert_array_equal(obs[t], o)
        if term or trunc:
            env.reset()


def test_lunarlander_splits(lunar):
    ids = {p: set(lunar[p].rollout.tolist()) for p in ("autoencoder", "predictor", "test")}
    assert ids["autoencoder"] == set(range(N_ROLLOUTS // 2))
    assert ids["predictor"] and ids["test"]
    assert not ids["predictor"] & ids["test"]
    assert ids["predictor"] | ids["test"] == set(range(N_ROLLOUTS // 2, N_ROLLOUTS))
    for part in ("predictor", "test"):
        y = lunar[part].y
        assert ((y >= -0.5) & (y < 63.5)).all()
        np.testing.assert_allclose(
            y, _lunarlander._observation_to_pixels(lunar[part].observation)
        )
    meta = lunar.metadata
    kept = len(lunar.predictor.X) + len(lunar.test.X)
    assert meta["n_altered_frames"] == N_ROLLOUTS // 2 * N_STEPS
    assert kept + meta["n_off_screen"] == meta["n_altered_frames"]


def test_lunarlander_off_screen_labels_outside_frame():
    # The observation -> pixel map puts the viewport's corners at the frame's.
    ll = pytest.importorskip("gymnasium.envs.box2d.lunar_lander")
    h, w = ll.VIEWPORT_H / ll.SCALE, ll.VIEWPORT_W / ll.SCALE
    helipad_y = h / 4
    corners = np.array([[0.0, 0.0], [w, h]])  # world bottom-left, top-right
    obs = np.zeros((2, 8))
    obs[:, 0] = (corners[:, 0] - w / 2) / (w / 2)
    obs[:, 1] = (corners[:, 1] - (helipad_y + ll.LEG_DOWN / ll.SCALE)) / (h / 2)
    px = _lunarlander._observation_to_pixels(obs)
    np.testing.assert_allclose(px, [[-0.5, 63.5], [63.5, -0.5]], atol=1e-4)
    assert not _lunarlander._on_screen(px).any()


def test_lunarlander_deterministic_across_n_jobs(lunar):
    other = make_lunarlander(N_ROLLOUTS, N_STEPS, random_state=0, n_jobs=2)
    for part in ("autoencoder", "predictor", "test"):
        for key in ("X", "y", "rollout", "observation"):
            a, b = lunar[part][key], other[part][key]
            if a is None:
                assert b is None
            else:
                assert a.tobytes() == b.tobytes(), (part, key)
    # Rollout i's seed depends on i, not on n_rollouts or n_steps, so a short
    # run with another seed is comparable with the start of rollout 0.
    same = make_lunarlander(4, 25, random_state=0, n_jobs=1)
    assert same.autoencoder.X[:25].tobytes() == lunar.autoencoder.X[:25].tobytes()
    other_seed = make_lunarlander(4, 25, random_state=3, n_jobs=1)
    assert other_seed.autoencoder.X[:25].tobytes() != lunar.autoencoder.X[:25].tobytes()


def test_lunarlander_cache_roundtrip(tmp_path, monkeypatch):
    pytest.importorskip("gymnasium")
    first = load_lunarlander(data_home=tmp_path, n_rollouts=4, n_steps=25)
    files = list((tmp_path / "lunarlander").iterdir())
    assert [f.name for f in files] == [os.path.basename(first.filename)]

    def fail(*args, **kwargs):
        raise AssertionError("regenerated instead of loading the cache")

    monkeypatch.setattr(_lunarlander, "make_lunarlander", fail)
    second = load_lunarlander(data_home=tmp_path, n_rollouts=4, n_steps=25)
    for part in ("autoencoder", "predictor", "test"):
        for key in ("X", "y", "rollout", "observation"):
            if first[part][key] is None:
                assert second[part][key] is None
            else:
                np.testing.assert_array_equal(first[part][key], second[part][key])
    assert second.metadata == first.metadata
    assert second.metadata["versions"]["gymnasium"]
    monkeypatch.undo()

    changed = load_lunarlander(data_home=tmp_path, n_rollouts=4, n_steps=26)
    assert changed.filename != first.filename
    assert len(list((tmp_path / "lunarlander").iterdir())) == 2
    with pytest.raises(FileNotFoundError, match="not cached"):
        load_lunarlander(
            data_home=tmp_path, n_rollouts=4, n_steps=27, download_if_missing=False
        )


def test_lunarlander_interrupted_write_leaves_no_cache(tmp_path, monkeypatch):
    pytest.importorskip("gymnasium")
    real = np.savez_compressed

    def write_then_die(file, **arrays):
        with open(file, "wb") as f:
            f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        load_lunarlander(data_home=tmp_path, n_rollouts=4, n_steps=25)
    assert list((tmp_path / "lunarlander").iterdir()) == []
    with pytest.raises(FileNotFoundError):
        load_lunarlander(
            data_home=tmp_path, n_rollouts=4, n_steps=25, download_if_missing=False
        )
    monkeypatch.setattr(np, "savez_compressed", real)
    data = load_lunarlander(data_home=tmp_path, n_rollouts=4, n_steps=25)
    assert os.path.exists(data.filename)


def test_lunarlander_rejects_bad_params(tmp_path):
    with pytest.raises(ValueError, match="n_rollouts"):
        make_lunarlander(2, 5)
    with pytest.raises(TypeError, match="random_state"):
        load_lunarlander(data_home=tmp_path, random_state=None)


def test_cli_data_lunarlander(tmp_path, capsys):
    pytest.importorskip("gymnasium")
    from skperceptual.__main__ import main

    status = main([
        "data", "lunarlander", "--rollouts", "4", "--steps", "25",
        "--data-home", str(tmp_path), "--n-jobs", "1", "--random-state", "3",
        "--quiet",
    ])
    assert status == 0
    out = capsys.readouterr().out
    data = load_lunarlander(data_home=tmp_path, n_rollouts=4, n_steps=25, random_state=3)
    assert data.filename in out
    for part in ("autoencoder", "predictor", "test"):
        n_rollouts = len(set(data[part].rollout.tolist()))
        assert f"{part:<12} {len(data[part].X):>8} {n_rollouts:>9}" in out
    meta = data.metadata
    assert f"dropped {meta['n_off_screen']} of 50 altered frames" in out


# ------------------------------------------------------------------------- STL-10


def _stl10_images(n, seed):
    """Upright images, each with a marker only in its top-left corner."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 100, size=(n, 3, 96, 96), dtype=np.uint8)
    X[:, 0, :10, :30] = 255  # wide, short bar: transposing makes it tall
    X[:, :, -1, -1] = np.arange(n, dtype=np.uint8)[:, None]
    return X


def _write_stl10(folder, n_unlabeled=7, n_train=5, n_test=4):
    folder.mkdir(parents=True, exist_ok=True)
    upright = {}
    for i, (split, n) in enumerate(
        [("unlabeled", n_unlabeled), ("train", n_train), ("test", n_test)]
    ):
        X = _stl10_images(n, i)
        upright[split] = X
        # The format stores each channel column-major.
        X.transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")
        if split != "unlabeled":
            y = (np.arange(n) % 10 + 1).astype(np.uint8)
            y.tofile(folder / f"{split}_y.bin")
    names = list(_stl10.CLASS_NAMES)
    (folder / "class_names.txt").write_text("\n".join(names) + "\n")
    return upright


def test_stl10_reads_local_files(tmp_path, no_network):
    upright = _write_stl10(tmp_path / "stl10_binary")
    data = load_stl10(data_home=tmp_path)
    assert data.task == "classification"
    assert data.image_shape == (3, 96, 96)
    assert data.target_names == _stl10.CLASS_NAMES
    assert data.autoencoder.y is None
    for part, split in [("autoencoder", "unlabeled"), ("predictor", "train"), ("test", "test")]:
        X = data[part].X
        assert X.dtype == np.uint8 and X.shape == upright[split].shape
        np.testing.assert_array_equal(X, upright[split])
        # Orientation: the bar is wide and at the top, not tall at the left.
        assert (X[:, 0, :10, :30] == 255).all()
        assert not (X[:, 0, 10:30, :10] == 255).all()
    assert data.predictor.y.dtype == np.int64
    np.testing.assert_array_equal(data.predictor.y, np.arange(5) % 10)
    np.testing.assert_array_equal(data.test.y, np.arange(4))

    few = load_stl10(data_home=tmp_path, n_autoencoder=3)
    np.testing.assert_array_equal(few.autoencoder.X, upright["unlabeled"][:3])


def test_stl10_local_files_used_even_with_download_allowed(tmp_path, no_network):
    _write_stl10(tmp_path / "stl10_binary")
    data = load_stl10(data_home=tmp_path, download_if_missing=True)
    assert len(data.test.X) == 4


def test_stl10_missing_files_error(tmp_path, no_network):
    folder = tmp_path / "stl10_binary"
    _write_stl10(folder)
    (folder / "unlabeled_X.bin").unlink()
    (folder / "test_y.bin").unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_stl10(data_home=tmp_path, download_if_missing=False)
    msg = str(info.value)
    assert str(folder) in msg
    assert "unlabeled_X.bin" in msg and "test_y.bin" in msg
    assert "train_X.bin" not in msg
    assert "stl10_binary.tar.gz" in msg and "pass download_if_missing=True" in msg


def test_stl10_failed_download_error(tmp_path, monkeypatch):
    def offline(data_home):
        raise OSError("no route to host")

    monkeypatch.setattr(_stl10, "_download", offline)
    with pytest.raises(FileNotFoundError, match="download failed: no route") as info:
        load_stl10(data_home=tmp_path, download_if_missing=True)
    for name in _stl10._FILES:
        assert name in str(info.value)
    # Downloading was allowed and failed: do not suggest allowing it.
    assert "pass download_if_missing" not in str(info.value)


def test_stl10_truncated_file(tmp_path, no_network):
    folder = tmp_path / "stl10_binary"
    _write_stl10(folder)
    with open(folder / "train_X.bin", "r+b") as f:
        f.truncate(5 * 3 * 96 * 96 - 1)
    with pytest.raises(ValueError, match="train_X.bin holds 138239 bytes.*delete it"):
        load_stl10(data_home=tmp_path, download_if_missing=False)


def test_stl10_peak_memory(tmp_path):
    """Reading unlabeled_X.bin allocates about its size, not twice."""
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak RSS")
    n = 2000  # 55 MB: big enough that a second copy would show
    _write_stl10(tmp_path / "stl10_binary", n_unlabeled=1, n_train=1, n_test=1)
    path = tmp_path / "stl10_binary" / "unlabeled_X.bin"
    np.zeros(n * 3 * 96 * 96, dtype=np.uint8).tofile(path)
    script = textwrap.dedent(f"""
        from skperceptual.datasets import _stl10
        def status_kib(key):
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith(key))
        _stl10._read_images(r"{tmp_path}/stl10_binary/test_X.bin")  # warm up
        # Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS.
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = status_kib("VmRSS")
        X = _stl10._read_images(r"{path}")
        print((status_kib("VmHWM") - before) * 1024 / X.nbytes)
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=root,
        check=True,
    ).stdout
    ratio = float(out)
    # One chunk (8 MiB) rides on top of the 55 MB output; reading the whole
    # file and then transposing it would give 2.
    assert 0.95 < ratio < 1.3, ratio


# --------------------------------------------------------------------------- SVHN


def _svhn_images(n, seed):
    """(32, 32, 3, n) digits, as the .mat files hold them, with a marker."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 100, size=(32, 32, 3, n), dtype=np.uint8)
    X[:4, :16, 1, :] = 255  # wide bar at the top of the green channel
    return X


def _write_svhn(folder, sizes=(("train", 6), ("test", 5), ("extra", 9))):
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    raw = {}
    for i, (split, n) in enumerate(sizes):
        X = _svhn_images(n, i)
        y = (np.arange(n) % 10 + 1).reshape(n, 1).astype(np.uint8)  # 1..10
        savemat(folder / f"{split}_32x32.mat", {"X": X, "y": y})
        raw[split] = X
    return raw


def test_svhn_reads_and_tiles(tmp_path, no_network):
    pytest.importorskip("scipy")
    raw = _write_svhn(tmp_path / "svhn")
    data = load_svhn(data_home=tmp_path)
    assert data.task == "classification"
    assert data.image_shape == (3, 64, 64)
    assert data.target_names == [str(d) for d in range(10)]
    assert data.autoencoder.y is None
    for part, split in [("autoencoder", "extra"), ("predictor", "train"), ("test", "test")]:
        X = data[part].X
        n = raw[split].shape[3]
        assert X.dtype == np.uint8 and X.shape == (n, 3, 64, 64)
        digit = raw[split].transpose(3, 2, 0, 1)  # (n, 3, rows, cols)
        for r in (0, 32):
            for c in (0, 32):
                np.testing.assert_array_equal(X[:, :, r:r + 32, c:c + 32], digit)
        assert (X[:, 1, :4, :16] == 255).all() and (X[:, 1, 32:36, 32:48] == 255).all()
    # Labels 1..10 in the file; 10 stands for the digit 0.
    np.testing.assert_array_equal(data.predictor.y, [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(data.test.y, [1, 2, 3, 4, 5])
    assert data.predictor.y.dtype == np.int64

    few = load_svhn(data_home=tmp_path, n_autoencoder=4)
    assert few.autoencoder.X.shape == (4, 3, 64, 64)


def test_svhn_label_ten_is_zero(tmp_path, no_network):
    pytest.importorskip("scipy")
    _write_svhn(tmp_path / "svhn", sizes=(("train", 12), ("test", 10), ("extra", 1)))
    data = load_svhn(data_home=tmp_path, download_if_missing=False)
    np.testing.assert_array_equal(data.predictor.y, [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2])
    assert data.test.y[9] == 0 and data.test.y.max() == 9


def test_svhn_missing_files_error(tmp_path, no_network):
    pytest.importorskip("scipy")
    folder = tmp_path / "svhn"
    _write_svhn(folder)
    (folder / "extra_32x32.mat").unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_svhn(data_home=tmp_path, download_if_missing=False)
    msg = str(info.value)
    assert str(folder) in msg and "extra_32x32.mat" in msg
    assert "train_32x32.mat" not in msg


def test_svhn_downloads_only_missing_files(tmp_path, monkeypatch):
    pytest.importorskip("scipy")
    folder = tmp_path / "svhn"
    _write_svhn(folder)
    (folder / "extra_32x32.mat").unlink()
    calls = []

    def offline(where, split):
        calls.append(split)
        raise OSError("network unreachable")

    monkeypatch.setattr(_svhn, "_download", offline)
    with pytest.raises(FileNotFoundError, match="download failed") as info:
        load_svhn(data_home=tmp_path)
    assert calls == ["extra"]
    assert "extra_32x32.mat" in str(info.value)


# ------------------------------------------------------------------ Atari, no ale-py
# (tests/test_atari.py has those that need the emulator)


@pytest.fixture
def no_ale_py(monkeypatch):
    """Imports of ale_py fail, as without the skperceptual[atari] extra."""
    real_import = builtins.__import__

    def no_ale(name, *args, **kwargs):
        if name == "ale_py":
            raise ImportError("No module named 'ale_py'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ale)


def test_atari_bad_game_and_missing_ale_py(tmp_path, no_ale_py):
    with pytest.raises(ValueError, match=r"Unknown Atari game 'tetris'; valid: \['breakout', 'mspacman', 'pong'\]"):
        load_atari("tetris", data_home=tmp_path)
    with pytest.raises(FileNotFoundError, match="Atari pong collection not cached"):
        load_atari("pong", data_home=tmp_path, n_rollouts=4, n_steps=40, download_if_missing=False)
    with pytest.raises(ImportError, match=r"pip install 'skperceptual\[atari\]'"):
        load_atari("pong", data_home=tmp_path, n_rollouts=4, n_steps=40)
    assert not list(tmp_path.rglob("*.npz*"))


def test_cli_names_the_atari_extra(tmp_path, capsys, monkeypatch, no_ale_py):
    from skperceptual.__main__ import main

    monkeypatch.setenv("SKPERCEPTUAL_DATA", str(tmp_path))  # no cached collection to fall back on
    for argv in (["data", "atari", "pong"],
                 ["experiment", "--dataset", "pong", "--out", str(tmp_path / "run"), "--quiet",
                  "--set", "ae.perceptual_weights=none"]):
        assert main(argv) == 2
        assert "pip install 'skperceptual[atari]'" in capsys.readouterr().err
