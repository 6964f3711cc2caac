import os
from pathlib import Path

import numpy as np
import pytest

# The offline copy of ImageNet AlexNet's convolutions that this workplace
# keeps beside the checkout (see ../shared/weights/README.md). Users with
# internet get the same tensors through torchvision's weights API.
SHARED_WEIGHTS = Path(
    os.environ.get(
        "SKPERCEPTUAL_TEST_WEIGHTS",
        Path(__file__).resolve().parents[1].parent / "shared" / "weights" / "alexnet-imagenet-features.pth",
    )
)


@pytest.fixture
def alexnet_weights():
    """Path of the offline AlexNet feature weights; skips the test when absent."""
    if not SHARED_WEIGHTS.is_file():
        pytest.skip(f"offline AlexNet weights not found at {SHARED_WEIGHTS}")
    return SHARED_WEIGHTS


@pytest.fixture
def images():
    """16 uint8 images of 64x64: random noise plus a bright square, so that
    they have some structure an autoencoder can learn."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 64, (16, 3, 64, 64), dtype=np.uint8)
    for i, (r, c) in enumerate(rng.integers(4, 44, (16, 2))):
        X[i, :, r : r + 16, c : c + 16] = 255
    return X
