"""Data that stays on disk: fit and transform on a uint8 memory map against the same images in RAM.

Usage::

    python benchmarks/memmap.py --results benchmarks/results/memmap-cpu.json   # 200,000 images, 2.5 GB
    python benchmarks/memmap.py --n-images 20000                                # a quick look

Writes a generated uint8 array of ``--n-images`` 64x64 RGB images to a
``.npy`` file in ``--dir`` (default: a temporary folder, removed at the
end). Then, each in a fresh process:

- ``memmap``: the file opened with ``np.load(path, mmap_mode="r")``, after
  its pages are dropped from the page cache (``posix_fadvise``), so that
  the first epoch reads from disk;
- ``ram``: the same file read into memory first.

Each process runs a one-epoch perceptual ``fit`` and a ``transform`` of all
images and reports, for each, its throughput and its peak anonymous memory
(``RssAnon`` in ``/proc/self/status``, polled every 20 ms) above its value
before the call. A memory map's pages are page cache, counted in ``RssFile``:
a copy of the images would show in ``RssAnon``. The in-RAM images themselves
are counted before the call, so both modes measure what the call adds.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SHAPE = (3, 64, 64)


def rss_anon_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")


class PeakAnon:
    """The peak of RssAnon above its value at entry, polled in a thread."""

    def __enter__(self):
        self.start, self.peak = rss_anon_mib(), 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_anon_mib() - self.start)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_anon_mib() - self.start)


def write_images(path, n, seed=0):
    """``n`` images as a uint8 .npy file, written in chunks: a moving square on a noisy background."""
    images = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, *SHAPE))
    rng = np.random.default_rng(seed)
    for start in range(0, n, 10_000):
        chunk = rng.integers(0, 64, (min(10_000, n - start), *SHAPE), dtype=np.uint8)
        for i, image in enumerate(chunk):
            r, c = (start + i) * 7 % 56, (start + i) * 3 % 56
            image[:, r : r + 8, c : c + 8] = 255
        images[start : start + len(chunk)] = chunk
    images.flush()
    del images


def drop_from_page_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def measure(path, mode, batch_size, precision):
    """Child process: one fit and one transform; return the measurements."""
    from skperceptual import PerceptualAETransformer

    if mode == "memmap":
        drop_from_page_cache(path)
        X = np.load(path, mmap_mode="r")
    else:
        X = np.load(path)
    ae = PerceptualAETransformer(loss="perceptual", max_epochs=1, batch_size=batch_size, validation_fraction=None,
                                 precision=precision, device="cpu", random_state=0)
    out = {"mode": mode, "n": len(X), "anon_before_mib": rss_anon_mib()}
    with PeakAnon() as fit_mem:
        start = time.perf_counter()
        ae.fit(X)
        out["fit_s"] = time.perf_counter() - start
    with PeakAnon() as transform_mem:
        start = time.perf_counter()
        Z = ae.transform(X)
        out["transform_s"] = time.perf_counter() - start
    out.update(fit_peak_anon_mib=fit_mem.peak, transform_peak_anon_mib=transform_mem.peak,
               fit_img_s=len(X) / out["fit_s"], transform_img_s=len(X) / out["transform_s"],
               embedding_mib=Z.nbytes / 2**20)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-images", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--dir", default=None, help="folder of the image file (default: a temporary one)")
    parser.add_argument("--modes", nargs="+", default=["memmap", "ram"], choices=["memmap", "ram"])
    parser.add_argument("--results", default=None, help="write the measurements to this JSON file")
    parser.add_argument("--child", nargs=2, metavar=("PATH", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child[0], args.child[1], args.batch_size, args.precision)))
        return 0

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = os.path.join(folder, "images.npy")
        start = time.perf_counter()
        write_images(path, args.n_images)
        size = os.path.getsize(path) / 2**30
        print(f"wrote {args.n_images} images ({size:.2f} GiB) in {time.perf_counter() - start:.0f}s", flush=True)
        runs = []
        for mode in args.modes:
            child = subprocess.run([sys.executable, __file__, "--child", path, mode, "--batch-size",
                                    str(args.batch_size), "--precision", args.precision],
                                   capture_output=True, text=True, check=False)
            if child.returncode:
                sys.exit(f"the {mode} run failed:\n{child.stderr[-3000:]}")
            runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
            r = runs[-1]
            print(f"{mode:>6}: fit {r['fit_img_s']:.0f} img/s, peak anon +{r['fit_peak_anon_mib']:.0f} MiB; "
                  f"transform {r['transform_img_s']:.0f} img/s, peak anon +{r['transform_peak_anon_mib']:.0f} MiB",
                  flush=True)
    by_mode = {r["mode"]: r for r in runs}
    if {"memmap", "ram"} <= set(by_mode):
        for what in ("fit", "transform"):
            ratio = by_mode["memmap"][f"{what}_img_s"] / by_mode["ram"][f"{what}_img_s"]
            print(f"{what}: memmap runs at {ratio:.2f}x the in-RAM throughput")
    if args.results:
        import skorch
        import torch
        from run import cpu_model

        meta = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
                "torch": torch.__version__, "skorch": skorch.__version__, "date": datetime.date.today().isoformat(),
                "image_file_gib": size, "batch_size": args.batch_size, "precision": args.precision,
                "command": "python benchmarks/memmap.py " + " ".join(argv if argv is not None else sys.argv[1:])}
        Path(args.results).write_text(json.dumps({"memmap": runs, "meta": meta}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
