"""Ctrl-C is never mistaken for a finished fit: the estimator, fit_decoder and protocol units re-raise it."""

import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from test_host_syncs import InterruptAt

from skperceptual import PerceptualAETransformer
from skperceptual.protocol._units import Unit, run_units

FAST = dict(z_dim=4, loss="pixel", batch_size=4, validation_fraction=None, device="cpu", random_state=0)


def test_interrupted_fit_raises_and_leaves_the_transformer_unfitted(images):
    ae = PerceptualAETransformer(**FAST, max_epochs=200, callbacks=[("ctrl_c", InterruptAt(3))])
    with pytest.raises(KeyboardInterrupt, match="interrupted"):
        ae.fit(images)
    assert not hasattr(ae, "net_") and not hasattr(ae, "n_epochs_")


class EndsTraining(Callback):
    """Counts on_train_end calls (what closes progress bars and files)."""

    def initialize(self):
        self.ends_ = 0
        return self

    def on_train_end(self, net, **kwargs):
        self.ends_ += 1


def test_interrupted_fit_still_ends_training_for_its_callbacks(images):
    ends = EndsTraining()
    ae = PerceptualAETransformer(**FAST, max_epochs=200, callbacks=[("ends", ends), ("ctrl_c", InterruptAt(3))])
    with pytest.raises(KeyboardInterrupt):
        ae.fit(images)
    # as skorch does after a Ctrl-C, so that an epoch bar is closed before the CLI reports the interrupt
    assert ae.callbacks[0][1].ends_ == 1


def test_interrupted_refit_keeps_the_previous_fit(images):
    ae = PerceptualAETransformer(**FAST, max_epochs=1).fit(images)
    before = ae.transform(images)
    ae.set_params(max_epochs=50, callbacks=[("ctrl_c", InterruptAt(2))])
    with pytest.raises(KeyboardInterrupt):
        ae.fit(images)
    np.testing.assert_array_equal(ae.transform(images), before)
    assert ae.n_epochs_ == 1


def test_interrupted_fit_decoder_leaves_the_decoder_as_it_was(images):
    ae = PerceptualAETransformer(**FAST, max_epochs=1).fit(images)
    decoded = ae.inverse_transform(ae.transform(images))
    n_history = len(ae.net_.history)
    ae.net_.callbacks_.append(("ctrl_c", InterruptAt(2).initialize()))
    with pytest.raises(KeyboardInterrupt, match="decoder is left as it was"):
        ae.fit_decoder(images, max_epochs=5)
    np.testing.assert_array_equal(ae.inverse_transform(ae.transform(images)), decoded)
    assert len(ae.net_.history) == n_history and not hasattr(ae, "decoder_history_")
    assert not any(p.requires_grad is False for p in ae.net_.module_.encoder.parameters())


def _quietly_interrupted():
    # What scikit-learn's MLPs do on Ctrl-C: stop, warn, and return normally.
    warnings.warn("Training interrupted by user.")
    return {"test_metric": 1.0}


def test_a_unit_whose_mlp_swallowed_ctrl_c_is_not_saved(tmp_path):
    unit = Unit("head", "mlp-x", "x", tmp_path, _quietly_interrupted, inputs=lambda: (),
                save=lambda unit, result: result, info={})
    with pytest.raises(KeyboardInterrupt, match="interrupted"):
        run_units([unit])
    assert not unit.record_path.exists()


def test_ordinary_warnings_still_finish_the_unit(tmp_path):
    def warns():
        warnings.warn("something else")
        return {"test_metric": 1.0}

    unit = Unit("head", "mlp-y", "y", tmp_path, warns, inputs=lambda: (), save=lambda unit, result: result, info={})
    run_units([unit])
    assert unit.record_path.is_file() and unit.record["n_warnings"] == 1


def test_torch_generator_untouched_by_an_interrupted_fit(images):
    state = torch.random.get_rng_state()
    with pytest.raises(KeyboardInterrupt):
        PerceptualAETransformer(**FAST, max_epochs=5, callbacks=[("ctrl_c", InterruptAt(1))]).fit(images)
    assert torch.equal(torch.random.get_rng_state(), state)


_INTERRUPTIBLE_RUN = """
import signal
import sys
# A shell's background job starts with SIGINT ignored, and Python then
# installs no KeyboardInterrupt handler: restore it, as a terminal has it.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, sys.argv[2])
from test_protocol import make_bunch
from skperceptual.__main__ import main
from skperceptual.protocol import _runner

_runner.load_dataset = lambda name, **kwargs: make_bunch()
sys.exit(main(["experiment", "--dataset", "lunarlander", "--profile", "smoke", "--out", sys.argv[1],
               "--set", "ae.perceptual_weights=none", "--set", "ae.z_dims=[4]", "--set", "ae.max_epochs=100000",
               "--set", "data.n_autoencoder=0", "--set", "ae.variants=['AE']"]))
"""


def test_sigint_stops_the_cli_with_130_and_saves_no_cut_short_unit(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tests.parent), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-c", _INTERRUPTIBLE_RUN, str(tmp_path / "run"), str(tests)],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stderr:  # wait until the AE is training
            if "running 1" in line and "autoencoders" in line:
                break
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
    finally:
        proc.kill()
        proc.stderr.close()
    assert err.strip().splitlines()[-1].startswith("skperceptual: interrupted; finished units are kept")
    assert "Traceback" not in err
    assert not list((tmp_path / "run" / "units" / "ae").glob("*.json"))  # a resume refits it
    assert not (tmp_path / "run" / "results.csv").exists() and not (tmp_path / "run" / "run.lock").exists()
