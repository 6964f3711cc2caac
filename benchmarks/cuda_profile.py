"""Where a CUDA fit's time goes: steady-state throughput, a bare loop, GPU busy time.

Usage::

    python benchmarks/cuda_profile.py                  # on a CUDA GPU
    python benchmarks/cuda_profile.py --device cpu --n 2048 --epochs 2   # smoke test

For each loss and precision it prints, median (min-max) over ``--reps``
alternating repetitions:

- ``fit``: train + validation images per second of ``PerceptualAETransformer``,
  from the epochs after the first (skorch's per-epoch ``dur``), so that CUDA's
  start-up and cuDNN's first calls are left out;
- ``bare``: the same module, criterion, optimiser, batches and validation pass
  in a plain PyTorch loop (pinned uint8 batches, non-blocking copies, no
  skorch, no callbacks): what the estimator's bookkeeping costs;
- ``GPU-bound``: the images per second that the GPU's kernels and copies
  alone would allow (their time in one profiled epoch, ``torch.profiler``);
- ``GPU busy``: that kernel time per image over the fit's steady-state wall
  time per image. Well under 100% means the host (Python, kernel launches,
  batch gathering) sets the pace.
"""

import argparse
import os
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from run import lunar_frames, our_estimator, spread  # noqa: E402

from skperceptual.training.allocator import retain_freed_memory  # noqa: E402


def steady_fit(X, loss, precision, device, epochs, batch):
    """Images per second of the epochs after the first, and the fitted estimator."""
    ae = our_estimator(batch, loss, device=device, precision=precision, max_epochs=epochs).fit(X)
    later = [row["dur"] for row in ae.history_[1:]]
    return len(X) / statistics.median(later), ae


def synchronize(device):
    """Wait for ``device``'s queued work, so that a host clock reads its end."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def bare_epochs(ae, X, epochs):
    """The fitted net's module, criterion and optimiser in a plain loop; img/s after epoch 1."""
    net = ae.net_
    module, criterion, optimizer = net.module_, net.criterion_, net.optimizer_
    data = torch.from_numpy(X)
    n_valid = round(0.2 * len(data))
    pin = torch.device(net.device).type == "cuda"
    rates = []
    with retain_freed_memory():  # as fit() does
        for _ in range(epochs):
            synchronize(net.device)
            start = time.perf_counter()
            order = torch.randperm(len(data))
            module.train()
            for idx in order[n_valid:].split(net.batch_size):
                x = torch.index_select(data, 0, idx)
                x = net._to_device_float(x.pin_memory() if pin else x)
                optimizer.zero_grad(set_to_none=True)
                with net._autocast():
                    recon, _, _ = module(x)
                    loss = criterion(recon, x)
                loss.float().backward()
                optimizer.step()
            module.eval()
            with torch.no_grad():
                for idx in order[:n_valid].split(net.batch_size):
                    x = torch.index_select(data, 0, idx)
                    x = net._to_device_float(x.pin_memory() if pin else x)
                    with net._autocast():
                        criterion(module(x)[0], x)
            synchronize(net.device)
            rates.append(len(data) / (time.perf_counter() - start))
    return statistics.median(rates[1:])


def kernel_seconds(X, loss, precision, device, batch):
    """Seconds of GPU kernels and copies in a one-epoch fit, and its top operators."""
    from torch.profiler import ProfilerActivity, profile

    ae = our_estimator(batch, loss, device=device, precision=precision)
    ae.fit(X[: 2 * batch])  # warm: cuDNN's first calls out of the profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        ae.fit(X)
    # The device's own events (kernels, copies), not the CPU operators that
    # launched them, which also carry their kernels' time.
    # Ranges such as "Optimizer.step" also show on the GPU's timeline, where
    # they span their kernels and the gaps between them: left out.
    on_gpu = [e for e in prof.events()
              if e.device_type == torch.autograd.DeviceType.CUDA and not e.is_user_annotation]
    total = sum(e.time_range.elapsed_us() for e in on_gpu) / 1e6
    table = prof.key_averages().table(sort_by="self_device_time_total", row_limit=10)
    return total, table


def main():
    """Measure every loss and precision, alternating them, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--n", type=int, default=30_000, help="images (20%% validation)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--size", type=int, default=64, help="image height and width")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tables", action="store_true", help="print the profiler's top operators")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is left out of the timings")
    X = lunar_frames(args.n, args.size)
    contenders = [(loss, precision) for precision in ("fp32", "bf16") for loss in ("pixel", "perceptual")]
    fit = {key: [] for key in contenders}
    bare = {key: [] for key in contenders}
    for key in contenders:  # warm-up, untimed
        steady_fit(X[: 4 * args.batch], *key, args.device, 2, args.batch)
    for _ in range(args.reps):
        for key in contenders:
            rate, ae = steady_fit(X, *key, args.device, args.epochs, args.batch)
            fit[key].append(rate)
            bare[key].append(bare_epochs(ae, X, args.epochs))
    gpu_seconds = {}
    if torch.device(args.device).type == "cuda":
        for key in contenders:
            gpu_seconds[key], table = kernel_seconds(X, *key, args.device, args.batch)
            if args.tables:
                print(f"\n{key}: GPU kernels {gpu_seconds[key]:.3f} s for {len(X)} images\n{table}")
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "CPU"
    print(f"\n{name}, torch {torch.__version__}, {args.size}x{args.size}, n={args.n}, "
          f"batch {args.batch}, epochs 2..{args.epochs} of each fit, {args.reps} reps, median (min-max)\n")
    print("| loss | precision | fit img/s | bare loop img/s | fit / bare | GPU-bound img/s "
          "| GPU busy in fit |\n|---|---|---|---|---|---|---|")
    for key in contenders:
        ratio = [a / b for a, b in zip(fit[key], bare[key])]
        cells = "n/a | n/a"
        if key in gpu_seconds:
            per_image = gpu_seconds[key] / len(X)
            cells = f"{1 / per_image:.0f} | {per_image * statistics.median(fit[key]):.0%}"
        print(f"| {key[0]} | {key[1]} | {spread(fit[key])} | {spread(bare[key])} | "
              f"{spread(ratio, '{:.0%}')} | {cells} |")
    for precision in ("fp32", "bf16"):
        over = [a / b - 1 for a, b in zip(fit["pixel", precision], fit["perceptual", precision])]
        print(f"\nperceptual overhead, {precision}, steady state: {spread(over, '{:+.0%}')} "
              "(paper: +12 ± 3%)")


if __name__ == "__main__":
    main()
