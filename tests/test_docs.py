"""Checks of what the documentation states and shows.

The user guide's small-object figure (``docs/user_guide/perceptual_loss.rst``)
quotes pixel and perceptual distances; this test recomputes them, so the
page cannot drift from the code. The Results page embeds the recorded
figures of ``experiments/results/lunarlander-cpu``.
"""

import importlib.util
import runpy
import sys
import warnings
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _helper():
    spec = importlib.util.spec_from_file_location("_small_object", DOCS / "user_guide" / "_small_object.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_small_object_numbers(alexnet_weights, monkeypatch):
    helper = _helper()
    monkeypatch.setattr(helper, "perceptual_weights", lambda: str(alexnet_weights))
    (pixel_lander, perc_lander), (pixel_bright, perc_bright) = helper.distances(
        helper.scene(), [helper.scene(lander=False), helper.scene(brightness=0.08)]
    )
    # The table in perceptual_loss.rst, to the digits it shows.
    assert round(pixel_lander, 5) == 0.00218
    assert round(pixel_bright, 5) == 0.00504
    assert round(perc_lander, 5) == 0.00714
    assert round(perc_bright, 5) == 0.00013
    # The argument: the two distances rank the changes in opposite orders.
    assert pixel_bright > 2 * pixel_lander
    assert perc_lander > 50 * perc_bright


def test_every_public_name_in_api_reference():
    """Each name in the public ``__all__`` lists appears in docs/api.rst."""
    import skperceptual
    import skperceptual.datasets
    import skperceptual.losses.perceptual as perceptual

    api = (DOCS / "api.rst").read_text()
    names = [n for n in skperceptual.__all__ if n != "__version__"] + list(skperceptual.datasets.__all__)
    names += [n for n in ("load_perceptual_net", "PerceptualLoss", "PixelLoss", "n_layers",
                          "check_perceptual_net", "PERCEPTUAL_NETS") if hasattr(perceptual, n)]
    missing = [n for n in names if n not in api]
    assert not missing, f"not in docs/api.rst: {missing}"


@pytest.fixture
def results_figures(monkeypatch):
    """``results_figures`` and ``RESULT_FIGURES`` of docs/conf.py."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # conf.py prepends the docs' folders
    with warnings.catch_warnings():
        conf = runpy.run_path(str(DOCS / "conf.py"))
    return conf["results_figures"], [name for name, _, _ in conf["RESULT_FIGURES"]]


def test_results_page_embeds_the_recorded_figures(results_figures, tmp_path):
    render, names = results_figures
    assert names == ["figure6.png", "embeddings.png", "learning_curve.png"]
    for name in names[:2]:
        (tmp_path / name).write_bytes(b"png")
    text = render(tmp_path)
    # Each recorded figure is a MyST figure whose "/"-rooted path Sphinx reads from docs/.
    sources = [line.split(maxsplit=1)[1] for line in text.splitlines() if line.startswith("```{figure}")]
    assert [(DOCS / s.lstrip("/")).resolve() for s in sources] == [(tmp_path / n).resolve() for n in names[:2]]
    # The figure not recorded yet is named instead of shown.
    assert "Not recorded yet: `learning_curve.png`" in text
    (tmp_path / names[2]).write_bytes(b"png")
    assert "Not recorded yet" not in render(tmp_path)


def test_results_page_shows_every_recorded_figure(results_figures):
    """A figure the report starts writing needs its caption in RESULT_FIGURES to be shown."""
    render, names = results_figures
    folder = DOCS.parent / "experiments" / "results" / "lunarlander-cpu"
    recorded = sorted(p.name for p in folder.glob("*.png"))
    if not recorded:
        pytest.skip("no recorded run committed")
    assert not set(recorded) - set(names), "add the new figures to RESULT_FIGURES in docs/conf.py"
    text = render(folder)
    assert all(f"/{name}\n" in text for name in recorded)
