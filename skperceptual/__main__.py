"""``python -m skperceptual``: the command line (:mod:`skperceptual.cli`)."""

import sys

from .cli.main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
