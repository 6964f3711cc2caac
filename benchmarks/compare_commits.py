"""A/B the whole ``fit`` of two commits (or a commit and the working tree).

Usage::

    python benchmarks/compare_commits.py [COMMIT [REPS [N]]] [--new COMMIT] [--precision bf16]

COMMIT defaults to 9cf04d6, the library before its first speed optimisations;
``--new`` defaults to the working tree. Both package copies run in this one
process: each first fits the data once untimed (the first fit of a process
pays oneDNN's kernel generation and the optimiser's first imports), then
the timed fits alternate, in reverse order every other repetition, so that
machine load and drift hit them alike. Prints each repetition and the
median (min-max) speed-up per loss.
"""

import argparse
import importlib
import os
import pkgutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ours(name):
    """Whether ``name`` is the name of skperceptual or one of its modules."""
    return name == "skperceptual" or name.startswith("skperceptual.")


def _use(modules):
    """Make ``modules`` (a package's ``skperceptual*`` entries) the ones imports find."""
    for name in [k for k in sys.modules if _ours(k)]:
        del sys.modules[name]
    sys.modules.update(modules)


def load(root):
    """The estimator class of the package at ``root``, and all of that package's modules.

    The modules are kept apart so that each contender's lazy imports (a
    function's ``from .perceptual import ...``) find its own package: see
    :func:`_use`, called before each fit.
    """
    _use({})
    sys.path.insert(0, root)
    try:
        package = importlib.import_module("skperceptual")
        cls = package.PerceptualAETransformer
        # Some modules are imported lazily: load every one now, subpackages' too.
        for module in pkgutil.walk_packages(package.__path__, prefix="skperceptual."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)
    finally:
        sys.path.pop(0)
    return cls, {k: v for k, v in sys.modules.items() if _ours(k)}


def checkout(commit):
    """The package of ``commit``, extracted into a temporary folder; its path."""
    root = tempfile.mkdtemp()
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "skperceptual"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", root], input=archive, check=True)
    return root


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commit", nargs="?", default="9cf04d6", help="the old commit")
    parser.add_argument("reps", nargs="?", type=int, default=3)
    parser.add_argument("n", nargs="?", type=int, default=2048, help="images per fit")
    parser.add_argument("--new", help="the new commit (default: the working tree)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    args = parser.parse_args()
    new_name = args.new or "working tree"
    contenders = {"old": load(checkout(args.commit)), "new": load(checkout(args.new) if args.new else ROOT)}
    if args.precision != "fp32":
        for key, (cls, _) in contenders.items():
            if "precision" not in cls().get_params():
                parser.error(f"--precision {args.precision}: the {key} commit has no precision parameter (fp32 only)")
    X = np.random.default_rng(0).integers(0, 256, (args.n, 3, 64, 64), dtype=np.uint8)
    for loss in ("pixel", "perceptual"):

        # Commits before mixed precision know no precision parameter (fp32).
        extra = {} if args.precision == "fp32" else {"precision": args.precision}

        def fit(contender):
            cls, modules = contender
            _use(modules)
            ae = cls(z_dim=64, max_epochs=1, batch_size=512, loss=loss, perceptual_weights=None,
                     validation_fraction=0.2, device="cpu", random_state=0, **extra).fit(X)
            return len(X) / ae.fit_time_, ae.history_[-1]["valid_loss"]

        for contender in contenders.values():
            fit(contender)  # untimed warm-up
        res = {k: [] for k in contenders}
        for rep in range(args.reps):
            for key in (("old", "new") if rep % 2 == 0 else ("new", "old")):
                res[key].append(fit(contenders[key]))
        print(f"{args.commit} vs {new_name}, {loss}, {args.precision}, {len(X)} images 64x64, batch 512, "
              f"20% validation, load {os.getloadavg()[0]:.1f}")
        for (o, lo), (nw, ln) in zip(res["old"], res["new"]):
            print(f"  old {o:.0f} img/s, new {nw:.0f} img/s, speed-up {nw / o:.2f}x; "
                  f"valid loss old {lo:.6f} new {ln:.6f} ({ln / lo - 1:+.2e})", flush=True)
        ups = [nw / o for (o, _), (nw, _) in zip(res["old"], res["new"])]
        print(f"  speed-up {statistics.median(ups):.3f}x ({min(ups):.3f}x-{max(ups):.3f}x)", flush=True)


if __name__ == "__main__":
    main()
