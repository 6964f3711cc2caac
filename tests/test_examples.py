"""Run every gallery example (``examples/plot_*.py``) as a script.

The documentation is built without executing the gallery by default (see
``docs/conf.py``), so these tests are what guarantees that every example
runs. They use the examples' own tiny settings; the LunarLander frames they
share are generated once per session into a temporary data folder.
"""

import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("plot_*.py"))

pytest.importorskip("gymnasium")
matplotlib = pytest.importorskip("matplotlib")


@pytest.fixture(scope="session")
def examples_data_home(skperceptual_data_home):
    # The session data home of conftest.py, which also holds the registered
    # ImageNet weights that the examples' perceptual_weights="imagenet" uses.
    return skperceptual_data_home


def test_examples_found():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(path, examples_data_home, monkeypatch):
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    monkeypatch.setenv("SKPERCEPTUAL_DATA", str(examples_data_home))
    monkeypatch.chdir(path.parent)
    try:
        runpy.run_path(str(path), run_name="__main__")
        assert plt.get_fignums(), f"{path.name} drew no figure"
    finally:
        plt.close("all")
