"""The bad-input and fault matrix: every case is a clear error
naming the parameter or file and the fix, raised before any work starts, with
nothing left on disk; or, for valid edge cases, a correct result.

Each case is tagged in a comment with how it behaved before the fix:
[clear] already a clear error, [unclear] an error that named neither the
parameter/file nor the fix, [silent] a wrong result returned normally.
"""

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from skperceptual import PerceptualAETransformer
from skperceptual._atomic import atomic_path, is_stale_temp, sweep_stale_temps
from skperceptual.datasets import _lunarlander, _stl10, _svhn, load_lunarlander, load_stl10, load_svhn, make_lunarlander
from skperceptual.estimators import perceptual_ae as transformer
from skperceptual.losses import perceptual
from skperceptual.losses.perceptual import load_perceptual_net

QUICK = dict(z_dim=4, max_epochs=1, batch_size=8, loss="pixel", validation_fraction=None, random_state=0)


@pytest.fixture
def X():
    return np.random.default_rng(0).integers(0, 256, (8, 3, 64, 64), dtype=np.uint8)


@pytest.fixture
def no_work(monkeypatch):
    """Make loading the perceptual net or building the skorch net fail loudly,
    so that a case raising its expected error proves no work had started."""

    def started(*args, **kwargs):
        raise AssertionError("work started before the bad input was reported")

    monkeypatch.setattr(perceptual, "load_perceptual_net", started)
    monkeypatch.setattr(transformer, "AutoencoderNet", started)


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ------------------------------------------------------------ estimator: parameters


@pytest.mark.parametrize(
    "params, error, words",
    [
        # [unclear] a raw torch error after the weights were loaded and the fit started.
        (dict(device="tpu"), ValueError, ["device='tpu'", "device='auto'", "'cpu'"]),
        # [unclear] an islice ValueError after the fit started.
        (dict(batch_size=2**70), InvalidParameterError, ["batch_size", "9223372036854775807"]),
        # [clear] out of range for AlexNet, now checked before the images.
        (dict(loss="perceptual", perceptual_layer=np.int64(99)), ValueError, ["perceptual_layer=99", "1 to 13"]),
        # [clear]
        (dict(perceptual_layer=0), InvalidParameterError, ["perceptual_layer"]),
        # [contradicting input, silent] image_shape ignored for 4-D input.
        (dict(image_shape=(1, 64, 64)), ValueError, ["image_shape=(1, 64, 64)", "(3, 64, 64)", "image_shape=None"]),
    ],
)
def test_bad_parameter_fails_before_any_work(X, no_work, params, error, words):
    est = PerceptualAETransformer(**{**QUICK, **params})
    with pytest.raises(error) as info:
        est.fit(X)
    for word in words:
        assert word in str(info.value)
    assert not hasattr(est, "net_")


def test_unavailable_cuda_fails_before_any_work(X, no_work):
    # [unclear] a raw torch error once training started.
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match=r"device='cuda' is not available.*device='cpu'"):
        PerceptualAETransformer(**QUICK, device="cuda").fit(X)


def test_numpy_integer_perceptual_layer_works(X):
    # [unclear] np.int64(5) was rejected as "out of range", breaking numpy grids.
    est = PerceptualAETransformer(**{**QUICK, "loss": "perceptual"}, perceptual_layer=np.int64(5),
                                  perceptual_weights=None)
    assert est.fit_transform(X).shape == (8, 4)


# ------------------------------------------------------------ estimator: input


def test_bfloat16_tensor_is_converted(X):
    # [unclear] "Got unsupported ScalarType BFloat16".
    est = PerceptualAETransformer(**QUICK)
    as_bf16 = torch.from_numpy(X).to(torch.bfloat16) / 255
    Z = est.fit(as_bf16).transform(as_bf16)
    # bfloat16 holds 0..1 coarsely; the float32 copy of it embeds identically.
    np.testing.assert_array_equal(Z, est.transform(as_bf16.float()))
    assert Z.dtype == np.float32


def test_one_image_without_validation(X, no_work):
    # [unclear] told to pass validation_fraction=None, which it already was.
    with pytest.raises(ValueError) as info:
        PerceptualAETransformer(**QUICK).fit(X[:1])
    message = str(info.value)
    assert "Got 1 image" in message and "pass at least 2 images" in message
    assert "validation_fraction" not in message


def test_too_few_after_hold_out(X, no_work):
    # [clear] with a hold-out, the fix is to turn it off.
    with pytest.raises(ValueError, match=r"hold-out leaves 1. Pass more images, or validation_fraction=None"):
        PerceptualAETransformer(**{**QUICK, "validation_fraction": 0.5}).fit(X[:2])


