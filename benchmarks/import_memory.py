"""Resident memory taken by importing what a fit needs, before any data.

Run it with each Python environment to compare torch builds, e.g. the
default (CUDA) wheel against the CPU-only one::

    python benchmarks/import_memory.py

The peak RSS that ``benchmarks/run.py`` reports for a fit includes these
megabytes. ``torch.optim``'s optimisers import ``torch._dynamo`` on their
first use, so that import is part of every fit.

Each stage is split into anonymous memory (the process's own, which
includes the shared libraries' relocated data) and file-backed pages (the
libraries' code and read-only data, shared with other processes and
reclaimable by the kernel); RSS counts both.
"""

import resource


def resident_mb():
    """The process's resident set size now, in MiB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def memory_mb():
    """``(resident, anonymous, file-backed)`` MiB now, from ``/proc/self/status`` (Linux)."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value
    return tuple(int(fields[key].split()[0]) / 2**10 for key in ("VmRSS", "RssAnon", "RssFile"))


def main():
    import numpy  # noqa: F401  (every stage below needs it)

    start = memory_mb()
    stages = []

    import torch

    stages.append(("torch", memory_mb()))
    module = torch.nn.Linear(3, 3)
    torch.optim.Adam(module.parameters()).zero_grad()
    stages.append(("an optimiser (imports torch._dynamo)", memory_mb()))
    import sklearn.base  # noqa: F401
    import skorch  # noqa: F401

    stages.append(("scikit-learn and skorch", memory_mb()))

    cuda = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only"
    print(f"torch {torch.__version__} ({cuda} build)")
    print(f"  {'':<40} {'RSS':>6}    {'anon':>6}    {'file':>6}")
    previous = start
    for name, now in stages:
        cells = "  ".join(f"{a - b:6.0f} MiB" for a, b in zip(now, previous))
        print(f"  + {name:<38} {cells}")
        previous = now
    cells = "  ".join(f"{a - b:6.0f} MiB" for a, b in zip(previous, start))
    print(f"  = {'imports in all':<38} {cells}")


if __name__ == "__main__":
    main()
