"""Checks of what the documentation states.

The user guide's small-object figure (``docs/user_guide/perceptual_loss.rst``)
quotes pixel and perceptual distances; this test recomputes them, so the
page cannot drift from the code.
"""

import importlib.util
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
    import skperceptual.perceptual as perceptual

    api = (DOCS / "api.rst").read_text()
    names = [n for n in skperceptual.__all__ if n != "__version__"] + list(skperceptual.datasets.__all__)
    names += [n for n in ("load_perceptual_net", "PerceptualLoss", "PixelLoss", "n_layers",
                          "check_perceptual_net", "PERCEPTUAL_NETS") if hasattr(perceptual, n)]
    missing = [n for n in names if n not in api]
    assert not missing, f"not in docs/api.rst: {missing}"