# ------------------------------------------------------------ estimator: divergence


def test_nan_weights_are_rejected_before_training(X, tmp_path):
    # [silent] fit returned NaN loss and 100% NaN embeddings. The weights
    # are now checked when they are read, before any training step.
    net = load_perceptual_net("alexnet", 5, weights=None)
    path = tmp_path / "nan.pth"
    torch.save({k: torch.full_like(v, float("nan")) for k, v in net.state_dict().items()}, path)
    est = PerceptualAETransformer(**{**QUICK, "loss": "perceptual", "max_epochs": 5}, perceptual_weights=path)
    with pytest.raises(ValueError) as info:
        est.fit(X)
    message = str(info.value)
    assert str(path) in message and "infinite values" in message
    assert not hasattr(est, "net_")


def test_nan_loss_stops_training_at_that_batch(X):
    # One Adam step of lr=1e30 overflows the weights, so the next batch's
    # loss is NaN: the fit stops there with what to try, instead of training on.
    est = PerceptualAETransformer(**{**QUICK, "max_epochs": 5, "batch_size": 4, "lr": 1e30})
    with pytest.raises(FloatingPointError) as info:
        est.fit(X)
    message = str(info.value)
    assert "epoch 1, batch 2" in message and "loss is nan" in message
    assert "lower lr" in message and "perceptual_weights" in message
    assert not hasattr(est, "net_")


@pytest.mark.parametrize("loss", ["pixel", "perceptual"])
def test_huge_lr_stops_training(X, loss):
    # [silent] lr=1e6 returned embeddings of about 7.6e17 without a warning.
    est = PerceptualAETransformer(**{**QUICK, "loss": loss, "max_epochs": 5, "batch_size": 2},
                                  lr=1e6, perceptual_weights=None)
    with pytest.raises(FloatingPointError) as info:
        est.fit(X)
    message = str(info.value)
    assert "epoch 1," in message and "embeddings reached" in message
    assert "lower lr than 1e+06" in message
    assert not hasattr(est, "net_")


def test_ordinary_fit_passes_the_guard(X):
    # The bound must not fire on a healthy fit; it trains all its epochs.
    est = PerceptualAETransformer(**{**QUICK, "max_epochs": 2, "batch_size": 4}).fit(X)
    assert est.n_epochs_ == 2 and np.isfinite(est.transform(X)).all()


# ------------------------------------------------------------ estimator: set_params after fit


def test_set_params_after_fit_keeps_fitted_behaviour(X):
    # [unclear/silent] inverse_transform used the new z_dim and batch_size; a huge
    # batch_size gave "Overflow when unpacking long long"; a new image_shape
    # changed how transform read flat rows.
    flat = X.reshape(len(X), -1)
    est = PerceptualAETransformer(**QUICK).fit(flat)
    Z, images = est.transform(flat), est.inverse_transform(est.transform(flat))
    est.set_params(z_dim=9, batch_size=2**70, image_shape=(1, 96, 64))
    np.testing.assert_array_equal(est.transform(flat), Z)
    np.testing.assert_array_equal(est.inverse_transform(Z), images)
    assert np.isfinite(est.score(flat))
    with pytest.raises(ValueError, match=r"has 9 features per row, but the embedding was fitted with z_dim=4"):
        est.inverse_transform(np.zeros((2, 9), np.float32))


# ------------------------------------------------------------ STL-10 files


def _write_stl10(folder, n=(3, 2, 2)):
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in zip(("unlabeled", "train", "test"), n):
        np.zeros(count * 3 * 96 * 96, np.uint8).tofile(folder / f"{split}_X.bin")
        if split != "unlabeled":
            (np.arange(count) % 10 + 1).astype(np.uint8).tofile(folder / f"{split}_y.bin")
    (folder / "class_names.txt").write_text("\n".join(_stl10.CLASS_NAMES) + "\n")


@pytest.fixture
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(_stl10, "_download", refuse)
    monkeypatch.setattr(_svhn, "_download", refuse)


IMAGE = 3 * 96 * 96


