"""Sphinx configuration of the skperceptual documentation.

Build with ``make -C docs html`` (warnings are errors). The build executes
the gallery in ``../examples`` and stops at the first example that fails or
draws no figure, so it is the examples' test (CI's docs step; the test suite
does not run them again). ``SKPERCEPTUAL_DOCS_RUN_GALLERY=0`` gives a quick
build whose gallery pages show code only.
"""

import os
import sys
import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "user_guide"))  # the guide's figure helpers
os.environ.setdefault("MPLBACKEND", "Agg")

import skperceptual  # noqa: E402

project = "skperceptual"
author = "the skperceptual developers"
copyright = "2026, the skperceptual developers"
release = skperceptual.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
    "matplotlib.sphinxext.plot_directive",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "generated/*_include.md", "benchmarks.md", "experiments/**", "user_guide/_*.py", "Thumbs.db", ".DS_Store", "**/README.md", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.codeobj.json",
                    "auto_examples/*.md5"]

# -- API reference ---------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autosummary_ignore_module_all = False
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# No network: no intersphinx inventories are fetched.
intersphinx_mapping = {}

# -- Gallery ---------------------------------------------------------------
# Executed by default: the pages show the examples' figures and output. The
# examples take seconds each; they resolve perceptual_weights="imagenet" like
# any user code (``.ci/run`` registers the offline weights first).
RUN_GALLERY = os.environ.get("SKPERCEPTUAL_DOCS_RUN_GALLERY", "1") != "0"
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "plot_gallery": RUN_GALLERY,
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "show_memory": False,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "reset_modules": ("matplotlib",),
    "min_reported_time": 1,
}


def missing_gallery_figures(docs=DOCS):
    """Names of the examples whose executed gallery page has no figure."""
    images = docs / sphinx_gallery_conf["gallery_dirs"] / "images"
    examples = sorted((docs / sphinx_gallery_conf["examples_dirs"]).glob("plot_*.py"))
    return [p.name for p in examples if not (images / f"sphx_glr_{p.stem}_001.png").is_file()]


def _check_gallery_figures(app, exception):
    # A gallery page without a figure is a failed example here: the warning fails the -W build.
    # (Imported here: the tests read this file without Sphinx installed.)
    from sphinx.util import logging

    if exception is None and RUN_GALLERY:
        for name in missing_gallery_figures():
            logging.getLogger(__name__).warning(f"gallery example {name} drew no figure")


def setup(app):
    app.connect("build-finished", _check_gallery_figures)


# Reading the saved gallery pages without executing them otherwise warns.
warnings.filterwarnings("ignore", category=UserWarning,
                        message="Matplotlib is currently using agg")

# -- Figures of the user guide (``.. plot::``) -------------------------------
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.autolayout": True}
plot_pre_code = "import numpy as np\nimport matplotlib.pyplot as plt\n"

# -- Included pages written by other parts of the project --------------------
# benchmarks.md (perf) and the latest experiment tables are included when they
# exist; otherwise the pages say the numbers are pending.
def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


_GENERATED = DOCS / "generated"


