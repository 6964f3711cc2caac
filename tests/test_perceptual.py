"""The perceptual-network registry, weight loading and the perceptual loss."""

import pytest
import torch

from skperceptual.losses.perceptual import (
    PerceptualLoss,
    load_perceptual_net,
    n_layers,
)


def test_imagenet_weights_load_into_the_papers_alexnet_cut(alexnet_weights):
    # "imagenet" resolves to the file that conftest.py registered.
    net = load_perceptual_net("alexnet", 5, "imagenet")
    state = torch.load(alexnet_weights, weights_only=True)
    assert len(net) == 5 and isinstance(net[4], torch.nn.ReLU)
    assert torch.equal(net[0].weight, state["features.0.weight"])
    assert torch.equal(net[3].bias, state["features.3.bias"])
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def test_feature_only_state_dict_without_prefix_loads(alexnet_weights, tmp_path):
    state = torch.load(alexnet_weights, weights_only=True)
    bare = {k.removeprefix("features."): v for k, v in state.items()}
    torch.save(bare, tmp_path / "features.pth")
    net = load_perceptual_net("alexnet", 2, tmp_path / "features.pth")
    assert len(net) == 2 and torch.equal(net[0].weight, state["features.0.weight"])


def test_only_the_kept_layers_are_required(alexnet_weights, tmp_path):
    state = torch.load(alexnet_weights, weights_only=True)
    torch.save({k: v for k, v in state.items() if k.startswith("features.0.")}, tmp_path / "conv1.pth")
    assert len(load_perceptual_net("alexnet", 2, tmp_path / "conv1.pth")) == 2
    with pytest.raises(ValueError, match=r"perceptual_weights: .*conv1.pth.* lacks .*'features.3.weight'"):
        load_perceptual_net("alexnet", 5, tmp_path / "conv1.pth")


# All 14 networks are built (at a shallow layer) in test_loss_networks.py;
# the deepest layers of inception_v3 need larger images than 64x64.
@pytest.mark.parametrize("name", ["alexnet", "vgg16", "squeezenet1_1", "resnet18"])
def test_every_registered_net_builds_at_its_deepest_layer(name):
    net = load_perceptual_net(name, n_layers(name), weights=None)
    assert net(torch.rand(1, 3, 64, 64)).ndim == 4


def test_unknown_net_and_layer_list_the_valid_values():
    with pytest.raises(ValueError, match=r"'alexnet', 'vgg11', 'vgg16', 'vgg16_bn'"):
        load_perceptual_net("inception", 5, None)
    with pytest.raises(ValueError, match=r"1 to 8"):
        load_perceptual_net("resnet18", 9, None)
    with pytest.raises(ValueError, match=r"1 to 13"):
        load_perceptual_net("alexnet", 0, None)


def test_perceptual_loss_compares_sigmoid_features_and_stays_frozen():
    torch.manual_seed(0)
    net = load_perceptual_net("resnet18", 2, None)  # has BatchNorm: eval mode matters
    loss = PerceptualLoss(net)
    loss.train()
    assert not net.training
    x, x_hat = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64, requires_grad=True)
    value = loss(x_hat, x)
    expected = torch.mean((torch.sigmoid(net(x_hat)) - torch.sigmoid(net(x))) ** 2)
    assert torch.allclose(value, expected)
    value.backward()
    assert x_hat.grad is not None and x_hat.grad.abs().sum() > 0


def test_normalisation_uses_imagenet_statistics():
    net = torch.nn.Identity()
    x = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert torch.allclose(PerceptualLoss(net, normalize=True).features(x), torch.full((1, 3, 2, 2), 0.5))
    assert torch.allclose(PerceptualLoss(net).features(x), torch.sigmoid(x))
