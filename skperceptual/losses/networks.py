"""The loss networks of the follow-up study: 14 torchvision networks with named layers.

Pihlgren et al. (arXiv 2302.04032, "A Systematic Performance Analysis of
Deep Perceptual Loss Networks") compare 14 ImageNet networks as loss
networks, each cut at four layers, and find that the layer matters at least
as much as the architecture. This module names the layers of each network's
feature stack, validates a layer given as an integer cut, a name or a list
of them, builds the kept part of the stack (nothing past the deepest cut is
ever allocated), and extracts several layers in one forward pass.

A *cut* ``k`` keeps the first ``k`` modules of the stack, as
``perceptual_layer=k`` always has: AlexNet's ``"relu2"`` is cut 5,
``features[:5]``, the 2020 paper's layer. The follow-up study's positions
are 0-based indices *after* which it extracts, so position ``p`` is cut
``p + 1``.

Weights are not loaded here: :func:`skperceptual.perceptual.load_perceptual_net`
loads them into the stack that :func:`build_feature_stack` returns.
"""

from collections import OrderedDict, namedtuple
from numbers import Integral

import torch
from torch import nn
from torch.nn import functional as F

from ..kernels import with_frozen_convolutions
from ..models.frozen import FrozenModule
from .mse import mse_loss

#: How a network's feature stack is found in the torchvision model:
#: ``container`` is the attribute holding it (``"features"``) or None when
#: the stack is a run of the model's own children, ``names`` are the layer
#: names in forward order, ``studied`` the cuts the follow-up study used
#: (empty where the issue did not record them), ``kwargs`` extra arguments
#: of :func:`torchvision.models.get_model`.
NetworkSpec = namedtuple("NetworkSpec", "container names studied kwargs")


def _plain_conv_names(kinds, per_block):
    """Name a conv/bn/relu/pool stack: ``conv3_2`` is block 3's second conv.

    ``per_block=False`` numbers every convolution on its own (AlexNet's
    ``conv1`` ... ``conv5``) and names a pool after the last convolution
    before it (``pool1``, ``pool2``, ``pool5``).
    """
    names, block, index = [], 1, 0
    for kind in kinds:
        if kind == "pool":
            names.append(f"pool{block if per_block else index}")
            block, index = (block + 1, 0) if per_block else (block, index)
            continue
        if kind == "conv":
            index += 1
        names.append(f"{kind}{block}_{index}" if per_block else f"{kind}{index}")
    return tuple(names)


def _vgg(config, batch_norm=False):
    kinds = []
    for item in config:
        kinds += ["pool"] if item == "M" else (["conv", "bn", "relu"] if batch_norm else ["conv", "relu"])
    return _plain_conv_names(kinds, per_block=True)


_VGG11 = (1, "M", 2, "M", 3, 3, "M", 4, 4, "M", 5, 5, "M")
_VGG16 = (1, 1, "M", 2, 2, "M", 3, 3, 3, "M", 4, 4, 4, "M", 5, 5, 5, "M")
_VGG19 = (1, 1, "M", 2, 2, "M", 3, 3, 3, 3, "M", 4, 4, 4, 4, "M", 5, 5, 5, 5, "M")
_RESNET = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
_EFFICIENTNET = ("stem", *(f"stage{i}" for i in range(1, 8)), "top_conv")


def _cuts(positions):
    return tuple(p + 1 for p in positions)


