"""Time of the protocol's bootstrap confidence intervals on a test set's size.

Every head's test score gets two intervals from
:func:`skperceptual.protocol._metrics.bootstrap_ci`, so it must stay cheap
beside the head search. Target: both intervals (frame and rollout
resampling, 1,000 resamples each) on 26,000 values, a LunarLander test set
at the paper's size, in under 2 s. Exits with status 1 when the median
misses it::

    python benchmarks/bootstrap_ci.py
"""

import argparse
import statistics
import sys
import time

import numpy as np

from skperceptual.protocol._metrics import bootstrap_ci

TARGET_S = 2.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=26_000, help="values in the test set (default: 26000)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions (default: 5)")
    args = parser.parse_args(argv)
    values = np.random.default_rng(0).random(args.n)
    groups = np.arange(args.n) // 150  # rollouts of 150 frames
    times = []
    for _ in range(args.reps):
        start = time.perf_counter()
        bootstrap_ci(values)
        bootstrap_ci(values, groups=groups)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"both intervals on {args.n:,} values: median {median:.3f} s "
          f"(min {min(times):.3f}, max {max(times):.3f}; {args.reps} reps); target < {TARGET_S} s: "
          f"{'met' if median < TARGET_S else 'missed'}")
    return 0 if median < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
