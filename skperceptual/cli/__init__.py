"""The command line: ``skperceptual <command> ...`` (top layer: runs the protocol, data and weights)."""
