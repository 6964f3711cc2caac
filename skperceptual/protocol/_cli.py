"""``skperceptual experiment`` and ``skperceptual report`` subcommands.

``skperceptual/__main__.py`` wires these in with :func:`add_subcommands`;
``python -m skperceptual.protocol._cli experiment ...`` runs them standalone.
"""

import argparse
import sys

DATASETS = ("lunarlander", "stl10", "svhn")


def add_subcommands(subparsers):
    """Register ``experiment`` and ``report`` on an argparse ``subparsers`` object.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``parser.add_subparsers()``.

    Returns
    -------
    parsers : dict
        ``{"experiment": parser, "report": parser}``; each has its handler as
        the ``func`` default.
    """
    exp = subparsers.add_parser(
        "experiment",
        help="run the paper's evaluation protocol on a dataset",
        description="Fit the AE / VAE / P. AE / P. VAE autoencoders, tune heads on their embeddings and "
        "write results.csv, tables.md (next to the paper's numbers), figure6.png and embeddings.png. "
        "Re-running the same command resumes: finished units are skipped.",
    )
    exp.add_argument("--dataset", choices=DATASETS, required=True)
    exp.add_argument("--profile", default="smoke",
                     help="smoke, cpu, paper or the path of a TOML profile (default: smoke)")
    exp.add_argument("--out", default=None,
                     help="run directory (default: runs/<dataset>-<profile>-<run key>)")
    exp.add_argument("--n-jobs", type=int, default=None, help="units run at once (default: 1, or all cluster workers)")
    exp.add_argument("--backend", default=None,
                     help="joblib backend: loky (default), threading, dask or ray")
    exp.add_argument("--scheduler", default=None,
                     help="dask.distributed scheduler address for --backend dask (default: a LocalCluster)")
    exp.add_argument("--resources", default=None,
                     help="dask worker resources each unit needs, e.g. GPU=1 for one unit per GPU worker")
    exp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a profile value, e.g. --set ae.max_epochs=2 --set 'ae.z_dims=[32]'")
    exp.add_argument("--quiet", action="store_true", help="no progress output")
    exp.set_defaults(func=experiment_command)

    rep = subparsers.add_parser("report", help="re-render tables.md and the figures of a run directory")
    rep.add_argument("run_dir")
    rep.set_defaults(func=report_command)
    return {"experiment": exp, "report": rep}


def _backend(args):
    """Set up the named backend; return (backend, backend_kwargs, cleanup)."""
    if args.backend == "dask":
        from distributed import Client, LocalCluster

        client = Client(args.scheduler) if args.scheduler else Client(LocalCluster())
        kwargs = {}
        if args.resources:
            name, _, amount = args.resources.partition("=")
            kwargs["resources"] = {name: float(amount or 1)}
        return "dask", kwargs, client.close
    if args.backend == "ray":
        from ray.util.joblib import register_ray

        register_ray()
    return args.backend, {}, lambda: None


def experiment_command(args):
    """Handler of ``skperceptual experiment``: run the protocol, print where the outputs are."""
    from ._config import load_profile, parse_overrides
    from ._runner import run_protocol

    overrides = parse_overrides(args.overrides)
    config = load_profile(args.profile, dataset=args.dataset, **overrides)
    backend, backend_kwargs, cleanup = _backend(args)
    try:
        results = run_protocol(None, config, args.out, n_jobs=args.n_jobs, backend=backend,
                               backend_kwargs=backend_kwargs, verbose=0 if args.quiet else 1)
    finally:
        cleanup()
    print(f"{len(results)} result rows; see tables.md in the run directory")
    return 0


def report_command(args):
    """Handler of ``skperceptual report DIR``: re-render tables and figures from results.csv."""
    from ._report import render_report

    for path in render_report(args.run_dir):
        print(path)
    return 0


def main(argv=None):
    """Standalone entry point: ``python -m skperceptual.protocol._cli experiment ...``."""
    parser = argparse.ArgumentParser(prog="skperceptual")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
