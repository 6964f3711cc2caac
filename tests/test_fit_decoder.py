"""PerceptualAETransformer.fit_decoder: Table VIII's decoder retraining on the estimator."""

import numpy as np
import pytest
import torch

from skperceptual import PerceptualAETransformer


def _fitted(images, **params):
    base = dict(z_dim=4, max_epochs=1, batch_size=8, loss="pixel", perceptual_weights=None, random_state=0,
                validation_fraction=None)
    return PerceptualAETransformer(**{**base, **params}).fit(images)


def _l1(ae, X):
    return float(np.abs(ae.inverse_transform(ae.transform(X)) - X / 255.0).mean())


def _encoder_state(ae):
    module = ae.net_.module_
    return {f"{part}.{k}": v.clone() for part in ("encoder", "fc_mu", "fc_logvar")
            for k, v in getattr(module, part).state_dict().items()}


@pytest.mark.parametrize("variational", [False, True])
def test_encoder_unchanged_decoder_improves(images, variational):
    ae = _fitted(images, variational=variational, validation_fraction=0.25, patience=3)
    params, Z, encoder = ae.get_params(), ae.transform(images), _encoder_state(ae)
    l1_before = _l1(ae, images)
    assert ae.fit_decoder(images, max_epochs=5, lr=1e-2) is ae
    after = _encoder_state(ae)
    assert all(torch.equal(encoder[k], after[k]) for k in encoder)  # weights and BatchNorm statistics
    np.testing.assert_array_equal(ae.transform(images), Z)
    assert _l1(ae, images) < l1_before
    assert ae.get_params() == params
    assert 1 <= len(ae.decoder_history_) <= 5 and ae.decoder_fit_time_ > 0
    assert ae.decoder_loss_ == ae.decoder_history_[-1]["valid_loss"]
    # The net trains on the estimator's own loss again, with its own lr.
    assert ae.net_.module_.variational == variational and ae.net_.lr == ae.lr
    assert type(ae.net_.module_.encoder).__name__ == "Sequential"


def test_perceptual_ae_keeps_its_loss(images):
    ae = _fitted(images, loss="perceptual", max_epochs=1)
    criterion = ae.net_.criterion_
    ae.fit_decoder(images, max_epochs=1)
    assert ae.net_.criterion_ is criterion and ae.get_params()["loss"] == "perceptual"
    assert "valid_loss" not in ae.decoder_history_[0]
    assert ae.decoder_loss_ == ae.decoder_history_[0]["train_loss"]


def test_fit_decoder_is_reproducible(images):
    a, b = _fitted(images), _fitted(images)
    a.fit_decoder(images, max_epochs=2, random_state=3)
    b.fit_decoder(images, max_epochs=2, random_state=3)
    np.testing.assert_array_equal(a.inverse_transform(a.transform(images)), b.inverse_transform(b.transform(images)))


def test_bad_input_rejected_like_fit(images):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        PerceptualAETransformer().fit_decoder(images)
    ae = _fitted(images)
    for bad in (images[:, :, :32, :32], images.astype(np.float32) * 2.0, images[:1]):
        with pytest.raises(ValueError):
            ae.fit_decoder(bad, max_epochs=1)
    with pytest.raises(ValueError, match="max_epochs"):
        ae.fit_decoder(images, max_epochs=0)
    with pytest.raises(ValueError, match="lr"):
        ae.fit_decoder(images, lr=-1.0)
