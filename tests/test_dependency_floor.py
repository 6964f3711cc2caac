"""The torch version that setup.cfg declares has every feature the library uses."""

import configparser
import re
from pathlib import Path

#: Features the library uses unguarded, and the first torch release that has them.
FEATURES = {
    "fused Adam on the CPU (every fit asks for it)": (2, 4),
    'torch.amp.GradScaler("cuda")': (2, 3),
    "autograd.Function with setup_context and generate_vmap_rule (FrozenConv2d)": (2, 0),
}


def test_the_declared_torch_floor_has_every_feature_used():
    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parent.parent / "setup.cfg")
    requirement = next(line for line in config["options"]["install_requires"].splitlines()
                       if line.strip().startswith("torch>="))
    floor = tuple(int(n) for n in re.match(r"torch>=(\d+)\.(\d+)", requirement.strip()).groups())
    for feature, first in FEATURES.items():
        assert floor >= first, f"setup.cfg allows torch {floor}, but {feature} needs {first}"
