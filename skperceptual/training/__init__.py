"""The training engine: the skorch net, its data path and its callbacks.

Trains any module of :mod:`skperceptual.models` against any criterion of
:mod:`skperceptual.losses`; knows nothing of the estimators above it. The
callbacks' public import path is :mod:`skperceptual.callbacks`.
"""
