"""FrozenFeatureTransformer: a frozen network's activations as scikit-learn features."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skperceptual import FrozenFeatureTransformer
from skperceptual.losses.perceptual import load_perceptual_net

RANDOM = dict(weights=None, random_state=0, device="cpu")


def _uint8(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _reference(stack, X, cut):
    """The activations of ``stack[:cut]`` run as a plain nn.Sequential, on [0, 1] floats."""
    with torch.no_grad():
        return stack[:cut](torch.from_numpy(X).float() / 255).flatten(1).numpy()


def test_features_equal_the_loss_networks_own_activations(alexnet_weights):
    X = _uint8((6, 3, 64, 64))
    frozen = FrozenFeatureTransformer(layer="relu2", device="cpu").fit(X)
    Z = frozen.transform(X)
    assert Z.shape == (6, 192 * 7 * 7) and Z.dtype == np.float32
    expected = _reference(load_perceptual_net("alexnet", 5, "imagenet"), X, 5)
    np.testing.assert_allclose(Z, expected, rtol=1e-4, atol=1e-5)
    assert frozen.layers_ == (5,) and frozen.feature_shapes_ == [(192, 7, 7)]


def test_a_list_of_layers_is_concatenated_in_order_and_pooling_reduces_space():
    X = _uint8((4, 3, 64, 64))
    both = FrozenFeatureTransformer(layer=["relu2", "relu1"], **RANDOM).fit_transform(X)
    stack = load_perceptual_net("alexnet", 5, None)
    relu1 = FrozenFeatureTransformer(layer="relu1", **RANDOM).fit(X)
    stack.load_state_dict(FrozenFeatureTransformer(layer="relu2", **RANDOM).fit(X).network_.stack.state_dict())
    relu2 = _reference(stack, X, 5)
    np.testing.assert_allclose(both[:, : relu2.shape[1]], relu2, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(both[:, relu2.shape[1]:], relu1.transform(X), rtol=1e-4, atol=1e-5)

    avg = FrozenFeatureTransformer(layer="relu2", pooling="avg", **RANDOM).fit_transform(X)
    mx = FrozenFeatureTransformer(layer="relu2", pooling="max", **RANDOM).fit_transform(X)
    maps = relu2.reshape(4, 192, 49)
    np.testing.assert_allclose(avg, maps.mean(axis=2), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mx, maps.max(axis=2), rtol=1e-4, atol=1e-5)


def test_squash_applies_the_perceptual_loss_squash():
    X = _uint8((3, 3, 64, 64))
    raw = FrozenFeatureTransformer(**RANDOM).fit_transform(X)
    sig = FrozenFeatureTransformer(squash="sigmoid", **RANDOM).fit_transform(X)
    np.testing.assert_allclose(sig, 1 / (1 + np.exp(-raw)), rtol=1e-5, atol=1e-6)


def test_uint8_float_tensor_flat_and_grey_inputs():
    X = _uint8((3, 3, 64, 64))
    frozen = FrozenFeatureTransformer(**RANDOM).fit(X)
    Z = frozen.transform(X)
    np.testing.assert_allclose(frozen.transform(X.astype(np.float32) / 255), Z, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(frozen.transform(torch.from_numpy(X)), Z)
    flat = FrozenFeatureTransformer(**RANDOM).fit(X.reshape(3, -1))
    np.testing.assert_array_equal(flat.transform(X.reshape(3, -1)), Z)
    grey = X[:, :1]
    np.testing.assert_array_equal(FrozenFeatureTransformer(**RANDOM).fit_transform(grey),
                                  frozen.transform(np.repeat(grey, 3, axis=1)))


def test_any_image_size_the_network_can_read_and_batches_do_not_matter():
    X = _uint8((5, 3, 50, 70))
    frozen = FrozenFeatureTransformer(**RANDOM).fit(X)
    assert frozen.feature_shapes_ == [(192, 5, 7)]
    np.testing.assert_allclose(frozen.set_params(batch_size=2).transform(X),
                               frozen.set_params(batch_size=256).transform(X), rtol=1e-5, atol=1e-6)


def test_random_state_seeds_random_weights_only():
    X = _uint8((2, 3, 64, 64))
    a = FrozenFeatureTransformer(**RANDOM).fit_transform(X)
    np.testing.assert_array_equal(FrozenFeatureTransformer(**RANDOM).fit_transform(X), a)
    assert not np.allclose(FrozenFeatureTransformer(**{**RANDOM, "random_state": 1}).fit_transform(X), a)


@pytest.mark.parametrize(
    "params, X, error, match",
    [
        ({"layer": "relu9"}, _uint8((2, 3, 64, 64)), ValueError, r"^layer='relu9' is not a layer of 'alexnet'"),
        ({"layer": 14}, _uint8((2, 3, 64, 64)), ValueError, r"^layer=14 is out of range .* 1 to 13"),
        ({"net": "inception"}, _uint8((2, 3, 64, 64)), InvalidParameterError, r"'net' .*alexnet"),
        ({"pooling": "mean"}, _uint8((2, 3, 64, 64)), InvalidParameterError, r"'pooling'"),
        ({"device": "tpu"}, _uint8((2, 3, 64, 64)), ValueError, r"device='tpu'"),
        ({}, _uint8((2, 3, 8, 8)), ValueError, r"too small for 'alexnet' at layer"),
        ({}, _uint8((2, 2, 64, 64)), ValueError, r"1 or 3 channels"),
        ({}, np.full((2, 3, 64, 64), 2.0, dtype=np.float32), ValueError, r"\[0, 1\]"),
        ({}, np.full((2, 3, 64, 64), np.nan, dtype=np.float32), ValueError, r"NaN"),
    ],
    ids=["layer-name", "layer-range", "net", "pooling", "device", "too-small", "channels", "range", "nan"],
)
def test_bad_input_is_rejected_before_any_weights_load(params, X, error, match):
    frozen = FrozenFeatureTransformer(**{**RANDOM, **params})
    with pytest.raises(error, match=match):
        frozen.fit(X)
    assert not hasattr(frozen, "network_")


def test_missing_weights_file_is_named_after_the_images_are_checked(tmp_path):
    frozen = FrozenFeatureTransformer(weights=tmp_path / "nope.pth", device="cpu")
    with pytest.raises(ValueError, match="1 or 3 channels"):  # the images first: no weights resolved
        frozen.fit(_uint8((2, 2, 64, 64)))
    with pytest.raises(FileNotFoundError, match=r"^weights file .*nope.pth"):
        frozen.fit(_uint8((2, 3, 64, 64)))


def test_a_boolean_layer_is_not_read_as_cut_1():
    with pytest.raises(ValueError, match=r"^layer=True is not a layer of 'alexnet'"):
        FrozenFeatureTransformer(layer=True, **RANDOM).fit(_uint8((2, 3, 64, 64)))


def test_pooling_is_fixed_at_fit():
    X = _uint8((2, 3, 64, 64))
    frozen = FrozenFeatureTransformer(**RANDOM).fit(X)
    assert frozen.set_params(pooling="avg").transform(X).shape == (2, 9408)
    assert frozen.fit(X).transform(X).shape == (2, 192)


def test_transform_checks_the_fitted_shape_and_fit():
    frozen = FrozenFeatureTransformer(**RANDOM).fit(_uint8((2, 3, 64, 64)))
    with pytest.raises(ValueError, match=r"shape \(3, 80, 80\).*fitted on \(3, 64, 64\)"):
        frozen.transform(_uint8((2, 3, 80, 80)))
    with pytest.raises(NotFittedError):
        FrozenFeatureTransformer().transform(_uint8((2, 3, 64, 64)))


def test_clone_pickle_and_pandas_output():
    pd = pytest.importorskip("pandas")
    X = _uint8((3, 3, 64, 64))
    frozen = FrozenFeatureTransformer(pooling="avg", **RANDOM).fit(X)
    Z = frozen.transform(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(frozen)).transform(X), Z)
    twin = clone(frozen)
    assert twin.get_params() == frozen.get_params() and not hasattr(twin, "network_")
    names = frozen.get_feature_names_out()
    assert list(names) == [f"frozenfeaturetransformer{i}" for i in range(192)]
    out = twin.set_output(transform="pandas").fit(X).transform(X)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)
    np.testing.assert_array_equal(out.to_numpy(), Z)


def test_in_a_pipeline_with_pca_and_a_head():
    X = _uint8((12, 3, 64, 64))
    y = X.reshape(12, -1).mean(axis=1)
    pipe = make_pipeline(FrozenFeatureTransformer(**RANDOM), PCA(4, random_state=0), Ridge()).fit(X, y)
    assert pipe[:2].transform(X).shape == (12, 4) and pipe.predict(X).shape == (12,)


# Every generic check fits on tabular data whose "images" are far too small
# for a convolutional network: they stop, correctly, at input validation.
# The tests above cover the same properties on real images.
_NEEDS_IMAGES = "fits on generic tabular X; the network needs images of at least about 3 x 32 x 32"


def _expected_failures(estimator):
    from test_estimator_checks import _GENERIC_DATA_CHECKS

    return {name: _NEEDS_IMAGES for name in _GENERIC_DATA_CHECKS}


@parametrize_with_checks([FrozenFeatureTransformer(**RANDOM)], expected_failed_checks=_expected_failures)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
