"""Command line interface: ``skperceptual <command> ...``.

Each command is a subparser added by a ``_add_<command>_parser`` function
and run by a ``_cmd_<command>(args)`` function; add new commands the same
way. Heavy imports (torch, gymnasium) stay inside the command functions so
that ``skperceptual --help`` starts fast.
"""

import argparse
import sys

from . import __version__


def _add_data_parser(subparsers):
    data = subparsers.add_parser(
        "data", help="generate or download datasets into the data folder"
    )
    datasets = data.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    lunar = datasets.add_parser(
        "lunarlander", help="generate and cache the LunarLander collection"
    )
    lunar.add_argument("--rollouts", type=int, default=1400, help="number of rollouts (default: 1400)")
    lunar.add_argument("--steps", type=int, default=150, help="frames per rollout (default: 150)")
    lunar.add_argument("--data-home", default=None, help="data folder (default: $SKPERCEPTUAL_DATA or ~/skperceptual_data)")
    lunar.add_argument("--n-jobs", type=int, default=None, help="processes (default: 1; -1: all cores)")
    lunar.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    lunar.add_argument("--quiet", action="store_true", help="no progress bar")
    data.set_defaults(func=_cmd_data)


def _cmd_data(args):
    if args.dataset == "lunarlander":
        return _data_lunarlander(args)
    raise ValueError(f"unknown dataset {args.dataset!r}")  # argparse prevents this


def _data_lunarlander(args):
    from .datasets import load_lunarlander

    data = load_lunarlander(
        data_home=args.data_home,
        n_rollouts=args.rollouts,
        n_steps=args.steps,
        random_state=args.random_state,
        n_jobs=args.n_jobs,
        verbose=0 if args.quiet else 1,
    )
    print(f"LunarLander collection: {data.filename}")
    print(f"{'split':<12} {'frames':>8} {'rollouts':>9}")
    for part in ("autoencoder", "predictor", "test"):
        rollouts = len(set(data[part].rollout.tolist()))
        print(f"{part:<12} {len(data[part].X):>8} {rollouts:>9}")
    meta = data.metadata
    print(
        f"off screen: dropped {meta['n_off_screen']} of {meta['n_altered_frames']} "
        f"altered frames ({100 * meta['off_screen_fraction']:.1f}%)"
    )
    return 0


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="skperceptual",
        description="Perceptual-loss autoencoders (Pihlgren et al., IJCNN 2020).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_data_parser(subparsers)
    from .protocol._cli import add_subcommands

    add_subcommands(subparsers)
    from ._weights_cli import add_weights_parser

    add_weights_parser(subparsers)
    return parser


def main(argv=None):
    """Run the ``skperceptual`` command line.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    status : int
        Exit status, 0 on success.

    Examples
    --------
    >>> from skperceptual.__main__ import main
    >>> main(["data", "lunarlander", "--rollouts", "4", "--steps", "5",
    ...       "--quiet"])  # doctest: +SKIP
    """
    args = _build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