#: The 14 networks of the follow-up study, by torchvision name.
NETWORKS = {
    "alexnet": NetworkSpec(
        "features",
        _plain_conv_names(
            ["conv", "relu", "pool", "conv", "relu", "pool", "conv", "relu", "conv", "relu", "conv", "relu", "pool"],
            per_block=False,
        ),
        _cuts([1, 4, 7, 11]),
        {},
    ),
    "vgg11": NetworkSpec("features", _vgg(_VGG11), _cuts([1, 4, 9, 19]), {}),
    "vgg16": NetworkSpec("features", _vgg(_VGG16), _cuts([3, 8, 15, 29]), {}),
    "vgg16_bn": NetworkSpec("features", _vgg(_VGG16, batch_norm=True), (), {}),
    "vgg19": NetworkSpec("features", _vgg(_VGG19), (), {}),
    "densenet121": NetworkSpec(
        "features",
        ("conv0", "norm0", "relu0", "pool0", "denseblock1", "transition1", "denseblock2",
         "transition2", "denseblock3", "transition3", "denseblock4", "norm5"),
        (),
        {},
    ),
    "resnet18": NetworkSpec(None, _RESNET, (), {}),
    "resnet50": NetworkSpec(None, _RESNET, (), {}),
    "resnext50_32x4d": NetworkSpec(None, _RESNET, (), {}),
    # init_weights=False: the random init is redone on the kept layers
    # anyway, and it silences torchvision's FutureWarning about it.
    "googlenet": NetworkSpec(
        None,
        ("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
         "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
         "inception5a", "inception5b"),
        (),
        {"init_weights": False},
    ),
    "inception_v3": NetworkSpec(
        None,
        ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
         "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
         "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"),
        (),
        {"init_weights": False},
    ),
    "squeezenet1_1": NetworkSpec(
        "features",
        ("conv1", "relu1", "pool1", "fire2", "fire3", "pool3", "fire4", "fire5", "pool5",
         "fire6", "fire7", "fire8", "fire9"),
        _cuts([1, 3, 7, 12]),
        {},
    ),
    "efficientnet_b0": NetworkSpec("features", _EFFICIENTNET, (), {}),
    "efficientnet_b7": NetworkSpec("features", _EFFICIENTNET, (), {}),
}

#: The follow-up's short name of ResNeXt-50, accepted as an alias.
ALIASES = {"resnext50": "resnext50_32x4d"}

LOSS_NETWORKS = tuple(NETWORKS) + tuple(ALIASES)

SQUASHES = ("sigmoid", "none", "unit")


def network_spec(name):
    """Return the :class:`NetworkSpec` of ``name``; ValueError lists the valid names.

    Parameters
    ----------
    name : str
        A network of :data:`NETWORKS` or an alias of :data:`ALIASES`.

    Returns
    -------
    spec : NetworkSpec

    Examples
    --------
    >>> network_spec("alexnet").names[4]
    'relu2'
    """
    spec = NETWORKS.get(ALIASES.get(name, name)) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"Unknown perceptual_net {name!r}; valid values are {list(LOSS_NETWORKS)}.")
    return spec


def canonical_name(name):
    """The torchvision name of network ``name`` (resolving :data:`ALIASES`).

    Parameters
    ----------
    name : str

    Returns
    -------
    name : str

    Examples
    --------
    >>> canonical_name("resnext50")
    'resnext50_32x4d'
    """
    network_spec(name)
    return ALIASES.get(name, name)


def layer_names(name):
    """Names of the layers of network ``name``; the i-th is cut ``i + 1``.

    Parameters
    ----------
    name : str

    Returns
    -------
    names : tuple of str
        In forward order.

    Examples
    --------
    >>> layer_names("vgg16")[:4]
    ('conv1_1', 'relu1_1', 'conv1_2', 'relu1_2')
    """
    return network_spec(name).names


def studied_layers(name):
    """Names of the four layers the follow-up study cut ``name`` at (empty if not recorded).

    Parameters
    ----------
    name : str

    Returns
    -------
    names : tuple of str

    Examples
    --------
    >>> studied_layers("alexnet")
    ('relu1', 'relu2', 'relu3', 'relu5')
    """
    spec = network_spec(name)
    return tuple(spec.names[cut - 1] for cut in spec.studied)


