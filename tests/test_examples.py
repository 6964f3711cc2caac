"""The gallery examples (``examples/plot_*.py``) are run by the docs build.

``make -C docs html`` executes every example (sphinx-gallery, see
``docs/conf.py``), stops at the first one that raises and fails when one
draws no figure; CI's docs step is therefore the examples' test, and this
suite does not run them a second time. These tests keep it that way: every
example is picked up by the gallery, and the build executes them by default.
Run one example alone with ``python examples/plot_01_lunarlander_position.py``.
"""

import re
import runpy
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.fixture
def gallery_conf(monkeypatch):
    """``sphinx_gallery_conf`` and the namespace of docs/conf.py, as a plain docs build reads them."""
    monkeypatch.delenv("SKPERCEPTUAL_DOCS_RUN_GALLERY", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))  # conf.py prepends the docs' folders
    with warnings.catch_warnings():  # and adds a warnings filter
        conf = runpy.run_path(str(ROOT / "docs" / "conf.py"))
    return conf["sphinx_gallery_conf"], conf


def test_examples_found():
    assert len(EXAMPLES) >= 5


def test_docs_build_executes_every_example(gallery_conf):
    gallery, _ = gallery_conf
    assert gallery["plot_gallery"], "the docs build no longer executes the gallery"
    assert gallery["abort_on_example_error"], "a failing example would not fail the docs build"
    assert (ROOT / "docs" / gallery["examples_dirs"]).resolve() == ROOT / "examples"
    # sphinx-gallery executes only the files matching filename_pattern (and lists the rest unrun).
    unrun = [p.name for p in EXAMPLES if not re.search(gallery["filename_pattern"], "/" + p.name)]
    assert not unrun, f"not executed by the docs build (rename them plot_*.py): {unrun}"


def test_docs_build_checks_every_example_drew_a_figure(gallery_conf, tmp_path):
    gallery, conf = gallery_conf
    docs = tmp_path / "docs"
    images = docs / gallery["gallery_dirs"] / "images"
    images.mkdir(parents=True)
    examples = docs / gallery["examples_dirs"]
    examples.mkdir(parents=True, exist_ok=True)
    for name in ("plot_01_a.py", "plot_02_b.py"):
        (examples / name).write_text("")
    (images / "sphx_glr_plot_01_a_001.png").write_bytes(b"")
    assert conf["missing_gallery_figures"](docs) == ["plot_02_b.py"]
    (images / "sphx_glr_plot_02_b_001.png").write_bytes(b"")
    assert conf["missing_gallery_figures"](docs) == []
