"""What the protocol studies of this folder share: their command line."""

import argparse
from pathlib import Path


def study_parser(doc, profile, out, results):
    """The options every study takes: profile, seeds, jobs, run and result folders, --summarise-only, --set."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--profile", type=Path, default=profile, help=f"the profile (default: {profile.name} beside "
                                                                  "this script)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n-jobs", type=int, default=2, help="units run at a time (as for the CLI)")
    p.add_argument("--out", type=Path, default=Path(out), help="folder of the protocol runs, one per seed")
    p.add_argument("--results", type=Path, default=Path(results), help="where the tables and figures go")
    p.add_argument("--summarise-only", action="store_true", help="only collect the finished seeds' runs")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="profile override, as for 'skperceptual experiment', e.g. ae.device=cuda")
    return p


def overrides(args):
    """The ``--set`` values as ``load_profile`` keyword arguments."""
    from skperceptual.protocol._config import parse_overrides

    return parse_overrides(args.set)