def _resolve_one(name, layer, names):
    if isinstance(layer, str):
        if layer not in names:
            raise ValueError(
                f"perceptual_layer={layer!r} is not a layer of {name!r}; valid names are {list(names)} "
                f"(or an integer cut from 1 to {len(names)})."
            )
        return names.index(layer) + 1
    if isinstance(layer, bool):
        raise ValueError(
            f"perceptual_layer={layer!r} is not a layer of {name!r}: use an integer cut from 1 to {len(names)} "
            f"or a layer name such as {names[-1]!r}."
        )
    if not isinstance(layer, Integral) or not 1 <= layer <= len(names):
        raise ValueError(
            f"perceptual_layer={int(layer) if isinstance(layer, Integral) else layer!r} is out of range for {name!r}: "
            f"use an integer from 1 to "
            f"{len(names)} (the number of feature modules kept) or a layer name such as {names[-1]!r}."
        )
    return int(layer)


def resolve_layers(name, layer):
    """Turn a ``perceptual_layer`` value into a tuple of integer cuts.

    Parameters
    ----------
    name : str
        A network of :data:`NETWORKS` (or an alias).
    layer : int, str or list of int or str
        An integer cut (keep that many modules), a layer name such as
        ``"relu2"``, or a non-empty list of them for a multi-layer loss.

    Returns
    -------
    cuts : tuple of int
        In the order given; a single layer gives a 1-tuple.

    Raises
    ------
    ValueError
        For an unknown name (listing the valid ones), a cut out of range
        (giving the range), an empty list or a layer listed twice.

    Examples
    --------
    >>> resolve_layers("alexnet", "relu2"), resolve_layers("alexnet", [2, "relu2"])
    ((5,), (2, 5))
    """
    names = network_spec(name).names
    many = isinstance(layer, (list, tuple))
    cuts = tuple(_resolve_one(name, item, names) for item in (layer if many else [layer]))
    if not cuts:
        raise ValueError("perceptual_layer is an empty list; give at least one layer.")
    if len(set(cuts)) != len(cuts):
        raise ValueError(f"perceptual_layer={layer!r} lists the same layer of {name!r} twice.")
    return cuts


def n_layers(name):
    """Return how many modules the feature stack of network ``name`` has.

    Parameters
    ----------
    name : str
        One of :data:`LOSS_NETWORKS`.

    Returns
    -------
    n : int
        The largest valid ``perceptual_layer`` for this network.

    Examples
    --------
    >>> n_layers("alexnet")
    13
    """
    return len(layer_names(name))


def check_perceptual_net(name, layer=None):
    """Raise ValueError, listing the valid values, for an unknown net or layer.

    ``layer`` may be an integer cut, a layer name or a list of them (see
    :func:`skperceptual.loss_networks.resolve_layers`).
    """
    if layer is None:
        layer_names(name)
    else:
        resolve_layers(name, layer)


def resolve_layer_weights(cuts, weights):
    """Return per-layer loss weights, normalised to sum to 1.

    Parameters
    ----------
    cuts : tuple of int
        From :func:`resolve_layers`.
    weights : None or sequence of float
        One non-negative weight per layer, not all zero; None weighs the
        layers equally.

    Returns
    -------
    weights : tuple of float

    Examples
    --------
    >>> resolve_layer_weights((2, 5), [1, 3])
    (0.25, 0.75)
    """
    if weights is None:
        return tuple(1.0 / len(cuts) for _ in cuts)
    weights = tuple(float(w) for w in weights)
    if len(weights) != len(cuts):
        raise ValueError(
            f"perceptual_layer_weights has {len(weights)} values for {len(cuts)} layers; give one "
            "weight per entry of perceptual_layer, or None for equal weights."
        )
    if any(not w >= 0 for w in weights) or sum(weights) == 0:
        raise ValueError(f"perceptual_layer_weights={list(weights)} must be non-negative and not all zero.")
    return tuple(w / sum(weights) for w in weights)


