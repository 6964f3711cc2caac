"""The package's layers: lower ones never import upper ones, no import cycles, public paths kept."""

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "skperceptual"

#: Bottom to top. A module may import its own layer and the ones below.
LAYERS = {
    "_atomic": 0,
    "kernels": 0,
    "datasets": 1,
    "models": 1,
    "losses": 2,
    "training": 2,
    "estimators": 3,
    "protocol": 4,
    "cli": 5,
    "__main__": 6,
}

#: The public import paths that re-export a module of a layer (users import
#: from them; the library itself imports the implementation).
PUBLIC_ALIASES = {
    "perceptual": "losses.perceptual",
    "loss_networks": "losses.networks",
    "weights": "losses.weights",
    "callbacks": "training.callbacks",
}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path, parts[-1] == "__init__"


def _imports(name, path, is_package):
    """The package modules that ``name`` imports, at any depth of its code, as dotted names below the package."""
    parts = name.split(".") if name else []
    package = parts if is_package else parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            if node.module is None or not target:
                # "from . import x" or "from .. import x": x may be a module
                found.update(".".join(filter(None, [target, alias.name])) for alias in node.names)
            else:
                found.add(target)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            found.update(n[len("skperceptual."):] for n in names if n and n.startswith("skperceptual."))
    known = {m for m, _, _ in _modules()}
    # A name imported from a package (not a module of it) counts as the package.
    return {t if t in known else t.rsplit(".", 1)[0] for t in found if t and t != name} & (known | {""})


def _layer(module):
    top = module.split(".")[0]
    if top in PUBLIC_ALIASES:
        top = PUBLIC_ALIASES[top].split(".")[0]
    return LAYERS.get(top)


GRAPH = {name: _imports(name, path, is_package) for name, path, is_package in _modules()}


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m and _layer(m) is not None))
def test_no_module_imports_a_higher_layer_or_a_public_alias(module):
    for target in GRAPH[module]:
        if target == "":  # the package root: only its __version__ is read below the top
            continue
        assert target.split(".")[0] not in PUBLIC_ALIASES, f"{module} imports the public alias {target}"
        assert _layer(target) is not None and _layer(target) <= _layer(module), f"{module} imports {target}"


def test_every_module_belongs_to_a_layer():
    top_level = {m.split(".")[0] for m in GRAPH if m}
    assert top_level <= set(LAYERS) | set(PUBLIC_ALIASES)


def test_no_import_cycles():
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", " -> ".join(path + [module])
        state[module] = "open"
        for target in sorted(GRAPH.get(module, ())):
            if target:
                visit(target, path + [module])
        state[module] = "done"

    for module in sorted(GRAPH):
        visit(module, [])


@pytest.mark.parametrize("alias, implementation", sorted(PUBLIC_ALIASES.items()))
def test_public_paths_re_export_their_implementation(alias, implementation):
    public = importlib.import_module(f"skperceptual.{alias}")
    module = importlib.import_module(f"skperceptual.{implementation}")
    assert public.__doc__ == module.__doc__ and public.__all__
    for name in public.__all__:
        assert getattr(public, name) is getattr(module, name), name


def test_the_documented_import_paths_work():
    from skperceptual import FrozenFeatureTransformer, PerceptualAETransformer  # noqa: F401
    from skperceptual.__main__ import main  # noqa: F401
    from skperceptual.callbacks import DivergenceGuard, EmbeddingCheckpoints  # noqa: F401
    from skperceptual.datasets import load_lunarlander  # noqa: F401
    from skperceptual.loss_networks import LossNetwork, layer_names  # noqa: F401
    from skperceptual.perceptual import PerceptualLoss, load_perceptual_net  # noqa: F401
    from skperceptual.protocol import run_protocol  # noqa: F401
    from skperceptual.weights import fetch_weights, imagenet_state_dict  # noqa: F401
