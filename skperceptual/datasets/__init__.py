"""Datasets of the protocol, each loaded in one call: Pihlgren et al.'s (IJCNN 2020) and Atari games.

Every loader returns a :class:`~sklearn.utils.Bunch` with ``autoencoder``,
``predictor`` and ``test`` parts (the paper's Table I), each a Bunch with
``X`` (uint8, channels first) and ``y``.
"""

from ._atari import ATARI_GAMES, load_atari, make_atari
from ._common import get_data_home
from ._lunarlander import load_lunarlander, make_lunarlander
from ._stl10 import load_stl10
from ._svhn import load_svhn

__all__ = [
    "ATARI_GAMES",
    "get_data_home",
    "load_atari",
    "load_lunarlander",
    "load_stl10",
    "load_svhn",
    "make_atari",
    "make_lunarlander",
]
