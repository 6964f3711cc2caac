"""Feature prediction: a decoder head emitting the loss network's feature shape, MSE to p(x)."""

import pytest
import torch
from sklearn.exceptions import NotFittedError
from torch.nn import functional as F

from skperceptual.losses.feature_prediction import (
    FeatureHead,
    FeaturePredictionAutoencoder,
    FeaturePredictionLoss,
    check_pixel_decoder,
    pixel_output,
)
from skperceptual.losses.networks import LossNetwork, build_feature_stack, feature_shapes, squash
from skperceptual.models.autoencoder import ConvAutoencoder
from skperceptual.training.data import batch_loader
from skperceptual.training.net import AutoencoderNet, as_dataset


@pytest.mark.parametrize(("name", "cut"), [("alexnet", 5), ("alexnet", 2), ("vgg16", 4), ("resnet18", 8)])
def test_the_head_emits_the_loss_networks_feature_shape(name, cut):
    (shape,) = feature_shapes(name, (cut,), (64, 80))
    ae = FeaturePredictionAutoencoder(8, (64, 80), shape)
    predicted, mu, _ = ae(torch.rand(2, 3, 64, 80))
    assert tuple(predicted.shape) == (2, *shape) and tuple(mu.shape) == (2, 8)


def test_large_feature_maps_grow_from_a_small_seed():
    # VGG16's relu1_2 at 64x64 is 64x64x64: a linear layer straight to it
    # would hold z * 64 * 64 * 64 weights.
    head = FeatureHead(32, (64, 64, 64))
    assert head.seed_shape == (256, 8, 8)
    assert sum(p.numel() for p in head.parameters()) < 32 * 64 * 64 * 64 / 5


@pytest.mark.parametrize("kind", ["sigmoid", "none", "unit"])
def test_loss_is_the_mse_of_squashed_prediction_to_squashed_features_of_x(kind):
    torch.manual_seed(0)
    stack = build_feature_stack("alexnet", 5)
    loss = FeaturePredictionLoss(LossNetwork(stack, (5,), squash=kind))
    x = torch.rand(2, 3, 64, 64)
    predicted = torch.randn(2, 192, 7, 7, requires_grad=True)
    value = loss(predicted, x)
    with torch.no_grad():
        expected = F.mse_loss(squash(predicted, kind), squash(stack(x), kind))
    assert torch.allclose(value, expected, rtol=1e-4)
    value.backward()
    assert predicted.grad.abs().sum() > 0
    assert all(p.grad is None for p in stack.parameters())


def test_one_training_step_runs_the_loss_network_once_and_only_on_real_images():
    torch.manual_seed(0)
    stack = build_feature_stack("alexnet", 5)
    seen = []
    # Hooked on the ReLU: a hook on the first conv would change how it runs (_conv).
    stack[1].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].requires_grad))
    loss = FeaturePredictionLoss(LossNetwork(stack, (5,)))
    ae = FeaturePredictionAutoencoder(8, (64, 64), (192, 7, 7))
    x = torch.rand(4, 3, 64, 64)
    loss(ae(x)[0], x).backward()
    assert seen == [False]
    assert ae.encoder[0].weight.grad.abs().sum() > 0
    assert ae.feature_decoder.mix[-1].weight.grad.abs().sum() > 0
    # The pixel decoder is kept for a later retraining, untouched by this one.
    assert ae.decoder[0].weight.grad is None


def test_the_pixel_decoder_takes_over_inside_pixel_output():
    ae = FeaturePredictionAutoencoder(8, (64, 64), (192, 7, 7))
    with pytest.raises(NotFittedError, match=r"Call fit_decoder\(X\) first"):
        check_pixel_decoder(ae)
    with torch.no_grad(), pixel_output(ae):
        recon = ae(torch.rand(2, 3, 64, 64))[0]
    assert tuple(recon.shape) == (2, 3, 64, 64) and 0 <= float(recon.min()) <= float(recon.max()) <= 1
    assert ae.output == "features"
    ae.pixel_decoder_fitted = True
    check_pixel_decoder(ae)
    # Other autoencoders always decode images.
    plain = ConvAutoencoder(8, (64, 64))
    with pixel_output(plain):
        check_pixel_decoder(plain)


def test_feature_prediction_targets_one_layer():
    network = LossNetwork(build_feature_stack("alexnet", 5), (2, 5))
    with pytest.raises(ValueError, match="one layer; pass a single perceptual_layer"):
        FeaturePredictionLoss(network)


def test_trains_through_the_skorch_net_and_the_loss_falls(images):
    torch.manual_seed(0)
    (shape,) = feature_shapes("alexnet", (5,), (64, 64))
    net = AutoencoderNet(
        FeaturePredictionAutoencoder, module__z_dim=8, module__image_size=(64, 64), module__feature_shape=shape,
        criterion=FeaturePredictionLoss(LossNetwork(build_feature_stack("alexnet", 5), (5,), squash="none")),
        optimizer=torch.optim.Adam, lr=1e-3, max_epochs=6, batch_size=8,
        iterator_train=batch_loader, iterator_valid=batch_loader, train_split=None, verbose=0,
    )
    net.fit(as_dataset(images), y=None)
    losses = net.history[:, "train_loss"]
    assert losses[-1] < losses[0]
    assert net.encode(as_dataset(images)).shape == (16, 8)