def meta_feature_stack(name, cut):
    """The first ``cut`` modules of ``name`` on the meta device (no memory, no init).

    Module keys are those of the full model's state_dict less
    :func:`state_dict_prefix`, so that weights can be checked against the
    stack's state_dict before anything is allocated.

    Parameters
    ----------
    name : str
    cut : int
        From :func:`resolve_layers`.

    Returns
    -------
    stack : torch.nn.Sequential
        On the meta device.
    """
    import torchvision

    spec = network_spec(name)
    with torch.device("meta"):
        model = torchvision.models.get_model(canonical_name(name), weights=None, **spec.kwargs)
    if spec.container is not None:
        # Slicing keeps each module's key ("0", or "conv0" for DenseNet),
        # which is what the full model's "features.0.weight" reduces to.
        return getattr(model, spec.container)[:cut]
    return nn.Sequential(OrderedDict((n, getattr(model, n)) for n in spec.names[:cut]))


def state_dict_prefix(name):
    """Prefix of the kept layers' keys in the full model's state_dict.

    Parameters
    ----------
    name : str

    Returns
    -------
    prefix : str
        ``"features."`` or ``""``.

    Examples
    --------
    >>> state_dict_prefix("alexnet"), state_dict_prefix("resnet18")
    ('features.', '')
    """
    container = network_spec(name).container
    return f"{container}." if container else ""


def build_feature_stack(name, cut):
    """Build the first ``cut`` modules of ``name``, randomly initialised, on the CPU.

    The full network is built on the meta device, so the layers past the cut
    (most of the parameters of AlexNet and VGG) are never allocated or
    initialised; only the kept modules are materialised and reset.

    Parameters
    ----------
    name : str
    cut : int
        From :func:`resolve_layers`.

    Returns
    -------
    stack : torch.nn.Sequential
        Trainable and in train mode; :class:`LossNetwork` freezes it.

    Examples
    --------
    >>> len(build_feature_stack("vgg16", 4))
    4
    """
    (cut,) = resolve_layers(name, cut)
    stack = meta_feature_stack(name, cut).to_empty(device="cpu")
    for module in stack.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return stack


def feature_shapes(name, cuts, image_size):
    """Shape ``(C, h, w)`` of the features at each cut for ``(H, W)`` images.

    Computed on the meta device, so it costs no memory and no arithmetic.

    Parameters
    ----------
    name : str
    cuts : sequence of int
        From :func:`resolve_layers`.
    image_size : tuple of int
        ``(H, W)``.

    Returns
    -------
    shapes : list of tuple of int
        One ``(C, h, w)`` per cut, in the order of ``cuts``.

    Raises
    ------
    ValueError
        When an image of that size is too small for a layer (the network
        downsamples it to nothing), naming the deepest layer that works.

    Examples
    --------
    >>> feature_shapes("alexnet", (5,), (64, 64))
    [(192, 7, 7)]
    """
    stack = meta_feature_stack(name, max(cuts))
    h = torch.empty(1, 3, *image_size, device="meta")
    shapes, names = {}, network_spec(name).names
    for i, module in enumerate(stack):
        try:
            h = module(h)
        except RuntimeError as exc:
            raise ValueError(
                f"Images of size {tuple(image_size)} are too small for {name!r} at layer "
                f"{names[i]!r} (cut {i + 1}); use a cut of at most {i} or larger images ({exc})."
            ) from exc
        shapes[i + 1] = tuple(h.shape[1:])
    return [shapes[cut] for cut in cuts]


