"""The follow-ups' options on the estimator: named and multi-layer losses, squash, feature prediction."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

from skperceptual import PerceptualAETransformer
from skperceptual.losses.feature_prediction import FeaturePredictionAutoencoder
from skperceptual.losses.networks import MultiLayerPerceptualLoss
from skperceptual.losses.perceptual import PerceptualLoss

TINY = dict(z_dim=4, max_epochs=1, batch_size=8, validation_fraction=None, perceptual_weights=None,
            random_state=0, device="cpu")

OPTIONS = [
    {"perceptual_layer": "relu2"},
    {"perceptual_layer": ["relu1", 5], "perceptual_layer_weights": [1.0, 3.0]},
    {"perceptual_squash": "none"},
    {"perceptual_squash": "unit", "perceptual_normalize": True},
    {"perceptual_net": "vgg11", "perceptual_layer": "relu2_1"},
    {"loss": "feature_prediction"},
    {"loss": "feature_prediction", "variational": True, "perceptual_squash": "none", "perceptual_layer": "relu1"},
]


@pytest.mark.parametrize("params", OPTIONS, ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_each_option_fits_transforms_clones_and_pickles(images, params):
    ae = PerceptualAETransformer(**TINY, **params)
    Z = ae.fit_transform(images)
    assert Z.shape == (16, 4) and np.isfinite(Z).all()
    assert np.isfinite(ae.score(images))
    assert clone(ae).get_params() == ae.get_params()
    again = pickle.loads(pickle.dumps(ae))
    np.testing.assert_array_equal(again.transform(images), Z)


def test_the_papers_setting_keeps_the_papers_loss(images):
    ae = PerceptualAETransformer(**TINY, perceptual_layer="relu2").fit(images)
    assert type(ae.net_.criterion_) is PerceptualLoss
    same = PerceptualAETransformer(**TINY).fit(images)
    np.testing.assert_array_equal(ae.transform(images), same.transform(images))


def test_a_layer_list_trains_one_multi_layer_loss(images):
    ae = PerceptualAETransformer(**TINY, perceptual_layer=[2, 5], perceptual_layer_weights=[1, 3]).fit(images)
    loss = ae.net_.criterion_
    assert isinstance(loss, MultiLayerPerceptualLoss)
    assert loss.network.cuts == (2, 5) and loss.weights == (0.25, 0.75)


def test_feature_prediction_decodes_features_and_needs_a_pixel_decoder_for_images(images):
    ae = PerceptualAETransformer(**TINY, loss="feature_prediction").fit(images)
    module = ae.net_.module_
    assert isinstance(module, FeaturePredictionAutoencoder) and module.feature_shape == (192, 7, 7)
    Z = ae.transform(images)
    with pytest.raises(NotFittedError, match=r"fit_decoder\(X\)"):
        ae.inverse_transform(Z)
    if not hasattr(ae, "fit_decoder"):
        pytest.skip("the estimator has no fit_decoder yet")
    ae.fit_decoder(images, max_epochs=1)
    np.testing.assert_array_equal(ae.transform(images), Z)
    recon = ae.inverse_transform(Z)
    assert recon.shape == images.shape and 0 <= recon.min() <= recon.max() <= 1
    assert np.isfinite(ae.score(images))  # still the feature-prediction loss


def test_grid_search_over_layer_and_loss(images):
    search = GridSearchCV(
        PerceptualAETransformer(**TINY),
        {"perceptual_layer": [2, "relu2", ["relu1", "relu2"]], "loss": ["perceptual", "feature_prediction"]},
        cv=2, error_score="raise",
    )
    # feature_prediction with a layer list is rejected; skip those grid points.
    search.param_grid = [
        {"perceptual_layer": [2, "relu2", ["relu1", "relu2"]], "loss": ["perceptual"]},
        {"perceptual_layer": [2, "relu2"], "loss": ["feature_prediction"]},
    ]
    search.fit(images)
    assert len(search.cv_results_["params"]) == 5
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"perceptual_layer": "relu9"}, r"valid names are \['conv1', 'relu1'"),
        ({"perceptual_layer": 14}, r"from 1 to 13"),
        ({"perceptual_net": "vgg16", "perceptual_layer": 32}, r"from 1 to 31"),
        ({"perceptual_layer": [2, 5], "perceptual_layer_weights": [1.0]}, "one weight per entry"),
        ({"loss": "feature_prediction", "perceptual_layer": [2, 5]}, "predicts the features of one layer"),
        ({"perceptual_net": "inception_v3", "perceptual_layer": "Mixed_7c"}, "too small"),
        ({"perceptual_squash": "tanh"}, "perceptual_squash"),
    ],
)
def test_bad_loss_settings_fail_before_training(images, params, message, monkeypatch):
    started = []
    monkeypatch.setattr(torch.optim.Adam, "step", lambda *a, **k: started.append(1))
    with pytest.raises(ValueError, match=message):
        PerceptualAETransformer(**TINY, **params).fit(images)
    assert not started


def test_feature_prediction_is_a_protocol_variant_but_not_a_default():
    from skperceptual.protocol._config import DEFAULTS, VARIANTS, ae_params, load_profile

    assert DEFAULTS["ae"]["variants"] == ["AE", "VAE", "P. AE", "P. VAE"]
    assert VARIANTS["F. AE"] == ("feature_prediction", False)
    params = ae_params(load_profile("smoke", ae__variants=["F. VAE"]), "F. VAE", 8)
    assert params["loss"] == "feature_prediction" and params["variational"]


def test_protocol_reconstructions_are_nan_until_the_pixel_decoder_is_trained(images):
    from skperceptual.protocol._stages import reconstruct, reconstruction_l1

    ae = PerceptualAETransformer(**TINY, loss="feature_prediction").fit(images)
    assert np.isnan(reconstruct(ae, images[:2])).all() and np.isnan(reconstruction_l1(ae, images))
    ae.fit_decoder(images, max_epochs=1)
    assert np.isfinite(reconstruction_l1(ae, images))
