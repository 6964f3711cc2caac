"""Command line interface: ``skperceptual <command> ...``.

Each command is a subparser added by a ``_add_<command>_parser`` function
and run by a ``_cmd_<command>(args)`` function; add new commands the same
way. Heavy imports (torch, gymnasium) stay inside the command functions so
that ``skperceptual --help`` starts fast.

A user's mistake (a bad ``--set``, an unknown profile, a missing data or
weights file, a missing optional extra) is one line on stderr and exit status 2, like argparse's own
errors; ``--debug`` shows its traceback. Any other exception is a bug and
keeps its traceback.
"""

import argparse
import errno
import sys

from .. import __version__

#: What the library raises for bad input: configuration values, profiles,
#: data and weights files, and an optional extra that is not installed
#: (the error names the pip command). Anything else is a programming error.
USER_ERRORS = (ValueError, OSError, KeyError, ImportError)


def _add_data_parser(subparsers):
    data = subparsers.add_parser(
        "data", help="generate or download datasets into the data folder"
    )
    datasets = data.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    lunar = datasets.add_parser(
        "lunarlander", help="generate and cache the LunarLander collection"
    )
    atari = datasets.add_parser(
        "atari", help="generate and cache an Atari game's collection (needs skperceptual[atari])"
    )
    # Not argparse choices: the games' list would import the datasets (and
    # torch) for every command; load_atari names the valid games instead.
    atari.add_argument("game", help="a game of skperceptual.datasets.ATARI_GAMES: pong, breakout or mspacman")
    for parser in (lunar, atari):
        parser.add_argument("--rollouts", type=int, default=1400, help="number of rollouts (default: 1400)")
        parser.add_argument("--steps", type=int, default=150, help="frames per rollout (default: 150)")
        parser.add_argument("--data-home", default=None,
                            help="data folder (default: $SKPERCEPTUAL_DATA or ~/skperceptual_data)")
        parser.add_argument("--n-jobs", type=int, default=None, help="processes (default: 1; -1: all cores)")
        parser.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
    data.set_defaults(func=_cmd_data)


def _cmd_data(args):
    from .. import datasets

    kwargs = dict(data_home=args.data_home, n_rollouts=args.rollouts, n_steps=args.steps,
                  random_state=args.random_state, n_jobs=args.n_jobs, verbose=0 if args.quiet else 1)
    if args.dataset == "lunarlander":
        data, title = datasets.load_lunarlander(**kwargs), "LunarLander"
        dropped, why = data.metadata["n_off_screen"], "off screen"
    else:
        data, title = datasets.load_atari(args.game, **kwargs), f"Atari {args.game}"
        dropped, why = data.metadata["n_absent"], f"without the {datasets.ATARI_GAMES[args.game].target}"
    print(f"{title} collection: {data.filename}")
    print(f"{'split':<12} {'frames':>8} {'rollouts':>9}")
    for part in ("autoencoder", "predictor", "test"):
        rollouts = len(set(data[part].rollout.tolist()))
        print(f"{part:<12} {len(data[part].X):>8} {rollouts:>9}")
    altered = data.metadata["n_altered_frames"]
    print(f"{why}: dropped {dropped} of {altered} altered frames ({100 * dropped / altered:.1f}%)")
    return 0


def _add_experiment_parser(subparsers):
    exp = subparsers.add_parser(
        "experiment",
        help="run the paper's evaluation protocol on a dataset",
        description="Fit the AE / VAE / P. AE / P. VAE autoencoders, tune heads on their embeddings and "
        "write results.csv, tables.md (next to the paper's numbers), figure6.png and embeddings.png. "
        "Re-running the same command resumes: finished units are skipped.",
    )
    exp.add_argument("--dataset", required=True,
                     help="a dataset of skperceptual.protocol's registry: lunarlander, stl10, svhn, or an Atari "
                     "game (pong, breakout, mspacman; needs skperceptual[atari])")
    exp.add_argument("--profile", default="smoke",
                     help="smoke, cpu, paper or the path of a TOML profile (default: smoke)")
    exp.add_argument("--out", default=None,
                     help="run directory (default: runs/<dataset>-<profile>-<run key>)")
    exp.add_argument("--n-jobs", type=int, default=None, help="units run at once (default: 1, or all cluster workers)")
    exp.add_argument("--backend", default=None,
                     help="where units run: loky (local processes, the default), dask, ray, or another joblib "
                     "backend")
    exp.add_argument("--scheduler", default=None,
                     help="cluster address: a dask.distributed scheduler for --backend dask (default: a "
                     "LocalCluster), a Ray cluster for --backend ray (default: a local Ray)")
    exp.add_argument("--ae-resources", default=None, metavar="NAME=AMOUNT[,NAME=AMOUNT]",
                     help="what each autoencoder fit asks the cluster for, e.g. GPU=1; head searches ask for "
                     "one CPU")
    exp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a profile value, e.g. --set ae.max_epochs=2 --set 'ae.z_dims=[32]'; "
                     "the ae section takes any PerceptualAETransformer parameter")
    exp.add_argument("--quiet", action="store_true", help="no progress output")
    exp.set_defaults(func=_cmd_experiment)


