"""Resident memory taken by importing what a fit needs, before any data.

Run it with each Python environment to compare torch builds, e.g. the
default (CUDA) wheel against the CPU-only one::

    python benchmarks/import_memory.py

The peak RSS that ``benchmarks/run.py`` reports for a fit includes these
megabytes. ``torch.optim``'s optimisers import ``torch._dynamo`` on their
first use, so that import is part of every fit.
"""

import resource


def resident_mb():
    """The process's resident set size now, in MB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main():
    import numpy  # noqa: F401  (every stage below needs it)

    start = resident_mb()
    stages = []

    import torch

    stages.append(("torch", resident_mb()))
    module = torch.nn.Linear(3, 3)
    torch.optim.Adam(module.parameters()).zero_grad()
    stages.append(("an optimiser (imports torch._dynamo)", resident_mb()))
    import sklearn.base  # noqa: F401
    import skorch  # noqa: F401

    stages.append(("scikit-learn and skorch", resident_mb()))

    cuda = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only"
    print(f"torch {torch.__version__} ({cuda} build)")
    previous = start
    for name, now in stages:
        print(f"  + {name:<38} {now - previous:6.0f} MB")
        previous = now
    print(f"  = imports in all                         {previous - start:6.0f} MB")


if __name__ == "__main__":
    main()
