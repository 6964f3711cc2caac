"""Benchmark LunarLander generation and loading.

Compares ``make_lunarlander`` throughput (frames/s) with a bare loop of
``env.step`` + ``env.render()`` + PIL bicubic resize on the same number of
processes, extrapolates the time of the full 1400 x 150 collection, and
measures the peak memory of loading a cached collection.

Usage::

    python benchmarks/bench_lunarlander.py [--rollouts 8] [--steps 150] [--repeat 2]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
from joblib import Parallel, delayed

FULL_FRAMES = 1400 * 150


def bare_loop(n_frames, seed):
    """What a straightforward generator would do, without bookkeeping."""
    import gymnasium as gym
    from PIL import Image

    env = gym.make("LunarLander-v3", render_mode="rgb_array")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(n_frames):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        frame = env.render()
        np.asarray(Image.fromarray(frame).resize((64, 64), Image.BICUBIC))
        if terminated or truncated:
            env.reset()
    env.close()


def bare_fps(n_jobs, n_frames_per_job):
    # Start the workers first so that pool start-up is not timed here; the
    # library's timing below includes its own start-up, which only makes the
    # comparison harsher on the library.
    with Parallel(n_jobs=n_jobs) as par:
        par(delayed(int)(0) for _ in range(n_jobs))
        start = time.perf_counter()
        par(delayed(bare_loop)(n_frames_per_job, i) for i in range(n_jobs))
        return n_jobs * n_frames_per_job / (time.perf_counter() - start)


def make_fps(n_jobs, n_rollouts, n_steps):
    from skperceptual.datasets import make_lunarlander

    start = time.perf_counter()
    make_lunarlander(n_rollouts, n_steps, random_state=0, n_jobs=n_jobs)
    return n_rollouts * n_steps / (time.perf_counter() - start)


def load_peak(n_rollouts, n_steps, n_jobs):
    """Peak RSS increase of loading a cached collection, in a fresh process."""
    from skperceptual.datasets import load_lunarlander

    home = tempfile.mkdtemp(prefix="bench-lunar-")
    load_lunarlander(data_home=home, n_rollouts=n_rollouts, n_steps=n_steps, n_jobs=n_jobs)
    load_lunarlander(data_home=home, n_rollouts=4, n_steps=25)
    script = textwrap.dedent(f"""
        import json, time
        from skperceptual.datasets import load_lunarlander
        def status(key):
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key))
        # A tiny load first, so that imports and allocator set-up are not
        # counted: what is left scales with the collection.
        load_lunarlander(data_home={home!r}, n_rollouts=4, n_steps=25)
        # Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS.
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = status("VmRSS")
        start = time.perf_counter()
        d = load_lunarlander(data_home={home!r}, n_rollouts={n_rollouts},
                             n_steps={n_steps}, download_if_missing=False)
        seconds = time.perf_counter() - start
        peak = status("VmHWM")
        nbytes = sum(v.nbytes for p in ("autoencoder", "predictor", "test")
                     for v in d[p].values() if v is not None)
        print(json.dumps(dict(peak=peak - before, nbytes=nbytes, seconds=seconds)))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=8, help="rollouts per process")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each, interleaved; the best is kept, since "
                             "other processes on a shared machine only slow runs down")
    args = parser.parse_args()

    rows = []
    for n_jobs in (1, 2):
        frames = args.rollouts * args.steps
        bare = ours = 0.0
        for _ in range(args.repeat):
            bare = max(bare, bare_fps(n_jobs, frames))
            ours = max(ours, make_fps(n_jobs, n_jobs * args.rollouts, args.steps))
        rows.append((n_jobs, bare, ours))

    print(f"{'n_jobs':>6} {'bare fps':>9} {'make fps':>9} {'ratio':>6} {'full (min)':>10}")
    for n_jobs, bare, ours in rows:
        print(f"{n_jobs:>6} {bare:>9.1f} {ours:>9.1f} {ours / bare:>6.2f} "
              f"{FULL_FRAMES / ours / 60:>10.1f}")

    mem = load_peak(2 * args.rollouts, args.steps, n_jobs=2)
    ratio = mem["peak"] / mem["nbytes"]
    full_bytes = mem["nbytes"] * FULL_FRAMES / (2 * args.rollouts * args.steps)
    print(f"\nload: {mem['nbytes'] / 2**20:.1f} MiB of arrays, peak RSS increase "
          f"{mem['peak'] / 2**20:.1f} MiB ({ratio:.2f}x), {mem['seconds']:.2f} s")
    print(f"full collection (extrapolated): {full_bytes / 2**30:.2f} GiB of arrays, "
          f"peak ~{ratio * full_bytes / 2**30:.2f} GiB, load "
          f"~{mem['seconds'] * full_bytes / mem['nbytes']:.0f} s")


if __name__ == "__main__":
    main()
