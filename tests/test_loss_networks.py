"""The 14 loss networks of the follow-up study: names, cuts, stacks, multi-layer loss, squash."""

import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from skperceptual.losses.networks import (
    LOSS_NETWORKS,
    NETWORKS,
    LossNetwork,
    MultiLayerPerceptualLoss,
    build_feature_stack,
    feature_shapes,
    layer_names,
    resolve_layer_weights,
    resolve_layers,
    squash,
    studied_layers,
)
from skperceptual.losses.perceptual import PerceptualLoss, load_perceptual_net


def test_the_fourteen_networks_of_the_follow_up_are_registered():
    assert len(NETWORKS) == 14
    assert "resnext50" in LOSS_NETWORKS  # the study's short name, as an alias


@pytest.mark.parametrize("name", list(NETWORKS))
def test_layer_names_match_the_torchvision_stack_module_for_module(name):
    spec = NETWORKS[name]
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None, **spec.kwargs)
    if spec.container is not None:
        modules = list(getattr(model, spec.container))
    else:
        modules = [getattr(model, n) for n in spec.names]
    assert len(modules) == len(spec.names) == len(set(spec.names))
    # Names say what the module is wherever they name a module type.
    for module_name, module in zip(spec.names, modules):
        if module_name.startswith("relu"):
            assert isinstance(module, nn.ReLU), module_name
        if module_name.startswith(("pool", "maxpool")):
            assert isinstance(module, nn.MaxPool2d), module_name
        if module_name.startswith("conv") and spec.container is not None:
            assert isinstance(module, nn.Conv2d), module_name


def test_the_studied_layers_are_the_follow_ups_positions():
    # Positions 1, 4, 7, 11 of alexnet.features; position 4 is the 2020 paper's.
    assert studied_layers("alexnet") == ("relu1", "relu2", "relu3", "relu5")
    assert resolve_layers("alexnet", list(studied_layers("alexnet"))) == (2, 5, 8, 12)
    assert resolve_layers("vgg11", list(studied_layers("vgg11"))) == (2, 5, 10, 20)
    assert resolve_layers("vgg16", list(studied_layers("vgg16"))) == (4, 9, 16, 30)
    assert studied_layers("vgg16") == ("relu1_2", "relu2_2", "relu3_3", "relu5_3")
    assert resolve_layers("squeezenet1_1", list(studied_layers("squeezenet1_1"))) == (2, 4, 8, 13)
    assert studied_layers("resnet50") == ()


def test_layers_resolve_from_ints_names_and_lists():
    assert resolve_layers("alexnet", 5) == (5,)
    assert resolve_layers("vgg16", "conv3_3") == (15,)
    assert layer_names("vgg16")[14] == "conv3_3"
    assert resolve_layers("alexnet", ["relu1", 5]) == (2, 5)
    assert resolve_layers("resnext50", "layer2") == (6,)


def test_bad_layers_say_what_is_valid():
    with pytest.raises(ValueError, match=r"valid names are \['conv1', 'relu1', 'pool1'"):
        resolve_layers("alexnet", "relu9")
    with pytest.raises(ValueError, match=r"from 1 to 13"):
        resolve_layers("alexnet", 14)
    with pytest.raises(ValueError, match=r"from 1 to 44"):
        resolve_layers("vgg16_bn", 0)
    with pytest.raises(ValueError, match=r"perceptual_layer=True is not a layer of .alexnet.: use an integer cut from 1 to 13"):
        resolve_layers("alexnet", True)
    with pytest.raises(ValueError, match="twice"):
        resolve_layers("alexnet", [5, "relu2"])
    with pytest.raises(ValueError, match="empty"):
        resolve_layers("alexnet", [])
    with pytest.raises(ValueError, match=r"Unknown perceptual_net 'vgg17'.*'efficientnet_b7'"):
        resolve_layers("vgg17", 1)


def test_layer_weights_are_validated_and_normalised():
    assert resolve_layer_weights((2, 5), None) == (0.5, 0.5)
    assert resolve_layer_weights((2, 5), [2, 6]) == (0.25, 0.75)
    with pytest.raises(ValueError, match="one weight per entry"):
        resolve_layer_weights((2, 5), [1])
    with pytest.raises(ValueError, match="non-negative"):
        resolve_layer_weights((2, 5), [1, -1])
    with pytest.raises(ValueError, match="not all zero"):
        resolve_layer_weights((2, 5), [0, 0])


