"""Where a training step's memory goes: saved tensors, live peak, and the RSS it costs.

Usage::

    python benchmarks/step_memory.py                          # perceptual, fp32, batch 512
    python benchmarks/step_memory.py --loss pixel --precision bf16 --batch 256

One process runs bare training steps of the paper's autoencoder (64x64,
z = 64, channels-last, fused Adam, as ``PerceptualAETransformer.fit`` runs
them) and prints three numbers:

- the tensors autograd keeps for backward, counted once per storage
  (``torch.autograd.graph.saved_tensors_hooks``);
- the peak of live tensor memory during one step, from the profiler's
  allocation events;
- the peak RSS over the process's RSS before the first step, over
  ``--steps`` steps, with freed memory retained as ``fit`` does
  (``--no-retain`` to compare with glibc's default).

The gap between the last two is what the allocator adds: heap
fragmentation with freed memory retained, page-aligned mmaps without.
"""

import argparse
import contextlib
import resource

import torch
from import_memory import resident_mb  # benchmarks/, next to this script

from skperceptual.losses.perceptual import PerceptualLoss, PixelLoss, load_perceptual_net
from skperceptual.models.autoencoder import ConvAutoencoder
from skperceptual.training.allocator import retain_freed_memory


def peak_resident_mb():
    """The process's peak resident set size so far, in MiB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def saved_tensor_mb(step):
    """MiB of distinct storages autograd saves during ``step()``'s forward pass."""
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()
    return sum(storages.values()) / 2**20


def live_peak_mb(step):
    """Peak of live tensor memory during ``step()``, over what was live before it."""
    from torch.profiler import profile

    with profile(profile_memory=True) as prof:
        step()
    events = []

    def walk(node):
        fields = node.extra_fields
        if type(fields).__name__ == "_ExtraFields_Allocation":
            events.append((node.start_time_ns, fields.alloc_size))
        for child in node.children:
            walk(child)

    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root)
    live = peak = 0
    for _, size in sorted(events):
        live += size
        peak = max(peak, live)
    return peak / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", choices=["perceptual", "pixel"], default="perceptual")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--no-retain", action="store_true", help="glibc's default: no retained memory")
    args = parser.parse_args()

    torch.manual_seed(0)
    channels_last = torch.channels_last
    model = ConvAutoencoder(64, (64, 64)).to(memory_format=channels_last)
    if args.loss == "perceptual":
        criterion = PerceptualLoss(load_perceptual_net(weights=None))
    else:
        criterion = PixelLoss()
    criterion = criterion.to(memory_format=channels_last)
    optimizer = torch.optim.Adam(model.parameters(), fused=True)
    images = torch.randint(0, 256, (args.batch, 3, 64, 64), dtype=torch.uint8)

    def autocast():
        if args.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward():
        x = images.contiguous(memory_format=channels_last).float().div_(255)
        with autocast():
            return criterion(model(x)[0], x)

    def step():
        optimizer.zero_grad(set_to_none=True)
        forward().float().backward()
        optimizer.step()

    start = resident_mb()
    retain = contextlib.nullcontext() if args.no_retain else retain_freed_memory()
    with retain:
        for _ in range(args.steps):
            step()
        rss = peak_resident_mb() - start
        saved = saved_tensor_mb(forward)
        live = live_peak_mb(step)

    print(f"{args.loss} loss, {args.precision}, batch {args.batch}, 64x64, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"  tensors saved for backward       {saved:7.0f} MiB")
    print(f"  live tensor peak in one step     {live:7.0f} MiB")
    print(f"  peak RSS over the start, {args.steps} steps {rss:7.0f} MiB  "
          f"(freed memory {'not ' if args.no_retain else ''}retained)")


if __name__ == "__main__":
    main()
