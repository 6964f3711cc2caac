"""The scikit-learn estimators: :class:`PerceptualAETransformer` and :class:`FrozenFeatureTransformer`.

They validate their parameters and input, choose a model and a loss
(:mod:`skperceptual.models`, :mod:`skperceptual.losses`) and train through
:mod:`skperceptual.training`. Import them from :mod:`skperceptual`.
"""

from .frozen_features import FrozenFeatureTransformer
from .perceptual_ae import PerceptualAETransformer

__all__ = ["FrozenFeatureTransformer", "PerceptualAETransformer"]