# A shallow cut per network keeps the random-weight builds fast; each still
# exercises the network's own module types.
SHALLOW = {
    "alexnet": "relu2", "vgg11": "relu2_1", "vgg16": "relu1_2", "vgg16_bn": "relu1_2", "vgg19": "pool1",
    "densenet121": "denseblock1", "resnet18": "layer1", "resnet50": "layer1", "resnext50_32x4d": "layer1",
    "googlenet": "inception3a", "inception_v3": "Mixed_5b", "squeezenet1_1": "fire3",
    "efficientnet_b0": "stage2", "efficientnet_b7": "stage1",
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_every_network_builds_only_its_kept_layers_with_shapes_and_gradients(name):
    torch.manual_seed(0)
    (cut,) = resolve_layers(name, SHALLOW[name])
    stack = build_feature_stack(name, cut)
    assert len(stack) == cut
    assert all(not p.is_meta for p in stack.parameters())
    network = LossNetwork(stack, (cut,), squash="none")
    assert not any(p.requires_grad for p in network.parameters())
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    (features,) = network(x)
    assert tuple(features.shape[1:]) == feature_shapes(name, (cut,), (64, 64))[0]
    features.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_too_small_images_name_the_deepest_workable_layer():
    with pytest.raises(ValueError, match=r"too small for 'inception_v3' at layer 'Mixed_7a'.*at most 15"):
        feature_shapes("inception_v3", (18,), (64, 64))


def test_several_layers_come_from_one_forward_pass_and_match_separate_cuts():
    torch.manual_seed(0)
    stack = build_feature_stack("alexnet", 5)
    calls = []
    stack[1].register_forward_hook(lambda *args: calls.append(1))
    # Cut 4 is conv2, read before the in-place ReLU that follows it.
    network = LossNetwork(stack, (5, 4, 2), squash="none")
    x = torch.rand(2, 3, 64, 64)
    relu2, conv2, relu1 = network(x)
    assert len(calls) == 1
    # The plain stack's own computation, bit for bit.
    with torch.no_grad():
        assert torch.equal(relu1, stack[:2](x.clone()))
        assert torch.equal(conv2, stack[:4](x.clone()))
        assert (conv2 < 0).any()  # not overwritten by the ReLU
        assert torch.equal(relu2, torch.relu(conv2))
        assert torch.equal(relu2, stack[:5](x.clone()))


def test_each_cut_reads_exactly_what_the_stack_computes_up_to_it():
    torch.manual_seed(0)
    stack = build_feature_stack("alexnet", 5)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        for cuts in ((3, 5), (2, 3), (1, 2, 4)):
            features = LossNetwork(stack, cuts, squash="none")(x)
            for cut, feature in zip(cuts, features):
                assert torch.equal(feature, stack[:cut](x.clone())), cuts


@pytest.mark.parametrize("kind", ["sigmoid", "none", "unit"])
def test_squash_options_and_the_callers_tensor_is_never_modified(kind):
    torch.manual_seed(0)
    features = torch.randn(2, 8, 3, 3)
    before = features.clone()
    out = squash(features, kind)
    assert torch.equal(features, before)
    if kind == "sigmoid":
        assert torch.allclose(out, torch.sigmoid(before))
    elif kind == "none":
        assert torch.equal(out, before)
    else:
        assert torch.allclose(out.norm(dim=1), torch.ones(2, 3, 3))
    with pytest.raises(ValueError, match="perceptual_squash='tanh'"):
        squash(features, "tanh")


@pytest.mark.parametrize("normalize", [False, True])
def test_the_loss_leaves_its_inputs_untouched(normalize):
    torch.manual_seed(0)
    loss = MultiLayerPerceptualLoss(LossNetwork(build_feature_stack("alexnet", 5), (4, 5), normalize=normalize))
    x, x_hat = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    x0, x_hat0 = x.clone(), x_hat.clone()
    loss(x_hat, x)
    assert torch.equal(x, x0) and torch.equal(x_hat, x_hat0)


def test_multi_layer_loss_is_the_weighted_mean_of_per_layer_mses():
    torch.manual_seed(0)
    stack = build_feature_stack("alexnet", 5)
    loss = MultiLayerPerceptualLoss(LossNetwork(stack, (2, 5), squash="unit"), weights=[1, 3])
    loss.train()
    assert not loss.network.stack.training
    x, x_hat = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64, requires_grad=True)
    value = loss(x_hat, x)
    with torch.no_grad():
        per_layer = [F.mse_loss(squash(stack[:c](x_hat), "unit"), squash(stack[:c](x), "unit")) for c in (2, 5)]
    assert torch.allclose(value, 0.25 * per_layer[0] + 0.75 * per_layer[1], rtol=1e-4)
    value.backward()
    assert x_hat.grad.abs().sum() > 0


def test_single_layer_sigmoid_equals_the_papers_loss_with_real_weights(alexnet_weights):
    net = load_perceptual_net("alexnet", 5, alexnet_weights)
    torch.manual_seed(0)
    x, x_hat = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    ours = MultiLayerPerceptualLoss(LossNetwork(net, (5,), squash="sigmoid"))(x_hat, x)
    assert torch.allclose(ours, PerceptualLoss(net)(x_hat, x))
