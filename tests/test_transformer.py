"""Behaviour of PerceptualAETransformer on tiny images (CPU, seconds per test)."""

import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

from skperceptual import PerceptualAETransformer
from skperceptual.training.data import to_unit_float
from skperceptual.training.net import as_dataset, kl_divergence

# Small and fast: pixel loss and a random perceptual net unless a test needs
# the pretrained one.
FAST = dict(z_dim=4, max_epochs=1, batch_size=8, loss="pixel", random_state=0)


@pytest.fixture(scope="module")
def fitted():
    X = np.random.default_rng(1).integers(0, 256, (12, 3, 64, 64), dtype=np.uint8)
    return PerceptualAETransformer(**FAST).fit(X), X


# --- shapes, dtypes and input forms ------------------------------------------


@pytest.mark.parametrize(
    "make_input, expected_inverse_shape",
    [
        (lambda X: X, (12, 3, 64, 64)),
        (lambda X: X.astype(np.float32) / 255, (12, 3, 64, 64)),
        (lambda X: X.astype(np.float64) / 255, (12, 3, 64, 64)),
        (lambda X: torch.from_numpy(X), (12, 3, 64, 64)),
        (lambda X: X.reshape(12, -1), (12, 3 * 64 * 64)),
        (lambda X: X[:, :1], (12, 1, 64, 64)),
    ],
    ids=["uint8", "float32", "float64", "tensor", "flat", "one-channel"],
)
def test_input_forms_give_float32_embeddings_and_images_in_input_layout(make_input, expected_inverse_shape):
    X = make_input(np.random.default_rng(0).integers(0, 256, (12, 3, 64, 64), dtype=np.uint8))
    ae = PerceptualAETransformer(**FAST)
    Z = ae.fit_transform(X)
    assert Z.shape == (12, 4) and Z.dtype == np.float32
    recon = ae.inverse_transform(Z)
    assert recon.shape == expected_inverse_shape and recon.dtype == np.float32
    assert 0 <= recon.min() and recon.max() <= 1
    assert ae.n_features_in_ == int(np.prod(expected_inverse_shape[1:]))


def test_flat_input_with_image_shape_reconstructs_non_square_images():
    X = np.random.default_rng(0).random((10, 3 * 64 * 80), dtype=np.float32)
    ae = PerceptualAETransformer(**FAST, image_shape=(3, 64, 80)).fit(X)
    assert ae.image_shape_ == (3, 64, 80)
    assert ae.inverse_transform(ae.transform(X)).shape == (10, 3 * 64 * 80)


def test_one_channel_input_is_replicated_not_copied_to_three():
    x = torch.full((2, 1, 64, 64), 255, dtype=torch.uint8)
    y = to_unit_float(x)
    assert y.shape == (2, 3, 64, 64) and torch.all(y == 1)
    assert y.stride(1) == 0  # a broadcast view: no per-channel copy


def test_uint8_and_float_inputs_train_identically(fitted):
    _, X = fitted
    a = PerceptualAETransformer(**FAST).fit(X).transform(X)
    b = PerceptualAETransformer(**FAST).fit(X.astype(np.float32) / 255).transform(X)
    np.testing.assert_allclose(a, b, atol=1e-5)


# --- training ------------------------------------------------------------------


def test_loss_decreases_and_history_is_recorded(images):
    ae = PerceptualAETransformer(**{**FAST, "max_epochs": 6, "lr": 3e-3}, validation_fraction=0.25, patience=None)
    ae.fit(images)
    losses = [row["train_loss"] for row in ae.history_]
    assert ae.n_epochs_ == 6 and len(losses) == 6
    assert losses[-1] < 0.7 * losses[0]
    assert all("valid_loss" in row and row["dur"] > 0 for row in ae.history_)
    assert ae.fit_time_ >= sum(row["dur"] for row in ae.history_) * 0.9


def test_early_stopping_restores_the_best_epoch(images):
    ae = PerceptualAETransformer(**{**FAST, "max_epochs": 5, "lr": 3e-2}, validation_fraction=0.25, patience=2)
    ae.fit(images)
    best = min(row["valid_loss"] for row in ae.history_)
    _, valid = ae.net_.train_split(as_dataset(images))
    assert ae.net_.reconstruction_loss(valid) == pytest.approx(best, rel=1e-4)


def test_no_validation_trains_every_epoch_on_all_images(images):
    ae = PerceptualAETransformer(**{**FAST, "max_epochs": 3}, validation_fraction=None).fit(images)
    assert ae.n_epochs_ == 3
    assert all("valid_loss" not in row for row in ae.history_)


def test_random_state_makes_cpu_fits_bit_reproducible(images):
    params = {**FAST, "variational": True, "max_epochs": 2}
    a = PerceptualAETransformer(**params).fit(images)
    b = PerceptualAETransformer(**params).fit(images)
    np.testing.assert_array_equal(a.transform(images), b.transform(images))
    c = PerceptualAETransformer(**{**params, "random_state": 1}).fit(images)
    assert not np.array_equal(a.transform(images), c.transform(images))


