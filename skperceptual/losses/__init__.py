"""The losses: pixel MSE, the perceptual loss, its frozen loss networks and their pretrained weights.

Builds on :mod:`skperceptual.models` (feature prediction predicts features
with the autoencoder's encoder). The public import paths are
:mod:`skperceptual.perceptual`, :mod:`skperceptual.loss_networks` and
:mod:`skperceptual.weights`.
"""