def _demote(markdown):
    """Push every Markdown heading one level down (outside code fences)."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        out.append("#" + line if not fenced and line.startswith("#") else line)
    return "\n".join(out) + "\n"


_bench = DOCS / "benchmarks.md"
if _bench.is_file():
    _text = _bench.read_text()
    if not _text.lstrip().startswith("# "):
        _text = "# Benchmarks\n\n" + _text
else:
    _text = (
        "# Benchmarks\n\n```{note}\nBenchmarks are pending: `docs/benchmarks.md` has not been "
        "written yet. The benchmark scripts are in `benchmarks/`.\n```\n"
    )
_write(_GENERATED / "benchmarks_include.md", _text)

_RESULTS = ROOT / "experiments" / "results" / "lunarlander-cpu"

#: The recorded figures of the Results page: (file, title, what to look for).
RESULT_FIGURES = (
    ("figure6.png", "Reconstructions (the paper's Figure 6)",
     "Look at the magnified crops around the true lander position (red): a reconstruction that keeps the "
     "small lander shows it there, and the crop L1 under each frame says how much of it survived, whatever "
     "the L1 of the whole frame; the retrained rows show what a plain pixel decoder recovers from each "
     "encoder's embedding."),
    ("embeddings.png", "Embeddings",
     "Each panel is a 2-D PCA of one variant's test embeddings, coloured by the lander's x position: look for "
     "colours that change smoothly along the point clouds, a sign that the embedding follows the position the "
     "heads read out; two components show only part of the embedding, so the tables' errors are the test."),
    ("learning_curve.png", "Learning curve",
     "The heads' test error against the number of images the autoencoder has seen (log scales): look at "
     "where the perceptual (red) curves sit against the pixel (blue) ones, the predict-the-mean line and the "
     "paper's errors, and whether the curves still fall at the right edge (then more training would help)."),
)


def results_figures(folder, docs=DOCS):
    """MyST figures of the recorded PNGs in ``folder``, and a note naming any not recorded yet."""
    folder = Path(folder)
    parts, missing = ["## Figures\n"], []
    for name, title, caption in RESULT_FIGURES:
        path = folder / name
        if not path.is_file():
            missing.append(f"`{name}`")
            continue
        # "/" makes Sphinx read the path from the source folder, whichever page includes this text.
        source = "/" + Path(os.path.relpath(path.resolve(), docs.resolve())).as_posix()
        parts.append(f"### {title}\n\n```{{figure}} {source}\n:alt: {title}\n:width: 100%\n\n{caption}\n```\n")
    if missing:
        parts.append(f"```{{note}}\nNot recorded yet: {', '.join(missing)}.\n```\n")
    return "\n".join(parts) + "\n"


_tables = _RESULTS / "tables.md"
#: What the recorded experiments show, with their commands: the top of the Results page.
_FINDINGS = ROOT / "experiments" / "results" / "README.md"
_BUDGET = ROOT / "experiments" / "results" / "budget-curve" / "budget_curve.png"
_intro = (
    "# Results\n\nWhat the recorded experiments under `experiments/results/` show, then the figures and "
    "tables of the recorded `skperceptual experiment --dataset lunarlander --profile cpu` run next to the "
    "paper's numbers (from `experiments/results/lunarlander-cpu/`). "
    "{doc}`user_guide/reproducing` explains how to produce your own.\n\n"
)


def findings(readme=_FINDINGS, budget=_BUDGET, docs=DOCS):
    """The findings page of ``experiments/results``, demoted under the Results title, with the budget curve."""
    if not Path(readme).is_file():
        return ""
    text = _demote(Path(readme).read_text())
    if Path(budget).is_file():
        source = "/" + Path(os.path.relpath(Path(budget).resolve(), docs.resolve())).as_posix()
        text += (f"\n```{{figure}} {source}\n:alt: Budget curve\n:width: 100%\n\nHead test error of the pixel "
                 "(blue) and the perceptual (red) AE at z = 64 against the images each has seen, with the "
                 "training-free baselines and the mean as horizontal lines (from "
                 "`experiments/results/budget-curve/`).\n```\n")
    return text + "\n"


if _tables.is_file():
    _text = _intro + findings() + results_figures(_RESULTS) + _demote(_tables.read_text())
else:
    _text = _intro + (
        "```{note}\nNo recorded results yet: `experiments/results/lunarlander-cpu/tables.md` "
        "has not been committed.\n```\n"
    )
_write(_GENERATED / "results_include.md", _text)

import skperceptual.protocol as _protocol  # noqa: E402

_text = (
    "Evaluation protocol\n===================\n\n"
    ".. automodule:: skperceptual.protocol\n   :no-members:\n   :no-index:\n\n"
    ".. currentmodule:: skperceptual.protocol\n\n"
    ".. autosummary::\n   :toctree: generated/\n   :template: function.rst\n\n"
    + "".join(f"   {n}\n" for n in sorted(_protocol.__all__))
)
_write(DOCS / "api_protocol.rst", _text)

# -- HTML ------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skperceptual {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "getting_started": []}
html_show_sourcelink = False
myst_heading_anchors = 3
suppress_warnings = ["config.cache"]
