"""
=============================================
Comparing perceptual networks and layers
=============================================

A perceptual loss is only as good as what its network notices. Here we ask
each candidate ``(perceptual_net, perceptual_layer)`` a question that matters
for LunarLander: between two consecutive frames of a rollout the lander
moves a few pixels; does the loss find that bigger than a 5 % brightness
change of the whole frame, which matters for nothing downstream?

We report the ratio ``d(frame, next frame) / d(frame, brighter frame)`` for
each loss, where ``d`` is the distance the loss computes
(:class:`~skperceptual.perceptual.PerceptualLoss` or pixel MSE). Higher means
the loss cares more about the moving lander. No training is needed, so this
is a cheap first filter; the final choice should be made on the downstream
task (put ``perceptual_layer`` in a grid, as in the other examples).

AlexNet's ImageNet weights are resolved as ``perceptual_weights="imagenet"``
always is (see ``skperceptual weights show``). The other networks are tried
only if their weights are already on this machine, in torchvision's cache or
registered with ``skperceptual weights register``: this example never
downloads them (VGG16's alone are over 500 MB).
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from skperceptual.datasets import load_lunarlander
from skperceptual.perceptual import PerceptualLoss, PixelLoss, load_perceptual_net, n_layers
from skperceptual.weights import weights_source


def available_offline(name):
    """Whether the ImageNet weights of ``name`` are on this machine (no download)."""
    path, _ = weights_source(name)
    return path is not None


data = load_lunarlander(n_rollouts=16, n_steps=24, random_state=0)
# One rollout of the predictor set, where the lander is always on screen.
part = data.predictor
rollout = part.X[part.rollout == part.rollout[0]]
X = torch.from_numpy(rollout.astype(np.float32) / 255.0)
frames, following = X[:-1], X[1:]
brighter = (frames + 0.05).clamp(0, 1)

candidates = [("alexnet", 2), ("alexnet", 5), ("alexnet", 8), ("alexnet", 12),
              ("squeezenet1_1", 5), ("vgg16", 9), ("resnet18", 5)]


def sensitivity(loss):
    with torch.no_grad():
        return float(loss(following, frames) / loss(brighter, frames))


results = {"pixel MSE": (sensitivity(PixelLoss()), None, 0.0)}
print(f"pixel MSE: ratio {results['pixel MSE'][0]:.2f}")
for name, layer in candidates:
    if name != "alexnet" and not available_offline(name):
        print(f"{name} layer {layer}: skipped (ImageNet weights not on this machine)")
        continue
    net = load_perceptual_net(name, layer, "imagenet")
    loss = PerceptualLoss(net)
    start = time.perf_counter()
    ratio = sensitivity(loss)
    seconds = (time.perf_counter() - start) / 2
    with torch.no_grad():
        grid = tuple(net(frames[:1]).shape[1:])
    results[f"{name}[:{layer}]"] = (ratio, grid, seconds)
    print(f"{name} layer {layer}/{n_layers(name)}: ratio {ratio:.2f}, features {grid}, "
          f"{1000 * seconds:.0f} ms per {len(frames)} frames")

# %%
# The ratios
# ----------
# A ratio below 1 (left of the dashed line) means the loss finds the
# brightness change bigger than the lander's motion. On this rollout pixel
# MSE rates the brightness change many times bigger (a ratio of about 0.04),
# while the AlexNet cuts rate the lander's motion about as big or bigger: a
# perceptual loss weighs the small object some 25 times more, relative to
# the global change, than pixel MSE does.
labels = list(results)
ratios = [results[k][0] for k in labels]
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.barh(labels, ratios, color=["grey"] + ["tab:cyan"] * (len(labels) - 1))
ax.axvline(1.0, color="k", lw=0.8, ls="--")
ax.set_xscale("log")
ax.invert_yaxis()
ax.set_xlabel("d(frame, next frame) / d(frame, 5 % brighter)   (log scale)")
ax.set_title("How much each loss notices the lander moving")
fig.tight_layout()
plt.show()
