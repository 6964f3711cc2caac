"""The networks that are trained: the paper's convolutional (variational) autoencoder.

Lowest layer of the library, plain PyTorch modules: nothing here imports
the losses, the training engine or the estimators.
"""
