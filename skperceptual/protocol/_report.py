"""``tables.md``, ``figure6.png`` and ``embeddings.png`` from a run directory.

Everything is re-rendered from ``results.csv`` (and the small ``.npz``
files it points to), so ``skperceptual report DIR`` needs no refitting.
"""

import json
from pathlib import Path

import numpy as np

from .._atomic import atomic_path
from ._config import VARIANTS
from ._metrics import relative_to_best
from ._paper import PERCEPTUAL_OVERHEAD, TABLES, paper_value
from ._registry import HEADS

VARIANT_ORDER = list(VARIANTS)
_DASH = "—"


def _fmt(value, task):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return _DASH
    return f"{value:.2f}" if task == "positioning" else f"{100 * value:.1f}"


def _fmt_paper(value, task):
    if value is None:
        return _DASH
    return f"{value:.2f}" if task == "positioning" else f"{value:.1f}"


def _best(values, task):
    values = [v for v in values if v is not None and not np.isnan(v)]
    if not values:
        return None
    return min(values) if task == "positioning" else max(values)


def head_table(results, dataset, task, head):
    """Markdown of one of tables II-VII: rows z plus "Any", columns the variants.

    Each cell is ``ours / paper``; the paper's value is "—" where unknown.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows of ``results.csv``.
    dataset, task : str
    head : {"mlp", "linear", "logistic"}

    Returns
    -------
    markdown : str
    """
    rows = results[results["head"] == head]
    number, title = TABLES.get((dataset, HEADS[head].table), (None, f"{dataset} {task}, {head} heads"))
    if head == "logistic":
        title = f"{dataset} classification, LogisticRegression heads (extra row, not in the paper): accuracy (%)"
    variants = [v for v in VARIANT_ORDER if v in set(rows["variant"])]
    zs = sorted(int(z) for z in rows["z_dim"].dropna().unique())
    heading = f"## Table {number}: {title}" if number else f"## {title}"
    lines = [heading, "", "Each cell: ours / paper (— where the paper's value is not known).", "",
             "| z | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    table = {}
    for z in zs:
        cells = []
        for v in variants:
            match = rows[(rows["variant"] == v) & (rows["z_dim"] == z)]
            ours = float(match["test_metric"].iloc[0]) if len(match) else None
            table[(z, v)] = ours
            cells.append(f"{_fmt(ours, task)} / {_fmt_paper(paper_value(dataset, head, z, v), task)}")
        lines.append(f"| {z} | " + " | ".join(cells) + " |")
    cells = []
    for v in variants:
        ours = _best([table[(z, v)] for z in zs], task)
        cells.append(f"{_fmt(ours, task)} / {_fmt_paper(paper_value(dataset, head, 'Any', v), task)}")
    lines.append("| Any | " + " | ".join(cells) + " |")
    base = results[results["head"] == "mean-position"]
    if head != "logistic" and task == "positioning" and len(base):
        lines += ["", f"Predict-the-mean-position baseline: {float(base['test_metric'].iloc[0]):.2f} px."]
    return "\n".join(lines)


def decoder_table(results):
    """Markdown of Table VIII: L1 after pixel-loss decoder retraining, relative to the best."""
    rows = results[results["head"] == "decoder-retrain"]
    rows = rows.assign(_o=rows["variant"].map({v: i for i, v in enumerate(VARIANT_ORDER)})).sort_values("_o")
    lines = ["## Table VIII: test reconstruction error after retraining the decoder alone with pixel MSE "
             "(encoder frozen), each variant's best AE", "",
             "| Variant | z | L1 before | L1 after retraining | relative (ours) | relative (paper) |",
             "|---|---|---|---|---|---|"]
    if len(rows):
        rel = relative_to_best(rows["test_metric"].to_numpy())
        for (_, r), pct in zip(rows.iterrows(), rel):
            lines.append(f"| {r['variant']} | {int(r['z_dim'])} | {r['l1_before']:.4f} | {r['test_metric']:.4f} "
                         f"| {pct:.1f}% | {_DASH} |")
    lines += ["", "L1: mean absolute error per pixel value on the [0, 1] scale; 100% = the lowest L1. "
              "Best AE per variant: highest validation score of its MLP head."]
    return "\n".join(lines)


def perceptual_overhead(results):
    """Relative fit-time overhead of the perceptual over the pixel loss.

    Compares the time per epoch of each perceptual AE with the pixel AE of
    the same size and variational setting (epochs differ under early
    stopping, so whole fit times would not compare like with like).

    Returns
    -------
    mean, std : float
        Of the per-pair relative overheads (0.12 = +12%); NaN if no pairs.
    pairs : list of dict
    """
    aes = results.dropna(subset=["z_dim", "ae_time_per_epoch"]).drop_duplicates(["variant", "z_dim"])
    per = {(r["variant"], int(r["z_dim"])): r for _, r in aes.iterrows()}
    pairs = []
    for (variant, z), r in per.items():
        if variant.startswith("P. "):
            pixel = per.get((variant[3:], z))
            if pixel is not None:
                pairs.append({"variant": variant, "z_dim": z,
                              "pixel_s_per_epoch": float(pixel["ae_time_per_epoch"]),
                              "perceptual_s_per_epoch": float(r["ae_time_per_epoch"]),
                              "overhead": float(r["ae_time_per_epoch"] / pixel["ae_time_per_epoch"] - 1)})
    if not pairs:
        return float("nan"), float("nan"), pairs
    o = np.array([p["overhead"] for p in pairs])
    return float(o.mean()), float(o.std(ddof=1)) if len(o) > 1 else 0.0, pairs


def timing_table(results):
    """Markdown of the AE fit times and the perceptual loss's overhead."""
    aes = results.dropna(subset=["z_dim", "ae_fit_time"]).drop_duplicates(["variant", "z_dim"])
    aes = aes.assign(_o=aes["variant"].map({v: i for i, v in enumerate(VARIANT_ORDER)})).sort_values(["_o", "z_dim"])
    lines = ["## AE fit times", "", "| Variant | z | fit time (s) | epochs | s / epoch |", "|---|---|---|---|---|"]
    for _, r in aes.iterrows():
        lines.append(f"| {r['variant']} | {int(r['z_dim'])} | {r['ae_fit_time']:.1f} | {int(r['ae_n_epochs'])} "
                     f"| {r['ae_time_per_epoch']:.1f} |")
    mean, std, pairs = perceptual_overhead(results)
    paper = f"+{100 * PERCEPTUAL_OVERHEAD[0]:.0f} ± {100 * PERCEPTUAL_OVERHEAD[1]:.0f}%"
    ours = _DASH if np.isnan(mean) else f"{100 * mean:+.0f} ± {100 * std:.0f}%"
    lines += ["", f"Perceptual-loss overhead on the time per epoch (P. variant vs pixel variant, same z; "
              f"{len(pairs)} pairs): ours {ours} / paper {paper}."]
    return "\n".join(lines)


def selected_heads_table(results, task):
    """Markdown listing the chosen hyper-parameters of every head."""
    rows = results[results["head"].isin(list(HEADS))]
    lines = ["## Selected heads", "", "| Variant | z | head | best params | validation | test |",
             "|---|---|---|---|---|---|"]
    for _, r in rows.iterrows():
        lines.append(f"| {r['variant']} | {int(r['z_dim'])} | {r['head']} | `{r['best_params']}` "
                     f"| {_fmt(r['val_metric'], task)} | {_fmt(r['test_metric'], task)} |")
    return "\n".join(lines)


def render_tables(results, dataset, task, config=None):
    """Return the full ``tables.md`` text for a results DataFrame."""
    unit = "pixels of the 64x64 frame (lower is better)" if task == "positioning" else "accuracy in % (higher is better)"
    parts = [f"# {dataset}: results of the perceptual-loss protocol", "",
             f"Task: {task}; metric: {unit}. Profile: {(config or {}).get('profile', '?')}, "
             f"run key {(config or {}).get('run_key', '?')}.", ""]
    for head in HEADS:
        if (results["head"] == head).any():
            parts += [head_table(results, dataset, task, head), ""]
    if (results["head"] == "decoder-retrain").any():
        parts += [decoder_table(results), ""]
    parts += [timing_table(results), "", selected_heads_table(results, task), ""]
    return "\n".join(parts)


def _npz(out, rel):
    return np.load(Path(out) / Path(rel).with_suffix(".npz"))


def _as_image(a):
    a = np.asarray(a, dtype=np.float32)
    if a.max() > 1.0:
        a = a / 255.0
    return np.clip(a.transpose(1, 2, 0), 0, 1)


def figure6(results, out_dir, path):
    """Test frames: originals, then each variant's reconstructions before and after decoder retraining."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dec = results[results["head"] == "decoder-retrain"]
    if not len(dec):
        dec = results[results["head"] == "mlp"].drop_duplicates("variant")
    strips, labels, frames = [], [], None
    for _, r in dec.iterrows():
        with _npz(out_dir, r["ae_file"]) as f:
            frames = f["frames"]
            strips.append(f["recon"])
            labels.append(f"{r['variant']} z={int(r['z_dim'])}")
        if isinstance(r.get("retrained_file"), str):
            with _npz(out_dir, r["retrained_file"]) as f:
                strips.append(f["recon_after"])
                labels.append(f"{r['variant']} retrained")
    n = len(frames) if frames is not None else 0
    fig, axes = plt.subplots(1 + len(strips), max(n, 1), figsize=(1.2 * max(n, 1) + 1.5, 1.2 * (1 + len(strips))),
                             squeeze=False)
    for row, (label, images) in enumerate([("original", frames)] + list(zip(labels, strips))):
        for col in range(axes.shape[1]):
            ax = axes[row, col]
            ax.set_xticks([]), ax.set_yticks([])
            if images is not None and col < len(images):
                ax.imshow(_as_image(images[col]))
            if col == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle("Figure 6: test frames and reconstructions (before / after decoder retraining)", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def embeddings_figure(results, out_dir, path, task):
    """2-D PCA of each variant's best test embeddings, coloured by the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    dec = results[results["head"] == "decoder-retrain"]
    if not len(dec):
        dec = results[results["head"] == "mlp"].drop_duplicates("variant")
    fig, axes = plt.subplots(1, max(len(dec), 1), figsize=(3.2 * max(len(dec), 1), 3), squeeze=False)
    for ax, (_, r) in zip(axes[0], dec.iterrows()):
        with _npz(out_dir, r["ae_file"]) as f:
            Z, y = f["Z_test"], f["y_test"]
        P = PCA(n_components=2, random_state=0).fit_transform(Z) if Z.shape[1] >= 2 else np.c_[Z, np.zeros(len(Z))]
        colour = y[:, 0] if y.ndim == 2 else y
        sc = ax.scatter(P[:, 0], P[:, 1], c=colour, s=4, cmap="viridis" if task == "positioning" else "tab10")
        ax.set_title(f"{r['variant']} z={int(r['z_dim'])}", fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(sc, ax=axes[0].tolist(), label="x position (px)" if task == "positioning" else "class")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def render_report(out_dir):
    """Re-render ``tables.md``, ``figure6.png`` and ``embeddings.png`` of a run directory.

    Parameters
    ----------
    out_dir : str or path-like
        A run directory holding ``results.csv`` (and ``config.json``).

    Returns
    -------
    paths : list of pathlib.Path
        The files written.
    """
    import pandas as pd

    out = Path(out_dir)
    results = pd.read_csv(out / "results.csv")
    config = json.loads((out / "config.json").read_text()) if (out / "config.json").is_file() else {}
    dataset = str(results["dataset"].iloc[0])
    task = str(results["task"].iloc[0])
    with atomic_path(out / "tables.md") as tmp:
        tmp.write_text(render_tables(results, dataset, task, config))
    figure6(results, out, out / "figure6.png")
    embeddings_figure(results, out, out / "embeddings.png", task)
    return [out / "tables.md", out / "figure6.png", out / "embeddings.png"]