@pytest.mark.parametrize("name", ["unlabeled_X.bin", "train_X.bin", "test_X.bin"])
@pytest.mark.parametrize("size", [5, IMAGE * 5 // 2, IMAGE * 7 // 2, 0])
def test_stl10_partial_image_file(tmp_path, offline, name, size):
    # [silent] 5 bytes, 2.5, 3.5 or 0 images were read as 0, 2, 3 or 0 images.
    folder = tmp_path / "stl10_binary"
    _write_stl10(folder)
    with open(folder / name, "r+b") as f:
        f.truncate(size)
    before = _files(tmp_path)
    with pytest.raises(ValueError) as info:
        load_stl10(data_home=tmp_path, download_if_missing=False)
    message = str(info.value)
    assert f"{folder / name} holds {size} bytes" in message
    assert "whole, positive number of 27648-byte" in message and "delete it" in message
    assert _files(tmp_path) == before


@pytest.mark.parametrize("label", [0, 200])
def test_stl10_label_out_of_range(tmp_path, offline, label):
    # [silent] labels 0 or 200 became y = -1 or 199.
    folder = tmp_path / "stl10_binary"
    _write_stl10(folder)
    np.array([1, label], np.uint8).tofile(folder / "test_y.bin")
    with pytest.raises(ValueError, match=rf"test_y.bin holds labels \[{label}\].*labels 1..10"):
        load_stl10(data_home=tmp_path, download_if_missing=False)


def test_stl10_label_count(tmp_path, offline):
    # [clear] an OSError naming the file; now with the fix too.
    folder = tmp_path / "stl10_binary"
    _write_stl10(folder)
    np.array([1, 2, 3], np.uint8).tofile(folder / "train_y.bin")
    with pytest.raises(ValueError, match=r"train_y.bin holds 3 labels; expected one byte per image, 2"):
        load_stl10(data_home=tmp_path, download_if_missing=False)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x81binary", "a\nb\nc\n".encode()])
def test_stl10_bad_class_names(tmp_path, offline, content):
    # [unclear] UnicodeDecodeError for binary content; [silent] 3 names for 10 classes.
    folder = tmp_path / "stl10_binary"
    _write_stl10(folder)
    (folder / "class_names.txt").write_bytes(content)
    with pytest.raises(ValueError, match=r"class_names.txt .*expected .*per line.*delete it"):
        load_stl10(data_home=tmp_path, download_if_missing=False)


@pytest.mark.parametrize("loader", [load_stl10, load_svhn])
@pytest.mark.parametrize("n, error", [(0, ValueError), (-5, ValueError), (2.5, TypeError)])
def test_empty_or_invalid_autoencoder_set(tmp_path, offline, loader, n, error):
    # [silent] n_autoencoder=0 gave an empty set; [unclear] -5 gave "negative dimensions".
    with pytest.raises(error, match="n_autoencoder"):
        loader(data_home=tmp_path, n_autoencoder=n)
    assert _files(tmp_path) == []


# ------------------------------------------------------------ SVHN files


def _write_svhn(folder, **override):
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test", "extra"):
        mat = {"X": np.zeros((32, 32, 3, 3), np.uint8), "y": np.array([[1], [5], [10]], np.uint8)}
        if split == "train":
            mat.update(override)
            mat = {k: v for k, v in mat.items() if v is not None}
        savemat(folder / f"{split}_32x32.mat", mat)
    return folder / "train_32x32.mat"


@pytest.mark.parametrize(
    "override, problem",
    [
        # [silent] label counts that do not match the 3 images.
        (dict(y=np.ones((5, 1), np.uint8)), "holds 5 labels for 3 images"),
        (dict(y=np.ones((1, 1), np.uint8)), "holds 1 labels for 3 images"),
        # [silent] labels outside 1..10 were passed through.
        (dict(y=np.array([[1], [0], [2]])), r"holds labels \[0\]"),
        (dict(y=np.array([[11], [1], [2]])), r"holds labels \[11\]"),
        (dict(y=np.array([[-3], [1], [2]])), r"holds labels \[-3\]"),
        # [silent] float X in [0, 1] was cast to all-zero uint8.
        (dict(X=np.full((32, 32, 3, 3), 0.5)), "holds X of type double"),
        # [unclear] wrong layout, 64 px and 3-D X broke with broadcast/IndexError.
        (dict(X=np.zeros((3, 3, 32, 32), np.uint8)), r"holds X of shape \(3, 3, 32, 32\)"),
        (dict(X=np.zeros((64, 64, 3, 3), np.uint8)), r"holds X of shape \(64, 64, 3, 3\)"),
        (dict(X=np.zeros((32, 32, 3), np.uint8)), r"holds X of shape \(32, 32, 3\)"),
        # [unclear] KeyError 'y'.
        (dict(y=None), r"lacks the variable\(s\) \['y'\]"),
    ],
)
def test_svhn_bad_file(tmp_path, offline, override, problem):
    pytest.importorskip("scipy")
    path = _write_svhn(tmp_path / "svhn", **override)
    before = _files(tmp_path)
    with pytest.raises(ValueError) as info:
        load_svhn(data_home=tmp_path, download_if_missing=False)
    message = str(info.value)
    assert str(path) in message
    assert re.search(problem, message), message
    assert "expected X of shape (32, 32, 3, n_images), dtype uint8" in message and "delete it" in message
    assert _files(tmp_path) == before


@pytest.mark.parametrize(
    "damage, problem",
    [
        ("random", "is not a readable MATLAB file"),
        ("empty", "is not a readable MATLAB file"),
        # Cut inside y: the header lists both variables, reading y fails.
        ("end cut", "is not a readable MATLAB file"),
        # Cut inside X: the header no longer reaches y.
        ("half cut", r"lacks the variable\(s\) \['y'\]"),
    ],
)
def test_svhn_unreadable_mat(tmp_path, offline, damage, problem):
    # [unclear] "could not read bytes" without a path.
    pytest.importorskip("scipy")
    path = _write_svhn(tmp_path / "svhn", X=np.zeros((32, 32, 3, 300), np.uint8), y=np.ones((300, 1), np.uint8))
    data = path.read_bytes()
    damaged = {
        "random": np.random.default_rng(0).bytes(2000),
        "empty": b"",
        "end cut": data[:-20],
        "half cut": data[: len(data) // 2],
    }[damage]
    path.write_bytes(damaged)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} {problem}.*delete it"):
        load_svhn(data_home=tmp_path, download_if_missing=False)


# ------------------------------------------------------------ LunarLander


def test_lunarlander_corrupt_cache_without_regeneration(tmp_path):
    # [unclear] "contains pickled data", naming neither the cache nor the fix.
    params = _lunarlander._params(4, 25, 0)
    path = _lunarlander._cache_path(tmp_path, params)
    path.parent.mkdir(parents=True)
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ValueError) as info:
        load_lunarlander(data_home=tmp_path, n_rollouts=4, n_steps=25, download_if_missing=False)
    message = str(info.value)
    assert f"LunarLander cache {path} is unreadable" in message
    assert "Delete it" in message and "download_if_missing=True" in message
    assert _files(tmp_path / "lunarlander") == [path.name]


def test_lunarlander_corrupt_cache_is_regenerated(tmp_path):
    # [clear] regenerated in place, with a warning naming the file.
    pytest.importorskip("gymnasium")
    path = _lunarlander._cache_path(tmp_path, _lunarlander._params(4, 25, 0))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz")
    with pytest.warns(UserWarning, match="Regenerating unreadable cache"):
        data = load_lunarlander(data_home=tmp_path, n_rollouts=4, n_steps=25)
    assert data.filename == str(path) and len(data.test.X) > 0
    assert _files(tmp_path / "lunarlander") == [path.name]


def test_lunarlander_empty_parts(tmp_path):
    # [silent] make_lunarlander(3, 1) gave empty predictor and test sets.
    pytest.importorskip("gymnasium")
    with pytest.raises(ValueError) as info:
        make_lunarlander(3, 1, random_state=0)
    message = str(info.value)
    assert "left the predictor and test set(s) empty" in message
    assert "larger n_steps" in message and "more n_rollouts" in message
    with pytest.raises(ValueError, match="set\\(s\\) empty"):
        load_lunarlander(data_home=tmp_path, n_rollouts=3, n_steps=1)
    assert _files(tmp_path / "lunarlander") == []


# ------------------------------------------------------------ temporary files


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt(), SystemExit(1)])
def test_interrupted_write_leaves_no_temp(tmp_path, exc):
    # [clear] already removed on exceptions; KeyboardInterrupt/SystemExit too.
    with pytest.raises(type(exc)):
        with atomic_path(tmp_path / "out.joblib") as tmp:
            tmp.write_bytes(b"half")
            raise exc
    assert _files(tmp_path) == []


