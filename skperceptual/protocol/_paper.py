"""The paper's own numbers, for side-by-side cells in ``tables.md``.

Source: G. G. Pihlgren, F. Sandin and M. Liwicki, "Improving Image
Autoencoder Embeddings with Perceptual Loss", IJCNN 2020, as quoted in this
project's issue 5 (the reference repository guspih/Perceptual-Autoencoders
publishes no results in its README, and the paper's full tables were not
available offline while this module was written). Only the values below are
known; every other cell is rendered as "—". Never fill a cell with a value
that is not in the paper.

Each known value is the best over embedding sizes, so it sits in a table's
"Any" row. The issue also quotes "13.3 vs 1.6 px" for LunarLander without
saying which cells those are; they are deliberately left out.

Table numbering used by this project (the paper's layout as far as it is
known): II/III/IV are the MLP heads on LunarLander/STL-10/SVHN, V/VI/VII the
linear heads on the same datasets, VIII the reconstruction error after the
decoder is retrained with pixel loss.
"""

#: Table number and title of each (dataset, head) table.
TABLES = {
    ("lunarlander", "mlp"): ("II", "LunarLander positioning, MLP heads: mean error (pixels, lower is better)"),
    ("stl10", "mlp"): ("III", "STL-10 classification, MLP heads: accuracy (%, higher is better)"),
    ("svhn", "mlp"): ("IV", "SVHN classification, MLP heads: accuracy (%, higher is better)"),
    ("lunarlander", "linear"): ("V", "LunarLander positioning, linear heads (Ridge): mean error (pixels, lower is better)"),
    ("stl10", "linear"): ("VI", "STL-10 classification, linear heads (RidgeClassifier on one-hot targets): accuracy (%)"),
    ("svhn", "linear"): ("VII", "SVHN classification, linear heads (RidgeClassifier on one-hot targets): accuracy (%)"),
}

#: Known paper values: (dataset, head) -> {(row, variant): value}. Rows are
#: embedding sizes (int) or "Any" (best over sizes). Units are those of the
#: table: pixels for LunarLander, percent for STL-10 and SVHN.
VALUES = {
    ("lunarlander", "mlp"): {("Any", "AE"): 13.2, ("Any", "P. AE"): 1.44, ("Any", "P. VAE"): 1.15},
    ("stl10", "mlp"): {("Any", "AE"): 45.0, ("Any", "P. AE"): 63.4},
    ("svhn", "mlp"): {("Any", "AE"): 82.7, ("Any", "P. AE"): 84.0},
    ("svhn", "linear"): {("Any", "AE"): 47.5, ("Any", "P. AE"): 71.2},
}

#: Relative overhead of the perceptual loss on the fit wall time: mean, std.
PERCEPTUAL_OVERHEAD = (0.12, 0.03)


def paper_value(dataset, head, row, variant):
    """Return the paper's value for a cell, or None when it is not known.

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
    """
    return VALUES.get((dataset, head), {}).get((row, variant))
