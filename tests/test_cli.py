"""The command line speaks to people: one-line errors, progress, counted warnings."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from skperceptual.__main__ import main
from skperceptual.protocol import _runner, load_profile, run_protocol
from skperceptual.protocol._runner import _Progress, write_results
from skperceptual.protocol._units import EpochProgress, Unit, run_units, warning_summary

ROOT = Path(__file__).resolve().parents[1]


def _experiment(*extra, out):
    return ["experiment", "--dataset", "lunarlander", "--out", str(out), *extra]


@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if the run gets as far as loading (or generating) data."""

    def load_dataset(name, **kwargs):
        raise AssertionError("the run loaded data before rejecting its input")

    monkeypatch.setattr(_runner, "load_dataset", load_dataset)


def _one_error_line(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("skperceptual: error: ")
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("override, names", [
    ("ae.max_epochs", "is not KEY=VALUE"),
    ("heads.max_layers=5", "heads.max_layers"),
    ("nosuch.key=1", "nosuch"),
    ("data=3", "'data' is a section"),
])
def test_bad_set_is_one_line_and_status_2(override, names, tmp_path, capsys, no_data):
    assert main(_experiment("--set", override, out=tmp_path / "run")) == 2
    assert names in _one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_unknown_profile_is_one_line_and_status_2(tmp_path, capsys, no_data):
    assert main(_experiment("--profile", "nosuch", out=tmp_path / "run")) == 2
    line = _one_error_line(capsys)
    assert "No profile 'nosuch'" in line and "smoke" in line


def test_bad_weights_fail_before_any_data(tmp_path, capsys, no_data):
    assert main(_experiment("--set", "ae.perceptual_weights=/nonexistent.pth", out=tmp_path / "run")) == 2
    line = _one_error_line(capsys)
    assert "/nonexistent.pth" in line and "does not exist" in line
    assert not (tmp_path / "run").exists()


def test_python_api_checks_weights_before_any_data(tmp_path, no_data):
    config = load_profile("smoke", ae__perceptual_weights="/nonexistent.pth")
    with pytest.raises(FileNotFoundError, match="/nonexistent.pth"):
        run_protocol(config=config, out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_pixel_variants_do_not_need_weights(tmp_path, monkeypatch, capsys):
    """Only the perceptual variants and the Frozen PCA baseline load the weights, so only they check them."""
    class ReachedTheData(Exception):
        pass

    monkeypatch.setattr(_runner, "load_dataset", lambda name, **kw: (_ for _ in ()).throw(ReachedTheData))
    with pytest.raises(ReachedTheData):  # got past the weights check, to the data
        main(_experiment("--set", "ae.perceptual_weights=/nonexistent.pth", "--set", "ae.variants=['AE']",
                         "--set", "baselines.variants=['PCA']", out=tmp_path / "run"))
    assert main(_experiment("--set", "ae.perceptual_weights=/nonexistent.pth", "--set", "ae.variants=['AE']",
                            out=tmp_path / "run")) == 2
    assert "/nonexistent.pth" in _one_error_line(capsys)


def test_bad_weights_file_for_the_weights_command(tmp_path, capsys):
    assert main(["weights", "register", str(tmp_path / "missing.pth"), "--data-home", str(tmp_path)]) == 2
    assert "missing.pth" in _one_error_line(capsys)
    assert not (tmp_path / "weights").exists()


def test_busy_run_directory_is_one_line(tmp_path, capsys, no_data):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.lock").write_text(str(os.getpid()))  # held by a live process: this one
    assert main(_experiment("--set", "ae.perceptual_weights=none", out=out)) == 2
    assert f"Another run (PID {os.getpid()}) is using" in _one_error_line(capsys)


def test_debug_shows_the_traceback(tmp_path, no_data):
    with pytest.raises(FileNotFoundError, match="nosuch"):
        main(["--debug", *_experiment("--profile", "nosuch", out=tmp_path / "run")])


def test_programming_errors_keep_their_traceback(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(_runner, "load_dataset", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(_experiment("--set", "ae.perceptual_weights=none", out=tmp_path / "run"))


def test_exit_status_of_the_real_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "skperceptual", *_experiment("--profile", "nosuch", out=tmp_path)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("skperceptual: error: No profile 'nosuch'")
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------------- warnings


def _warns(n):
    for _ in range(n):
        warnings.warn("did not converge", ConvergenceWarning)
    warnings.warn("something else")
    return n


def _unit(folder, name="fake"):
    return Unit("head", name, "k", folder, _warns, inputs=lambda: (3,),
                save=lambda unit, result: {"variant": "AE", "z_dim": 4, "head": "mlp", "val_metric": 1.5,
                                              "test_metric": result},
                info=dict(variant="AE", z=4, kind="mlp"))


def test_warnings_are_counted_in_the_record_not_printed(tmp_path, capsys, recwarn):
    (unit,) = run_units([_unit(tmp_path)])
    assert unit.record["n_warnings"] == 4
    assert json.loads(unit.record["warning_categories"]) == {"ConvergenceWarning": 3, "UserWarning": 1}
    assert len(recwarn) == 0 and capsys.readouterr().err == ""
    # The record is saved with the counts, so a resumed run reports them too.
    assert json.loads(unit.record_path.read_text())["n_warnings"] == 4
    df = write_results([unit.record], tmp_path / "results.csv")
    assert pd.read_csv(tmp_path / "results.csv")["n_warnings"].tolist() == [4] == df["n_warnings"].tolist()


def test_warning_summary_is_one_line():
    records = [{"n_warnings": 4, "warning_categories": '{"ConvergenceWarning": 3, "UserWarning": 1}'},
               {"n_warnings": 2, "warning_categories": '{"ConvergenceWarning": 2}'}, {"n_warnings": 0}, {}]
    line = warning_summary(records)
    assert line.startswith("6 warnings in 2 units (ConvergenceWarning: 5, UserWarning: 1)")
    assert "\n" not in line
    assert warning_summary([{}, {"n_warnings": 0}]) == "no warnings"


def test_learning_curve_rows_carry_their_units_warnings():
    """The warning summary points at learning_curve.csv too, so its rows carry their unit's warnings."""
    from types import SimpleNamespace

    from skperceptual.protocol._stages import curve_rows

    rows = [{"head": "mlp", "n_images": 100, "test_metric": 2.0}, {"head": "mlp", "n_images": 200, "test_metric": 1.0}]
    warned = SimpleNamespace(record={"variant": "AE", "z_dim": 64, "rows": rows, "n_warnings": 1,
                                     "warning_categories": '{"LinAlgWarning": 1}'})
    quiet = SimpleNamespace(record={"variant": "P. AE", "z_dim": 64, "rows": rows[:1], "n_warnings": 0,
                                    "warning_categories": "{}"})
    df = pd.DataFrame(curve_rows([warned, quiet]))
    assert df["n_warnings"].tolist() == [1, 1, 0]
    assert df["warning_categories"].tolist() == ['{"LinAlgWarning": 1}'] * 2 + ["{}"]
    assert "learning_curve.csv" in warning_summary([warned.record])


# ----------------------------------------------------------------- progress


def test_progress_is_silent_at_verbose_0(tmp_path, capsys):
    done = []
    progress = _Progress(0, on_unit_done=lambda *a: done.append(a))
    with progress.stage("head searches", 1) as unit_done:
        progress("a message")
        run_units([_unit(tmp_path)], progress=unit_done, show_epochs=progress.verbose)
    assert capsys.readouterr().err == ""
    assert len(done) == 1  # the caller's callback runs either way


def test_progress_shows_a_stage_bar_and_a_line_per_unit(tmp_path, capsys):
    progress = _Progress(1)
    with progress.stage("head searches", 2) as unit_done:
        run_units([_unit(tmp_path, "a"), _unit(tmp_path, "b")], progress=unit_done)
    err = capsys.readouterr().err
    assert "head searches" in err and "2/2" in err
    assert "head 1/2: AE z=4 mlp" in err and "4 warnings" in err


class _FakeNet:
    history = [{"train_loss": 0.5}]


def _epochs(n):
    callback = EpochProgress()
    callback.on_train_begin(_FakeNet())
    for _ in range(n):
        callback.on_epoch_end(_FakeNet())
    callback.on_train_end(_FakeNet())
    return n


@pytest.mark.parametrize("show", [True, False])
def test_epoch_bar_only_when_the_runner_allows(tmp_path, capsys, show):
    unit = Unit("ae", "fake", "k", tmp_path, _epochs, inputs=lambda: (3,), save=lambda unit, result: {},
                info=dict(variant="P. AE", z=8))
    run_units([unit], show_epochs=show)
    err = capsys.readouterr().err
    assert ("ae P. AE z=8" in err and "epoch" in err) is show
    # Outside a runner (a saved model trained again) the callback is silent.
    _epochs(2)
    assert capsys.readouterr().err == ""