def test_fit_leaves_the_global_torch_generator_alone(images):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    PerceptualAETransformer(**FAST).fit(images)
    assert torch.equal(torch.rand(3), expected)


def test_transform_of_a_vae_is_deterministic(images):
    ae = PerceptualAETransformer(**{**FAST, "variational": True}).fit(images)
    np.testing.assert_array_equal(ae.transform(images), ae.transform(images))


def test_kl_term_is_added_only_when_variational(fitted):
    ae, X = fitted
    net = ae.net_
    x = to_unit_float(torch.from_numpy(X[:4]))
    with torch.no_grad():
        recon = net.module_.decode(net.module_.encode(x)[0])
    mu, logvar = torch.full((4, 4), 0.5), torch.zeros(4, 4)
    reconstruction = net.criterion_(recon, x)
    kl = kl_divergence(mu, logvar)
    assert kl == pytest.approx(0.125)  # 0.5 * mean(mu^2) for unit variance
    net.module_.variational = False
    assert float(net.get_loss((recon, mu, logvar, x))) == pytest.approx(float(reconstruction))
    net.module_.variational = True
    try:
        loss = net.get_loss((recon, mu, logvar, x))
    finally:
        net.module_.variational = False
    assert float(loss) == pytest.approx(float(reconstruction + net.kl_weight * kl))


def test_perceptual_gradients_reach_the_decoder_but_not_the_frozen_net(images, alexnet_weights):
    ae = PerceptualAETransformer(**{**FAST, "loss": "perceptual"}, perceptual_weights=alexnet_weights)
    ae.fit(images)
    frozen = ae.net_.criterion_.net
    reference = torch.load(alexnet_weights, weights_only=True)
    # fit left the pretrained weights untouched, and they never require grad.
    assert torch.equal(frozen[0].weight, reference["features.0.weight"])
    assert torch.equal(frozen[3].weight, reference["features.3.weight"])
    assert not any(p.requires_grad for p in frozen.parameters())
    assert not frozen.training

    ae.net_.module_.train()
    ae.net_.criterion_.train()  # skorch does this each epoch; the net must stay in eval
    assert not frozen.training
    loss = ae.net_.get_loss(ae.net_.infer(torch.from_numpy(images[:8])))
    loss.backward()
    decoder_grad = ae.net_.module_.decoder[0].weight.grad
    assert decoder_grad is not None and decoder_grad.abs().sum() > 0
    assert all(p.grad is None for p in frozen.parameters())


# --- bad input -------------------------------------------------------------------


def _uint8(shape):
    return np.zeros(shape, dtype=np.uint8)


@pytest.mark.parametrize(
    "X, error, match",
    [
        (_uint8((4, 64, 64)), ValueError, r"4-D array .* got 3-D.*X\[:, None\]"),
        (_uint8((4, 2, 64, 64)), ValueError, r"1 or 3 channels .* got 2.*transpose"),
        (_uint8((4, 64, 64, 3)), ValueError, r"1 or 3 channels .* got 64.*transpose"),
        (_uint8((4, 3, 60, 64)), ValueError, r"height must be 64 \+ 16 k .* got 60.*\[64, 80\].*[Rr]esize"),
        (_uint8((4, 3, 64, 100)), ValueError, r"width must be 64 \+ 16 k .* got 100.*\[96, 112\]"),
        (np.full((4, 3, 64, 64), np.nan, dtype=np.float32), ValueError, r"NaN"),
        (np.full((4, 3, 64, 64), np.inf, dtype=np.float32), ValueError, r"infinity"),
        (np.full((4, 3, 64, 64), 2.0, dtype=np.float32), ValueError, r"\[0, 1\].*255"),
        (np.full((4, 3, 64, 64), -0.5, dtype=np.float32), ValueError, r"Negative values.*\[0, 1\]"),
        (_uint8((0, 3, 64, 64)), ValueError, r"0 sample"),
        (np.full((4, 3 * 64 * 64), "a"), ValueError, r"strings"),
        (np.zeros((4, 3, 64, 64), dtype=np.int64), TypeError, r"uint8 .* or floating point.*astype"),
        (_uint8((4, 1000)), ValueError, r"image shape .* 1000 features.*image_shape="),
    ],
    ids=["3d", "2ch", "channels-last", "height", "width", "nan", "inf", "above-1", "negative", "empty",
         "strings", "int64", "flat-not-square"],
)
def test_bad_input_is_rejected_before_training(X, error, match):
    ae = PerceptualAETransformer(**FAST)
    with pytest.raises(error, match=match):
        ae.fit(X)
    assert not hasattr(ae, "net_")


@pytest.mark.parametrize(
    "params, match",
    [
        ({"perceptual_net": "inception"}, r"perceptual_net.*alexnet"),
        ({"loss": "l1"}, r"loss.*perceptual.*pixel|loss.*pixel.*perceptual"),
        ({"z_dim": 0}, r"z_dim"),
        ({"validation_fraction": 1.0}, r"validation_fraction"),
    ],
)
def test_invalid_parameters_are_rejected_in_fit(images, params, match):
    ae = PerceptualAETransformer(**{**FAST, **params})
    with pytest.raises(InvalidParameterError, match=match):
        ae.fit(images)


