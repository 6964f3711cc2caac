"""The paper's own numbers, for side-by-side cells in ``tables.md``.

Source: G. G. Pihlgren, F. Sandin and M. Liwicki, "Improving Image
Autoencoder Embeddings with Perceptual Loss", IJCNN 2020, Tables II-VIII and
Section VII (training-time overhead). Every value below is transcribed from
the paper; the library never reads the paper at run time. Rows of Tables
II-VII are the paper's embedding sizes plus "Any", the best test value over
sizes.
"""

#: The variants in the order of the paper's columns.
PAPER_VARIANTS = ("AE", "VAE", "P. AE", "P. VAE")

#: Table number and title of each (dataset, head) table. "linear" is the
#: paper's linear regressor (Ridge; RidgeClassifier on one-hot targets).
TABLES = {
    ("lunarlander", "mlp"): ("II", "LunarLander positioning, MLP heads: mean test distance error "
                                   "(pixels, lower is better)"),
    ("stl10", "mlp"): ("III", "STL-10 classification, MLP heads: test accuracy (%, higher is better)"),
    ("svhn", "mlp"): ("IV", "SVHN classification, MLP heads: test accuracy (%, higher is better)"),
    ("lunarlander", "linear"): ("V", "LunarLander positioning, linear regressors (Ridge): mean test distance "
                                     "error (pixels, lower is better)"),
    ("stl10", "linear"): ("VI", "STL-10 classification, linear regressors (RidgeClassifier on one-hot "
                                "targets): test accuracy (%)"),
    ("svhn", "linear"): ("VII", "SVHN classification, linear regressors (RidgeClassifier on one-hot "
                                "targets): test accuracy (%)"),
}

#: The paper's embedding sizes per dataset.
Z_SIZES = {"lunarlander": (32, 64, 128, 256), "stl10": (64, 128, 256, 512), "svhn": (32, 64, 128)}

#: Tables II-VII: (dataset, head) -> {row: (AE, VAE, P. AE, P. VAE)}. Rows
#: are embedding sizes or "Any"; units are pixels for LunarLander and percent
#: for STL-10 and SVHN.
VALUES = {
    ("lunarlander", "mlp"): {  # Table II
        32: (13.44, 12.70, 2.11, 1.28),
        64: (13.28, 13.22, 1.60, 1.15),
        128: (13.31, 13.31, 1.44, 1.15),
        256: (13.22, 13.28, 1.44, 1.28),
        "Any": (13.22, 12.70, 1.44, 1.15),
    },
    ("stl10", "mlp"): {  # Table III
        64: (38.5, 41.9, 61.4, 63.4),
        128: (39.0, 42.4, 62.6, 62.3),
        256: (41.5, 38.9, 63.4, 64.8),
        512: (45.0, 39.2, 63.3, 64.4),
        "Any": (45.0, 42.4, 63.4, 64.8),
    },
    ("svhn", "mlp"): {  # Table IV
        32: (76.5, 76.8, 77.0, 69.6),
        64: (81.5, 81.8, 82.2, 76.8),
        128: (81.9, 82.7, 84.0, 81.2),
        "Any": (81.9, 82.7, 84.0, 81.2),
    },
    ("lunarlander", "linear"): {  # Table V
        32: (13.73, 12.67, 7.23, 7.46),
        64: (13.60, 12.99, 6.85, 5.50),
        128: (14.18, 12.96, 6.72, 5.54),
        256: (15.17, 13.38, 6.40, 5.18),
        "Any": (13.60, 12.67, 6.40, 5.18),
    },
    ("stl10", "linear"): {  # Table VI
        64: (34.6, 36.8, 56.3, 58.1),
        128: (35.4, 39.7, 59.7, 57.4),
        256: (40.2, 43.6, 59.5, 63.7),
        512: (44.4, 45.9, 60.1, 64.9),
        "Any": (44.4, 45.9, 60.1, 64.9),
    },
    ("svhn", "linear"): {  # Table VII
        32: (25.5, 32.0, 61.6, 58.9),
        64: (24.8, 41.2, 67.2, 66.3),
        128: (29.3, 47.5, 70.6, 71.2),
        "Any": (29.3, 47.5, 70.6, 71.2),
    },
}

#: Table VIII: reconstruction of each variant's best autoencoder after its
#: decoder is retrained with pixel loss, as performance relative to the best
#: (100% = the lowest L1 error): dataset -> (AE, VAE, P. AE, P. VAE), in %.
RELATIVE_RECONSTRUCTION = {
    "lunarlander": (93, 77, 100, 73),
    "stl10": (100, 92, 60, 44),
    "svhn": (100, 97, 75, 57),
}

#: Relative overhead of the perceptual loss on the training time (all tests,
#: GPU): mean, std.
PERCEPTUAL_OVERHEAD = (0.12, 0.03)


def paper_value(dataset, head, row, variant):
    """Return the paper's value for a cell of Tables II-VII, or None.

    Parameters
    ----------
    dataset : str
        ``"lunarlander"``, ``"stl10"`` or ``"svhn"``.
    head : str
        ``"mlp"`` or ``"linear"``.
    row : int or "Any"
        Embedding size, or "Any" for the best over sizes.
    variant : str
        ``"AE"``, ``"VAE"``, ``"P. AE"`` or ``"P. VAE"``.

    Returns
    -------
    value : float or None
        Pixels for LunarLander, percent for STL-10 and SVHN; None where the
        paper has no such cell.

    Examples
    --------
    >>> paper_value("lunarlander", "mlp", 64, "P. AE")
    1.6
    >>> paper_value("svhn", "linear", "Any", "P. VAE")
    71.2
    """
    cells = VALUES.get((dataset, head), {}).get(row if row == "Any" else int(row))
    if cells is None or variant not in PAPER_VARIANTS:
        return None
    return cells[PAPER_VARIANTS.index(variant)]


def paper_relative_reconstruction(dataset, variant):
    """Return the paper's Table VIII cell (in %, 100 = lowest L1), or None.

    Examples
    --------
    >>> paper_relative_reconstruction("lunarlander", "P. AE")
    100
    """
    cells = RELATIVE_RECONSTRUCTION.get(dataset)
    if cells is None or variant not in PAPER_VARIANTS:
        return None
    return cells[PAPER_VARIANTS.index(variant)]