def squash(features, kind):
    """Apply a ``perceptual_squash`` to a feature map, never in place.

    ``"sigmoid"`` (the 2020 paper) maps every value into (0, 1);
    ``"none"`` (the follow-ups) keeps raw features; ``"unit"`` divides each
    location's channel vector by its Euclidean norm, as LPIPS does, so that
    every location weighs the same whatever its activation strength.

    Parameters
    ----------
    features : torch.Tensor
        ``(n, C, h, w)``.
    kind : {"sigmoid", "none", "unit"}

    Returns
    -------
    squashed : torch.Tensor
        A new tensor (``features`` itself for ``"none"``).

    Examples
    --------
    >>> x = torch.tensor([[[[3.0]], [[4.0]]]])
    >>> squash(x, "unit").flatten().tolist()
    [0.6000000238418579, 0.800000011920929]
    """
    if kind == "sigmoid":
        return torch.sigmoid(features)
    if kind == "none":
        return features
    if kind == "unit":
        # LPIPS adds its eps to the norm; F.normalize clamps it, which keeps
        # an all-zero (dead ReLU) location at zero instead of dividing by 0.
        return F.normalize(features, p=2, dim=1, eps=1e-10)
    raise ValueError(f"perceptual_squash={kind!r} is not one of {list(SQUASHES)}.")


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class LossNetwork(nn.Module):
    """A frozen feature stack read at several layers in one forward pass.

    Parameters
    ----------
    stack : torch.nn.Sequential
        The kept modules, e.g. from :func:`build_feature_stack` or
        :func:`skperceptual.perceptual.load_perceptual_net`, deep enough
        for the largest cut. It is frozen: eval mode whatever ``train()``
        is called with (skorch switches criteria to train mode every epoch)
        and no parameter requires gradients. Gradients still flow through it
        to the input.
    cuts : sequence of int
        The layers to read, as cuts (see :func:`resolve_layers`).
    squash : {"sigmoid", "none", "unit"}, default="sigmoid"
        Applied to each layer's features (see :func:`squash`).
    normalize : bool, default=False
        Standardise images with ImageNet's mean and std first.

    Examples
    --------
    >>> net = LossNetwork(build_feature_stack("alexnet", 5), cuts=(2, 5))
    >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 64, 64))]
    [(1, 64, 15, 15), (1, 192, 7, 7)]
    """

    def __init__(self, stack, cuts, squash="sigmoid", normalize=False):
        super().__init__()
        if max(cuts) > len(stack):
            raise ValueError(f"The stack has {len(stack)} modules, fewer than the deepest cut {max(cuts)}.")
        # Modules past the deepest cut would only cost time.
        # Stock convolutions as FrozenConv2d (sharing their parameters): the
        # network never trains, so its backward needs no copies of its inputs.
        self.frozen = FrozenModule(with_frozen_convolutions(stack[: max(cuts)]))
        self.cuts = tuple(cuts)
        self.squash = squash
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def stack(self):
        """The kept modules (frozen)."""
        return self.frozen.module

    def targets(self, x):
        """The features of real images, computed without gradients: loss targets."""
        with torch.no_grad():
            return self(x)

    def forward(self, x):
        """Return the squashed features at each cut, in the order of ``cuts``."""
        h = (x - self.mean) / self.std if self.normalize else x
        taken, wanted = {}, set(self.cuts)
        for i, layer in enumerate(self.stack, start=1):
            h = layer(h)
            if i in wanted:
                nxt = self.stack[i] if i < len(self.stack) else None
                # An in-place module next (AlexNet's and VGG's ReLUs) would
                # overwrite this layer's output, e.g. a "conv" layer read
                # before its ReLU.
                taken[i] = h.clone() if getattr(nxt, "inplace", False) else h
        return [squash(taken[cut], self.squash) for cut in self.cuts]


class MultiLayerPerceptualLoss(nn.Module):
    """Weighted mean of per-layer MSEs between the features of ``x_hat`` and ``x``.

    ``loss = sum_l w_l * mean((s(p_l(x_hat)) - s(p_l(x)))**2)`` with
    weights summing to 1 and ``s`` the squash. One forward pass through the
    shared stack serves all layers.

    Parameters
    ----------
    network : LossNetwork
    weights : sequence of float or None, default=None
        Per-layer weights; None weighs the layers equally.

    Examples
    --------
    >>> loss = MultiLayerPerceptualLoss(LossNetwork(build_feature_stack("alexnet", 5), (2, 5)))
    >>> x = torch.rand(2, 3, 64, 64)
    >>> float(loss(x, x))
    0.0
    """

    def __init__(self, network, weights=None):
        super().__init__()
        self.network = network
        self.weights = resolve_layer_weights(network.cuts, weights)

    def forward(self, x_hat, x):
        targets = self.network.targets(x)
        predictions = self.network(x_hat)
        return sum(w * mse_loss(p, t) for w, p, t in zip(self.weights, predictions, targets))
