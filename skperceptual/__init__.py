"""Perceptual-loss autoencoders as scikit-learn transformers.

skperceptual implements *Improving Image Autoencoder Embeddings with
Perceptual Loss* (Pihlgren, Sandin and Liwicki, IJCNN 2020) as a
scikit-learn compatible estimator built on skorch.
"""

__version__ = "0.1.0"

__all__ = ["FrozenFeatureTransformer", "PerceptualAETransformer", "__version__"]


def __getattr__(name):
    # Importing torch costs a second or more; defer it until the estimator is
    # actually asked for so that ``skperceptual --help`` and the dataset
    # loaders start fast.
    if name == "PerceptualAETransformer":
        from .estimators.perceptual_ae import PerceptualAETransformer

        return PerceptualAETransformer
    if name == "FrozenFeatureTransformer":
        from .estimators.frozen_features import FrozenFeatureTransformer

        return FrozenFeatureTransformer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
