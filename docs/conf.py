"""Sphinx configuration of the skperceptual documentation.

Build with ``make -C docs html`` (warnings are errors). The gallery in
``../examples`` is rendered without running it unless
``SKPERCEPTUAL_DOCS_RUN_GALLERY=1`` is set; ``tests/test_examples.py`` runs
every example in CI either way.
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
RUN_GALLERY = os.environ.get("SKPERCEPTUAL_DOCS_RUN_GALLERY", "0") == "1"
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

_tables = ROOT / "experiments" / "results" / "lunarlander-cpu" / "tables.md"
_intro = (
    "# Results\n\nThe tables of the latest recorded experiment, "
    "`skperceptual experiment --dataset lunarlander --profile cpu`, next to the paper's numbers "
    "(from `experiments/results/lunarlander-cpu/tables.md`). "
    "{doc}`user_guide/reproducing` explains how to produce your own.\n\n"
)
if _tables.is_file():
    _text = _intro + _demote(_tables.read_text())
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