def test_out_of_range_perceptual_layer_lists_the_valid_range(images):
    ae = PerceptualAETransformer(**{**FAST, "loss": "perceptual"}, perceptual_layer=14, perceptual_weights=None)
    with pytest.raises(ValueError, match=r"perceptual_layer=14 .* 'alexnet'.* 1 to 13"):
        ae.fit(images)
    assert not hasattr(ae, "net_")


def test_missing_weights_file_is_named(images, tmp_path):
    missing = tmp_path / "nope.pth"
    ae = PerceptualAETransformer(**{**FAST, "loss": "perceptual"}, perceptual_weights=missing)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        ae.fit(images)


def test_too_few_images_for_the_validation_split(images):
    with pytest.raises(ValueError, match=r"at least 2.*validation_fraction=None"):
        PerceptualAETransformer(**FAST).fit(images[:2])


def test_transform_rejects_another_image_shape(fitted):
    ae, _ = fitted
    with pytest.raises(ValueError, match=r"shape \(3, 80, 80\).*fitted on \(3, 64, 64\)"):
        ae.transform(_uint8((2, 3, 80, 80)))
    with pytest.raises(ValueError, match=r"features"):
        ae.transform(_uint8((2, 3 * 80 * 80)))
    with pytest.raises(ValueError, match=r"z_dim=4"):
        ae.inverse_transform(np.zeros((2, 5)))


@pytest.mark.parametrize("method", ["transform", "inverse_transform", "score"])
def test_not_fitted(method):
    with pytest.raises(NotFittedError):
        getattr(PerceptualAETransformer(), method)(_uint8((2, 3, 64, 64)))


# --- scikit-learn integration ------------------------------------------------------------


def test_clone_get_and_set_params():
    ae = PerceptualAETransformer(z_dim=16, loss="pixel", random_state=3)
    params = ae.get_params()
    assert params["z_dim"] == 16 and params["loss"] == "pixel" and params["perceptual_layer"] == 5
    twin = clone(ae)
    assert twin is not ae and twin.get_params() == params
    assert ae.set_params(z_dim=8, variational=True) is ae
    assert ae.z_dim == 8 and ae.variational and twin.z_dim == 16


def test_pipeline_grid_search_with_two_jobs(images):
    y = images[:, 0].reshape(len(images), -1).mean(axis=1)
    pipe = make_pipeline(PerceptualAETransformer(**FAST), Ridge())
    search = GridSearchCV(pipe, {"perceptualaetransformer__z_dim": [2, 4]}, cv=2, n_jobs=2)
    search.fit(images, y)
    assert set(search.cv_results_["param_perceptualaetransformer__z_dim"]) == {2, 4}
    assert search.best_estimator_[0].transform(images).shape[1] == search.best_params_[
        "perceptualaetransformer__z_dim"
    ]


def test_grid_search_over_the_autoencoder_alone_uses_score(images):
    ae = PerceptualAETransformer(**{**FAST, "lr": 3e-3}, validation_fraction=None)
    search = GridSearchCV(ae, {"max_epochs": [1, 3]}, cv=2)
    search.fit(images)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(scores < 0)
    # More training reconstructs held-out images better.
    assert search.best_params_ == {"max_epochs": 3}


def test_frozen_estimator_keeps_a_prefitted_autoencoder(fitted, images):
    ae, _ = fitted
    before = ae.transform(images)
    pipe = make_pipeline(FrozenEstimator(ae), Ridge())
    pipe.fit(images, np.arange(len(images), dtype=float))
    np.testing.assert_array_equal(ae.transform(images), before)
    assert pipe.predict(images).shape == (len(images),)


def test_set_output_pandas_names_the_embedding_columns(fitted):
    pd = pytest.importorskip("pandas")
    ae, X = fitted
    names = ae.get_feature_names_out()
    assert list(names) == [f"perceptualaetransformer{i}" for i in range(4)]
    out = clone(ae).set_output(transform="pandas").fit(X).transform(X)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)


# --- persistence ------------------------------------------------------------------


def test_pickle_and_joblib_round_trip(fitted, tmp_path):
    ae, X = fitted
    expected = ae.transform(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(ae)).transform(X), expected)
    joblib.dump(ae, tmp_path / "ae.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "ae.joblib").transform(X), expected)


def test_cuda_pickle_loads_on_a_cpu_only_machine(fitted, monkeypatch):
    ae, X = fitted
    expected = ae.transform(X)
    # A net that trained on CUDA records device "cuda". skorch maps its
    # tensors to the CPU when unpickled where CUDA is unavailable.
    ae_cuda = pickle.loads(pickle.dumps(ae))
    ae_cuda.net_.device = "cuda"
    blob = pickle.dumps(ae_cuda)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(Warning, match="CUDA"):
        loaded = pickle.loads(blob)
    assert str(loaded.net_.device) == "cpu"
    np.testing.assert_array_equal(loaded.transform(X), expected)