def parse_resources(text):
    """``"GPU=1,memory=8e9"`` as ``{"GPU": 1.0, "memory": 8e9}``; None for None."""
    if text is None:
        return None
    resources = {}
    for item in text.split(","):
        name, sep, amount = item.partition("=")
        try:
            resources[name.strip()] = float(amount) if sep else 1.0
        except ValueError:
            raise ValueError(f"--ae-resources {text!r}: {amount!r} is not a number; write NAME=AMOUNT pairs "
                             "separated by commas, e.g. GPU=1.") from None
        if not name.strip():
            raise ValueError(f"--ae-resources {text!r} names no resource; write e.g. GPU=1.")
    return resources


def _backend(args):
    """Connect to the cluster of ``--backend``; return the function that disconnects."""
    if args.backend == "dask":
        from distributed import Client, LocalCluster

        client = Client(args.scheduler) if args.scheduler else Client(LocalCluster())
        return client.close
    if args.backend == "ray":
        import ray

        ray.init(address=args.scheduler)
        return ray.shutdown
    return lambda: None


def _cmd_experiment(args):
    from ..protocol import load_profile, run_protocol
    from ..protocol._config import parse_overrides

    # The whole configuration is checked before a cluster starts or data loads.
    try:
        config = load_profile(args.profile, dataset=args.dataset, **parse_overrides(args.overrides))
    except TypeError as exc:  # e.g. a value given for a whole section: the user's mistake here
        raise ValueError(str(exc)) from exc
    if args.n_jobs is not None and args.n_jobs == 0:
        raise ValueError("--n-jobs 0 runs nothing: pass a positive number, -1 for all cores, or leave it out.")
    ae_resources = parse_resources(args.ae_resources)
    cleanup = _backend(args)
    try:
        results = run_protocol(None, config, args.out, n_jobs=args.n_jobs, backend=args.backend,
                               ae_resources=ae_resources, verbose=0 if args.quiet else 1)
    finally:
        cleanup()
    print(f"{len(results)} result rows; see tables.md in the run directory")
    return 0


def _add_report_parser(subparsers):
    rep = subparsers.add_parser("report", help="re-render tables.md and the figures of a run directory")
    rep.add_argument("run_dir")
    rep.set_defaults(func=_cmd_report)


def _cmd_report(args):
    from ..protocol import render_report

    for path in render_report(args.run_dir):
        print(path)
    return 0


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="skperceptual",
        description="Perceptual-loss autoencoders (Pihlgren et al., IJCNN 2020).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_data_parser(subparsers)
    _add_experiment_parser(subparsers)
    _add_report_parser(subparsers)
    from .weights import add_weights_parser

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
        Exit status: 0 on success, 2 for a user error (bad options,
        configuration, data or weights), reported as one line on stderr,
        and 130 after Ctrl-C, which keeps every finished unit and saves
        none that was cut short.

    Examples
    --------
    >>> from skperceptual.__main__ import main
    >>> main(["data", "lunarlander", "--rollouts", "4", "--steps", "5",
    ...       "--quiet"])  # doctest: +SKIP
    """
    args = _build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        # 128 + SIGINT, as shells report a command stopped by Ctrl-C.
        print("skperceptual: interrupted; finished units are kept, and the same command resumes the rest",
              file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if args.debug:
            raise
        message = _one_line(exc)
        if getattr(exc, "errno", None) == errno.ENOSPC:
            where = getattr(args, "out", None)
            message = (f"no space left on the device{f' of --out {where}' if where else ''} ({message}). Free "
                       "some space and rerun the same command: finished units are kept.")
        print(f"skperceptual: error: {message}", file=sys.stderr)
        return 2


def _one_line(exc):
    """``exc``'s message on one line (KeyError's without the quotes its str() adds)."""
    message = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else exc
    return " ".join(str(message).split()) or type(exc).__name__
