# The public import path of skperceptual.training.callbacks, which implements it;
# that module's docstring is this module's page in the API reference.
from .training import callbacks as _implementation
from .training.callbacks import (
    MAX_ABS_EMBEDDING,
    DivergenceGuard,
    EmbeddingCheckpoints,
)

__doc__ = _implementation.__doc__

__all__ = [
    "DivergenceGuard",
    "EmbeddingCheckpoints",
    "MAX_ABS_EMBEDDING",
]
