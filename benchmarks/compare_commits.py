"""A/B the whole ``fit`` of an older commit against the working tree.

Usage: ``python benchmarks/compare_commits.py [COMMIT [REPS [N]]]`` (default 9cf04d6,
the library before the issue-6 optimisations). Both package copies run in
this one process, alternating, so that machine load hits them alike.
"""

import importlib
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(root):
    for name in [k for k in sys.modules if k.startswith("skperceptual")]:
        del sys.modules[name]
    sys.path.insert(0, root)
    try:
        return importlib.import_module("skperceptual").PerceptualAETransformer
    finally:
        sys.path.pop(0)


def main(commit="9cf04d6", reps=3, n=2048):
    old_root = tempfile.mkdtemp()
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "skperceptual"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", old_root], input=archive, check=True)
    contenders = {"old": load(old_root), "new": load(ROOT)}
    X = np.random.default_rng(0).integers(0, 256, (int(n), 3, 64, 64), dtype=np.uint8)
    for loss in ("pixel", "perceptual"):
        res = {k: [] for k in contenders}
        for _ in range(int(reps)):
            for key, cls in contenders.items():
                ae = cls(z_dim=64, max_epochs=1, batch_size=512, loss=loss, perceptual_weights=None,
                         validation_fraction=0.2, device="cpu", random_state=0).fit(X)
                res[key].append((len(X) / ae.fit_time_, ae.history_[-1]["valid_loss"]))
        print(f"{commit} vs working tree, {loss}, {len(X)} images 64x64, batch 512, 20% validation, "
              f"load {os.getloadavg()[0]:.1f}")
        for (o, lo), (nw, ln) in zip(res["old"], res["new"]):
            print(f"  old {o:.0f} img/s, new {nw:.0f} img/s, speed-up {nw / o:.2f}x; "
                  f"valid loss old {lo:.6f} new {ln:.6f} ({ln / lo - 1:+.2e})", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
