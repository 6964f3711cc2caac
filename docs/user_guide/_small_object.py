"""Shared helpers of the user guide's figures: a LunarLander-like scene."""

import numpy as np
import torch

from skperceptual.perceptual import PerceptualLoss, PixelLoss, load_perceptual_net


def perceptual_weights():
    """AlexNet's ImageNet weights, resolved by skperceptual (see ``skperceptual weights``)."""
    return "imagenet"


def scene(lander=True, brightness=0.0):
    """A 64x64 LunarLander-like frame in [0, 1], shape (3, 64, 64)."""
    img = np.zeros((3, 64, 64), dtype=np.float32)
    cols = np.arange(64)
    ground = 50 + np.round(3 * np.sin(cols / 6.0)).astype(int)
    for c, g in enumerate(ground):
        img[:, g:, c] = 1.0  # white moon surface
    img[:, 50:, 26:38] = 1.0  # flat helipad
    img[0:2, 44:50, 25] = img[0:2, 44:50, 38] = 0.9  # flag poles (yellow)
    if lander:
        purple = np.array([0.5, 0.4, 0.9], dtype=np.float32)[:, None, None]
        img[:, 20:24, 30:35] = purple  # the lander: 5x4 pixels
        img[:, 24, 29] = img[:, 24, 35] = purple[:, 0, 0]  # its legs
    return np.clip(img + brightness, 0.0, 1.0)


def distances(reference, others):
    """Pixel MSE and perceptual distance of ``others`` to ``reference``."""
    pixel = PixelLoss()
    perceptual = PerceptualLoss(load_perceptual_net("alexnet", 5, perceptual_weights()))
    ref = torch.from_numpy(reference)[None]
    rows = []
    with torch.no_grad():
        for other in others:
            x = torch.from_numpy(other)[None]
            rows.append((float(pixel(x, ref)), float(perceptual(x, ref))))
    return rows
