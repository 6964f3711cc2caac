"""Configuration, validation and the run-directory lock of skperceptual.protocol."""

import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest

from skperceptual import PerceptualAETransformer
from skperceptual.__main__ import main as cli_main
from skperceptual.protocol import load_profile, run_protocol
from skperceptual.protocol._config import (
    KEY_NEUTRAL_PARAMS,
    PROTOCOL_AE_PARAMS,
    ae_params,
    config_hash,
    key_params,
    parse_overrides,
)
from skperceptual.protocol._units import RunLock

#: A valid, non-default value of every estimator parameter the ae section
#: takes, as --set text and as the value it must become.
SET_VALUES = {
    "kl_weight": ("0.5", 0.5),
    "perceptual_net": ("vgg16", "vgg16"),
    "perceptual_layer": ("3", 3),
    "perceptual_layer_weights": ("[1.0, 3.0]", [1.0, 3.0]),
    "perceptual_squash": ("unit", "unit"),
    "perceptual_weights": ("/tmp/weights.pth", "/tmp/weights.pth"),
    "perceptual_normalize": ("true", True),
    "max_epochs": ("7", 7),
    "batch_size": ("16", 16),
    "lr": ("0.01", 0.01),
    "validation_fraction": ("0.3", 0.3),
    "patience": ("none", None),
    "device": ("cpu", "cpu"),
    "verbose": ("1", 1),
    "image_shape": ("[3, 64, 64]", [3, 64, 64]),
    "precision": ("bf16", "bf16"),
    "loss_precision": ("bf16", "bf16"),
    "channels_last": ("false", False),
}


@pytest.mark.parametrize("profile, variant, z, key", [
    # Hashes of ae_params as every release before loss_precision computed them.
    ("smoke", "P. AE", 8, "bf996186ae8f"),
    ("cpu", "P. VAE", 32, "52da14fc70fe"),
])
def test_parameters_added_later_keep_existing_unit_keys(profile, variant, z, key):
    # A finished experiment resumes: its autoencoders' keys, which hash the
    # estimator's parameters, do not change when the estimator gains one.
    params = ae_params(load_profile(profile), variant, z)
    assert set(KEY_NEUTRAL_PARAMS) <= set(params)
    assert config_hash({"params": key_params(params)}) == key
    # A parameter set to anything else is a new setting with a new key.
    changed = ae_params(load_profile(profile, ae__loss_precision="bf16"), variant, z)
    assert config_hash({"params": key_params(changed)}) != key


def test_every_estimator_parameter_round_trips_through_set():
    settable = set(PerceptualAETransformer().get_params()) - set(PROTOCOL_AE_PARAMS)
    assert settable == set(SET_VALUES)  # a new estimator parameter needs an entry here
    defaults = PerceptualAETransformer().get_params()
    for name, (text, value) in SET_VALUES.items():
        assert defaults[name] != value, name
        config = load_profile("smoke", **parse_overrides([f"ae.{name}={text}"]))
        params = ae_params(config, "P. VAE", 8)
        assert params[name] == value, name
        PerceptualAETransformer(**params)  # builds
    # Protocol-controlled parameters come from their own keys.
    params = ae_params(load_profile("smoke", random_state=5), "P. VAE", 8)
    assert (params["z_dim"], params["loss"], params["variational"], params["random_state"]) == (
        8, "perceptual", True, 5)


@pytest.mark.parametrize("override, message", [
    ("ae.z_dims=8", r"ae.z_dims = 8 is invalid: expected a list of ints >= 1, e.g. --set 'ae.z_dims=\[8\]'"),
    ("heads.kinds=['foo']", r"heads.kinds = \['foo'\] is invalid: expected a list of head families"),
    ("data.n_autoencoder=-5", r"data.n_autoencoder = -5 is invalid: expected an int >= 0"),
    ("ae.max_epochs=abc", r"ae.max_epochs: The 'max_epochs' parameter .* Got 'abc'"),
    ("ae.z_dim=8", r"ae.z_dim is set by the protocol .* use ae.z_dims"),
    ("ae.loss=pixel", r"use ae.variants"),
    ("ae.foo=1", r"Unknown profile key 'ae.foo'; valid keys: .*precision"),
    ("ae.variants=['AE', 'PAE']", r"ae.variants .* invalid"),
    ("decoder.max_epochs=0", r"decoder.max_epochs = 0 is invalid"),
])
def test_bad_configuration_fails_before_anything_is_written(tmp_path, capsys, override, message):
    out = tmp_path / "run"
    assert cli_main(["experiment", "--dataset", "lunarlander", "--out", str(out), "--set", override]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()


def test_cuda_device_without_cuda_is_refused():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match=r"ae.device = 'cuda' but no CUDA device .* ae.device=cpu"):
        load_profile("smoke", ae__device="cuda")


def test_bad_run_options_fail_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_main(["experiment", "--dataset", "lunarlander", "--out", str(out), "--n-jobs", "0"]) == 2
    assert "n-jobs" in capsys.readouterr().err.replace("n_jobs", "n-jobs")
    with pytest.raises(ValueError, match="n_jobs=0"):
        run_protocol(None, "smoke", out, n_jobs=0)
    with pytest.raises(ValueError, match=r"Unknown dataset 'mnist'; valid: \['breakout', 'lunarlander', 'mspacman', 'pong', 'stl10', 'svhn'\]"):
        run_protocol(None, load_profile("smoke", dataset="mnist"), out)
    assert not out.exists()


_HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from skperceptual.protocol._units import RunLock
    with RunLock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
""")


def test_a_second_run_on_the_same_directory_is_refused(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True,
                              cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                      filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))})
    try:
        assert holder.stdout.readline().strip() == "locked"
        # Random loss-network weights: the lock is checked whether or not
        # this machine has the ImageNet ones.
        smoke = load_profile("smoke", ae__perceptual_weights=None)
        with pytest.raises(RuntimeError, match=rf"Another run \(PID {holder.pid}\) is using"):
            run_protocol(None, smoke, out, verbose=0)
        # Killed without cleaning up: its lock is stale and is taken over.
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    finally:
        holder.kill()
        holder.stdout.close()
    assert (out / "run.lock").read_text() == str(holder.pid)
    leftover = out / "units" / "ae" / ".ae-z8-123.json.k2j3.tmp.json"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("{")
    with RunLock(out):
        assert (out / "run.lock").read_text() == str(os.getpid())
        assert not leftover.exists()  # a killed run's temporary file is swept
    assert not (out / "run.lock").exists()


def test_default_baselines_leave_the_run_key_as_it_was():
    """Runs keyed before the baselines existed keep their default run directory."""
    from skperceptual.protocol._config import run_key

    config = load_profile("cpu")
    before = {k: v for k, v in config.items() if k != "baselines"}
    assert run_key(config) == run_key(before)
    assert run_key(load_profile("cpu", baselines__variants=["PCA"])) != run_key(config)
