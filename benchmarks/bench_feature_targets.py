"""Should feature prediction cache its targets p(x), or recompute them per batch?

Measures, on one batch of 64x64 images and AlexNet cut at 5 (the paper's
layer), the share of a feature-prediction training step spent computing
the targets p(x), against the cost of gathering the same targets from a
cache (float16, bfloat16 or float32) and converting them to float32; and
prints each cache's size per image next to a uint8 image's. A perceptual
training step is timed for reference.

Usage::

    python benchmarks/bench_feature_targets.py [--batch 64] [--reps 7] [--cut 5]

Contenders alternate repetition by repetition and medians are reported,
since shared machines are noisy.
"""

import argparse
import os
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from skperceptual.losses.feature_prediction import FeaturePredictionAutoencoder, FeaturePredictionLoss  # noqa: E402
from skperceptual.losses.networks import (  # noqa: E402
    LossNetwork,
    MultiLayerPerceptualLoss,
    build_feature_stack,
    feature_shapes,
)
from skperceptual.models.autoencoder import ConvAutoencoder  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--cut", type=int, default=5)
    parser.add_argument("--n-cache", type=int, default=2048, help="images in the simulated cache")
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.rand(args.batch, 3, 64, 64)
    (shape,) = feature_shapes("alexnet", (args.cut,), (64, 64))
    network = LossNetwork(build_feature_stack("alexnet", args.cut), (args.cut,), squash="sigmoid")

    fp_model = FeaturePredictionAutoencoder(32, (64, 64), shape)
    fp_loss = FeaturePredictionLoss(network)
    fp_opt = torch.optim.Adam(fp_model.parameters())
    pe_model = ConvAutoencoder(32, (64, 64))
    pe_loss = MultiLayerPerceptualLoss(network)
    pe_opt = torch.optim.Adam(pe_model.parameters())

    caches = {dtype: torch.rand(args.n_cache, *shape).to(dtype) for dtype in (torch.float16, torch.bfloat16, torch.float32)}
    rows = torch.randperm(args.n_cache)[: args.batch]

    def step(model, loss, opt):
        opt.zero_grad()
        out = model(x)[0]
        value = loss(out, x)
        value.backward()
        opt.step()

    def fp_step_cached():
        # The same step with the targets gathered from a float16 cache.
        fp_opt.zero_grad()
        out = fp_model(x)[0]
        target = torch.index_select(caches[torch.float16], 0, rows).float()
        value = torch.nn.functional.mse_loss(torch.sigmoid(out), target)
        value.backward()
        fp_opt.step()

    contenders = {
        "targets p(x) only": lambda: network.targets(x),
        "FP step, recomputed targets": lambda: step(fp_model, fp_loss, fp_opt),
        "FP step, float16 cache": fp_step_cached,
        "perceptual step": lambda: step(pe_model, pe_loss, pe_opt),
        **{
            f"gather {str(d).split('.')[1]} cache": (lambda d=d: torch.index_select(caches[d], 0, rows).float())
            for d in caches
        },
    }
    times = {name: [] for name in contenders}
    for fn in contenders.values():
        fn()  # warm-up
    for _ in range(args.reps):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"alexnet cut {args.cut}, features {shape}")
    print("| what | median ms per batch |\n|---|---|")
    for name, values in times.items():
        print(f"| {name} | {1000 * statistics.median(values):.2f} |")
    n_values = shape[0] * shape[1] * shape[2]
    print(f"\nPer image: uint8 image {3 * 64 * 64} B; cache float32 {4 * n_values} B, "
          f"float16/bfloat16 {2 * n_values} B.")


if __name__ == "__main__":
    main()