def _dead_pid():
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_sweep_removes_temps_of_killed_writers_only(tmp_path):
    # [silent] a kill mid-write left half-written .tmp files for ever.
    import skperceptual._atomic as atomic

    writer = textwrap.dedent(f"""
        import importlib.util, sys, time
        spec = importlib.util.spec_from_file_location("atomic", {atomic.__file__!r})
        atomic = importlib.util.module_from_spec(spec); spec.loader.exec_module(atomic)
        with atomic.atomic_path({str(tmp_path / "ae.joblib")!r}) as tmp:
            tmp.write_bytes(b"x" * 1000)
            print(tmp, flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    try:
        live = proc.stdout.readline().strip()
        assert os.path.exists(live) and not is_stale_temp(live)
        # A live writer's file is kept: the sweep is safe beside running writers.
        assert sweep_stale_temps(tmp_path) == []
        finished = tmp_path / "results.csv"
        finished.write_text("a,b\n")
    finally:
        proc.kill()
        proc.wait()
    nested = tmp_path / "units" / f".u.npz.{atomic._HOST}-{_dead_pid()}-abcd1234.tmp.npz"
    nested.parent.mkdir()
    nested.write_bytes(b"")
    removed = sweep_stale_temps(tmp_path)
    assert {str(p) for p in removed} == {live, str(nested)}
    assert _files(tmp_path) == ["results.csv", "units"]


def test_lunarlander_sweeps_its_stale_cache_temp(tmp_path):
    # [silent] the data cache kept a partial .lunarlander_….npz.….tmp.npz.
    pytest.importorskip("gymnasium")
    import skperceptual._atomic as atomic

    path = _lunarlander._cache_path(tmp_path, _lunarlander._params(4, 25, 0))
    path.parent.mkdir(parents=True)
    stale = path.parent / f".{path.name}.{atomic._HOST}-{_dead_pid()}-zz9_a1b2.tmp.npz"
    stale.write_bytes(b"PK\x03\x04 half")
    load_lunarlander(data_home=tmp_path, n_rollouts=4, n_steps=25)
    assert _files(tmp_path / "lunarlander") == [path.name]


# --- cases that gave unclear errors: each now one line naming the parameter or file and the fix


def test_a_dataframe_column_of_images_is_explained():
    pd = pytest.importorskip("pandas")
    from skperceptual import PerceptualAETransformer

    X = np.zeros((4, 3, 64, 64), np.uint8)
    with pytest.raises(ValueError, match=r"an array in each cell .* np.stack\(df\['image'\].to_numpy\(\)\)"):
        PerceptualAETransformer(device="cpu").fit(pd.DataFrame({"image": list(X)}))


def test_a_meta_tensor_is_explained():
    import torch

    from skperceptual import FrozenFeatureTransformer, PerceptualAETransformer

    X = torch.empty(4, 3, 64, 64, device="meta")
    for estimator in (PerceptualAETransformer(device="cpu"), FrozenFeatureTransformer(weights=None, device="cpu")):
        with pytest.raises(ValueError, match="meta device, which holds shapes but no data"):
            estimator.fit(X)


def test_a_profile_that_is_not_toml_names_its_path(tmp_path):
    from skperceptual.protocol import load_profile

    for content in (b"\xff\xfe binary", b"a b c"):
        (tmp_path / "bad.toml").write_bytes(content)
        with pytest.raises(ValueError, match=r"Profile .*bad.toml is not a valid TOML file .* cpu, paper, smoke"):
            load_profile(tmp_path / "bad.toml")


def test_a_loader_key_typo_fails_before_the_out_folder_exists(tmp_path, capsys):
    from skperceptual.__main__ import main

    out = tmp_path / "run"
    assert main(["experiment", "--dataset", "lunarlander", "--out", str(out),
                 "--set", "data.loader.lunarlander.n_rollout=8"]) == 2
    err = capsys.readouterr().err
    assert "Unknown profile key 'data.loader.lunarlander.n_rollout'" in err and "n_rollouts" in err
    assert "Traceback" not in err and not out.exists()


def test_an_out_that_is_a_file_or_read_only_is_named(tmp_path, capsys):
    import os

    from skperceptual.__main__ import main

    (tmp_path / "file").write_text("x")
    assert main(["experiment", "--dataset", "lunarlander", "--out", str(tmp_path / "file")]) == 2
    assert f"{tmp_path / 'file'} is a file; pass the path of a folder" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        with open(locked / "probe", "w"):
            pytest.skip("this user writes into read-only folders (root): the probe cannot fail here")
    except PermissionError:
        pass
    finally:
        os.chmod(locked, 0o700)
    os.chmod(locked, 0o500)
    try:
        assert main(["experiment", "--dataset", "lunarlander", "--out", str(locked / "run")]) == 2
        assert "cannot be written" in capsys.readouterr().err
    finally:
        os.chmod(locked, 0o700)


def test_a_full_disk_names_the_out_folder(tmp_path, capsys, monkeypatch):
    import errno

    from skperceptual.cli import main as cli

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device")

    parser = cli._build_parser()
    monkeypatch.setattr(cli, "_build_parser", lambda: parser)
    args = parser.parse_args(["experiment", "--dataset", "lunarlander", "--out", str(tmp_path / "run")])
    monkeypatch.setattr(parser, "parse_args", lambda argv: args)
    monkeypatch.setattr(args, "func", full)
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert f"no space left on the device of --out {tmp_path / 'run'}" in err and "rerun the same command" in err
