"""``tables.md``, ``figure6.png`` and ``embeddings.png`` from a run directory.

Everything is re-rendered from ``results.csv`` (and the small ``.npz``
files it points to), so ``skperceptual report DIR`` needs no refitting.
"""

import csv
import json
from pathlib import Path

import numpy as np

from .._atomic import atomic_path
from ._config import BASELINES, VARIANTS
from ._metrics import relative_to_best
from ._paper import (
    PAPER_VARIANTS,
    PERCEPTUAL_OVERHEAD,
    TABLES,
    Z_SIZES,
    paper_relative_reconstruction,
    paper_value,
)
from ._registry import HEADS

VARIANT_ORDER = list(VARIANTS)
_DASH = "—"


def _missing(value):
    return value is None or (isinstance(value, (float, np.floating)) and np.isnan(value))


def _fmt(value, task):
    """Our metric as the paper prints it: pixels, or accuracy in %."""
    if _missing(value):
        return _DASH
    return f"{value:.2f}" if task == "positioning" else f"{100 * value:.1f}"


def _fmt_ci(row, task):
    """``2.67 [2.41, 2.93]``: a results row's test metric and its 95% CI."""
    if row is None:
        return _DASH
    value = _fmt(row.get("test_metric"), task)
    low, high = row.get("test_ci_low"), row.get("test_ci_high")
    if value == _DASH or _missing(low) or _missing(high):
        return value
    return f"{value} [{_fmt(low, task)}, {_fmt(high, task)}]"


def _fmt_paper(value, task):
    if value is None:
        return _DASH
    return f"{value:.2f}" if task == "positioning" else f"{value:.1f}"


def _variants(rows):
    """The paper's four variants (so every paper cell is shown), then any others run."""
    ran = set(rows["variant"])
    return list(PAPER_VARIANTS) + [v for v in VARIANT_ORDER if v in ran and v not in PAPER_VARIANTS]


def _baselines(rows):
    """The reference embeddings that ran, in :data:`BASELINES` order."""
    ran = set(rows["variant"])
    return [v for v in BASELINES if v in ran]


#: Marks this project's baselines in the tables' headers.
_MARK = "†"
_BASELINE_NOTE = (f"{_MARK} This project's training-free baselines, not in the paper: PCA of the pixels, and PCA of "
                  "the frozen loss network's activations at the perceptual loss's layer (Frozen PCA), fitted on the "
                  "autoencoders' images and scored with the same heads.")


def _cell_rows(rows):
    """{(z, variant): results row as a dict} of one head's rows."""
    return {(int(r["z_dim"]), r["variant"]): r.to_dict() for _, r in rows.dropna(subset=["z_dim"]).iterrows()}


def _best_row(cells, variant, task):
    """The row of ``variant`` with the best test metric over embedding sizes (the "Any" row)."""
    rows = [r for (_, v), r in cells.items() if v == variant and not _missing(r.get("test_metric"))]
    if not rows:
        return None
    pick = min if task == "positioning" else max
    return pick(rows, key=lambda r: r["test_metric"])


def _baseline_line(results, task):
    base = results[results["head"] == "mean-position"]
    if task != "positioning" or not len(base):
        return []
    return ["", f"Predict-the-mean-position baseline (test): {_fmt_ci(base.iloc[0].to_dict(), task)} px."]


def head_table(results, dataset, task, head):
    """Markdown of one of Tables II-VII: rows z plus "Any", ours next to the paper.

    Rows are the paper's embedding sizes and ours; a size only one side has
    shows "—" on the other. Each variant has two columns: ours, as
    ``value [95% CI low, high]``, and the paper's value for the same
    (z, variant). "Any" is the best test value over sizes, on both sides.

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
    variants, baselines = _variants(rows), _baselines(rows)
    cells = _cell_rows(rows)
    zs = sorted({z for z, _ in cells} | (set(Z_SIZES.get(dataset, ())) if number else set()))
    heading = f"## Table {number}: {title}" if number else f"## {title}"
    lines = [heading, "",
             "Ours: test value [95% bootstrap CI]; paper: the paper's value for the same z and variant "
             "(— where one side has no such cell). Any: the best test value over z (ours: its z in brackets).",
             "", "| z | " + " | ".join([f"{v} | {v} (paper)" for v in variants] + [f"{v}{_MARK}" for v in baselines])
             + " |", "|---|" + "---|---|" * len(variants) + "---|" * len(baselines)]
    for z in zs + ["Any"]:
        parts = []
        for v in variants + baselines:
            if z == "Any":
                best = _best_row(cells, v, task)
                ours = _fmt_ci(best, task) + ("" if best is None else f" (z {int(best['z_dim'])})")
            else:
                ours = _fmt_ci(cells.get((z, v)), task)
            parts.append(ours if v in baselines else f"{ours} | {_fmt_paper(paper_value(dataset, head, z, v), task)}")
        lines.append(f"| {z} | " + " | ".join(parts) + " |")
    if head != "logistic":
        lines += _baseline_line(results, task)
    if baselines:
        lines += ["", _BASELINE_NOTE]
    return "\n".join(lines)


def summary_table(results, dataset, task):
    """Markdown of the headline cells: each variant's best over z, MLP and linear head, with CIs."""
    heads = [h for h in ("mlp", "linear") if (results["head"] == h).any()]
    numbers = " and ".join(TABLES[(dataset, h)][0] for h in heads if (dataset, h) in TABLES)
    unit = "px" if task == "positioning" else "%"
    names = {"mlp": "MLP", "linear": "linear"}
    lines = [f"## Summary{f' of Tables {numbers}' if numbers else ''}: best over z, ours [95% CI] vs the paper "
             f"({unit})", "",
             "| Variant | " + " | ".join(f"{names[h]} (ours) | {names[h]} (paper)" for h in heads) + " |",
             "|---|" + "---|---|" * len(heads)]
    scored = results[results["head"].isin(heads)]
    baselines = _baselines(scored)
    for v in _variants(scored) + baselines:
        parts = []
        for h in heads:
            best = _best_row(_cell_rows(results[results["head"] == h]), v, task)
            ours = _fmt_ci(best, task) + ("" if best is None else f" (z {int(best['z_dim'])})")
            parts.append(f"{ours} | {_fmt_paper(paper_value(dataset, h, 'Any', v), task)}")
        lines.append(f"| {v}{_MARK if v in baselines else ''} | " + " | ".join(parts) + " |")
    return "\n".join(lines + _baseline_line(results, task) + (["", _BASELINE_NOTE] if baselines else []))


def decoder_table(results, dataset=None):
    """Markdown of Table VIII: reconstruction after pixel-loss decoder retraining, relative to the best.

    As in the paper, 100% is the variant with the lowest L1 error and the
    others are ``lowest L1 / L1``, below 100%.
    """
    rows = results[results["head"] == "decoder-retrain"]
    ours = {r["variant"]: r for _, r in rows.iterrows()}
    rel = dict(zip(rows["variant"], relative_to_best(rows["test_metric"].to_numpy()))) if len(rows) else {}
    lines = ["## Table VIII: reconstruction of each variant's best autoencoder after retraining its decoder "
             "alone with pixel loss (encoder frozen), relative to the best (100% = lowest L1 error)", "",
             "| Variant | z | L1 before | L1 after retraining | relative (ours) | relative (paper) |",
             "|---|---|---|---|---|---|"]
    for v in _variants(rows):
        paper = paper_relative_reconstruction(dataset, v)
        paper = _DASH if paper is None else f"{paper:.0f}%"
        r = ours.get(v)
        if r is None:
            lines.append(f"| {v} | {_DASH} | {_DASH} | {_DASH} | {_DASH} | {paper} |")
        else:
            lines.append(f"| {v} | {int(r['z_dim'])} | {r['l1_before']:.4f} | {r['test_metric']:.4f} "
                         f"| {rel[v]:.0f}% | {paper} |")
    lines += ["", "L1: mean absolute error per pixel value on the [0, 1] scale. Relative: lowest L1 / L1, in %. "
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
    fitted = results.dropna(subset=["z_dim", "ae_fit_time"]).drop_duplicates(["variant", "z_dim"])
    aes = fitted[fitted["variant"].isin(VARIANT_ORDER)]
    aes = aes.assign(_o=aes["variant"].map({v: i for i, v in enumerate(VARIANT_ORDER)})).sort_values(["_o", "z_dim"])
    lines = ["## AE fit times", "", "| Variant | z | fit time (s) | epochs | s / epoch |", "|---|---|---|---|---|"]
    for _, r in aes.iterrows():
        lines.append(f"| {r['variant']} | {int(r['z_dim'])} | {r['ae_fit_time']:.1f} | {int(r['ae_n_epochs'])} "
                     f"| {r['ae_time_per_epoch']:.1f} |")
    for v in _baselines(fitted):
        times = fitted.loc[fitted["variant"] == v, "ae_fit_time"]
        span = f"{times.min():.1f}" if f"{times.min():.1f}" == f"{times.max():.1f}" else \
            f"{times.min():.1f}–{times.max():.1f}"
        lines.append(f"| {v}{_MARK} (no training: features and PCA fit) | all | {span} | — | — |")
    mean, std, pairs = perceptual_overhead(results)
    paper = f"+{100 * PERCEPTUAL_OVERHEAD[0]:.0f} ± {100 * PERCEPTUAL_OVERHEAD[1]:.0f}%"
    ours = _DASH if np.isnan(mean) else f"{100 * mean:+.0f} ± {100 * std:.0f}%"
    lines += ["", f"Perceptual-loss overhead on the time per epoch (P. variant vs pixel variant, same z; "
              f"{len(pairs)} pairs): ours {ours} / paper {paper}."]
    return "\n".join(lines)


def selected_heads_table(results, task):
    """Markdown listing the chosen hyper-parameters of every head."""
    rows = results[results["head"].isin(list(HEADS))]
    lines = ["## Selected heads", "", "| Variant | z | head | best params | validation | test [95% CI] |",
             "|---|---|---|---|---|---|"]
    for _, r in rows.iterrows():
        lines.append(f"| {r['variant']} | {int(r['z_dim'])} | {r['head']} | `{r['best_params']}` "
                     f"| {_fmt(r['val_metric'], task)} | {_fmt_ci(r.to_dict(), task)} |")
    return "\n".join(lines)


def render_tables(results, dataset, task, config=None):
    """Return the full ``tables.md`` text for a results DataFrame."""
    unit = "pixels of the 64x64 frame (lower is better)" if task == "positioning" else "accuracy in % (higher is better)"
    parts = [f"# {dataset}: results of the perceptual-loss protocol", "",
             f"Task: {task}; metric: {unit}. Profile: {(config or {}).get('profile', '?')}, "
             f"run key {(config or {}).get('run_key', '?')}.", ""]
    if results["head"].isin(["mlp", "linear"]).any():
        parts += [summary_table(results, dataset, task), ""]
    for head in HEADS:
        if (results["head"] == head).any():
            parts += [head_table(results, dataset, task, head), ""]
    if (results["head"] == "decoder-retrain").any():
        parts += [decoder_table(results, dataset), ""]
    if {"ae_fit_time", "ae_n_epochs", "ae_time_per_epoch"} <= set(results.columns):
        parts += [timing_table(results), ""]
    parts += [selected_heads_table(results, task), ""]
    return "\n".join(parts)


def _npz(out, rel):
    return np.load(Path(out) / Path(rel).with_suffix(".npz"))


def _as_image(a):
    a = np.asarray(a, dtype=np.float32)
    if a.max() > 1.0:
        a = a / 255.0
    return np.clip(a.transpose(1, 2, 0), 0, 1)


def select_figure_frames(y_test, n_frames, image_size=64, margin=5, random_state=0):
    """Indices of test frames for Figure 6: the target fully on screen, spread over positions.

    Positions are clustered into ``n_frames`` groups with k-means, and the
    on-screen frame nearest each cluster centre is taken, so the frames
    follow where the target actually is rather than one rollout's first
    steps. For classification labels (1-D ``y_test``), the first image of
    each class is taken in class order, then the second of each, and so on.

    Parameters
    ----------
    y_test : array-like of shape (n, 2) or (n,)
        Target centres (the lander, an Atari game's object) in pixel coordinates of the ``image_size`` frame
        (x = column, y = row, (0, 0) = centre of the top-left pixel), or
        class labels.
    n_frames : int
        How many frames to pick.
    image_size : int, default=64
        Side of the frame in pixels.
    margin : float, default=5
        Minimal distance in pixels between the target's centre and the frame
        edges. At 64x64 LunarLander's lander with its legs, the largest
        target, spans about +-3 px across and 3 px up / 4 px down from its
        centre.
    random_state : int, default=0
        Seed of the k-means; the choice is deterministic for a given seed.

    Returns
    -------
    indices : ndarray of int, shape (min(n_frames, n_eligible),)
        Sorted by x, then y, for positioning; fewer than ``n_frames`` only
        when fewer frames have the target fully on screen.

    Examples
    --------
    Frame 0 has the target at the corner; frames 1 and 2 show the same place:

    >>> select_figure_frames([[0, 0], [30, 30], [31, 30], [10, 50]], 2).tolist()
    [3, 1]
    """
    from sklearn.cluster import KMeans

    if int(n_frames) < 1:
        raise ValueError(f"`n_frames` must be a positive integer; got {n_frames!r}.")
    y = np.asarray(y_test)
    if y.ndim == 1:
        # Occurrence number of each image within its class, then class order.
        _, inverse = np.unique(y, return_inverse=True)
        rank = np.empty(len(y), dtype=np.int64)
        for label in np.unique(inverse):
            members = np.flatnonzero(inverse == label)
            rank[members] = np.arange(len(members))
        return np.lexsort((inverse, rank))[: int(n_frames)]
    y = y.astype(np.float64)
    lo, hi = margin - 0.5, image_size - 0.5 - margin
    candidates = np.flatnonzero(np.all((y >= lo) & (y <= hi), axis=1))
    if len(candidates) <= n_frames:
        chosen = candidates
    else:
        points = y[candidates]
        centres = KMeans(n_clusters=int(n_frames), n_init=4, random_state=random_state).fit(points).cluster_centers_
        taken = np.zeros(len(candidates), dtype=bool)
        chosen = []
        for centre in centres:
            distance = np.linalg.norm(points - centre, axis=1)
            distance[taken] = np.inf
            best = int(np.argmin(distance))
            taken[best] = True
            chosen.append(candidates[best])
        chosen = np.asarray(chosen)
    return chosen[np.lexsort((y[chosen, 1], y[chosen, 0]))]


def _crop(image, centre, size):
    """``size`` x ``size`` pixels of an (H, W, C) image around ``centre`` (x, y), zero-padded at the edges."""
    half = size // 2
    padded = np.pad(image, ((half, half), (half, half), (0, 0)))
    col, row = int(round(float(centre[0]))), int(round(float(centre[1])))
    return padded[row: row + size, col: col + size]


def _figure_rows(results, out_dir):
    """[(label, images)] of Figure 6 and the frames' npz contents: originals first."""
    dec = results[results["head"] == "decoder-retrain"]
    if not len(dec):
        dec = results[(results["head"] == "mlp") & results["variant"].isin(VARIANT_ORDER)].drop_duplicates("variant")
    dec = dec.assign(_o=dec["variant"].map({v: i for i, v in enumerate(VARIANT_ORDER)})).sort_values("_o")
    # All variants' own reconstructions first, so AE and P. AE sit close; retrained decoders after.
    rows, retrained, frames, y_test, index = [], [], None, None, None
    for _, r in dec.iterrows():
        with _npz(out_dir, r["ae_file"]) as f:
            frames = f["frames"]
            y_test = f["y_test"] if "y_test" in f.files else None
            # Runs before frame selection saved the first frames of the test set.
            index = f["frame_index"] if "frame_index" in f.files else np.arange(len(frames))
            rows.append((f"{r['variant']} z={int(r['z_dim'])}", f["recon"]))
        if isinstance(r.get("retrained_file"), str):
            with _npz(out_dir, r["retrained_file"]) as f:
                retrained.append((f"{r['variant']} z={int(r['z_dim'])}\nretrained decoder", f["recon_after"]))
    rows += retrained
    targets = None if y_test is None else y_test[index]
    return [("original", frames)] + rows, targets


def figure6(results, out_dir, path, crop_size=16):
    """Figure 6: test frames, each variant's reconstructions, magnified crops around the target.

    Rows: the original frames, then each variant's reconstructions before
    (and, where the run has them, after) decoder retraining. For positioning
    runs each full frame has, beneath it, a ``crop_size`` x ``crop_size``
    pixel crop around the target's true position, magnified with
    nearest-neighbour upscaling; a red box on the full frame and red ticks on
    the crop mark the true position. Each reconstruction is labelled with its
    pixel L1 (mean absolute error per value on [0, 1]) over the whole frame
    and over the crop: the pixel AE can have the lower frame L1 and still
    drop the target.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    blocks, targets = _figure_rows(results, out_dir)
    positions = targets if targets is not None and targets.ndim == 2 and targets.shape[1] == 2 else None
    originals = blocks[0][1]
    n = len(originals) if originals is not None else 0
    per_block = 2 if positions is not None else 1
    n_rows = per_block * len(blocks)
    fig, axes = plt.subplots(n_rows, max(n, 1), figsize=(1.0 * max(n, 1) + 1.3, 1.05 * n_rows + 0.8),
                             squeeze=False, gridspec_kw=dict(hspace=0.35 if positions is not None else 0.1,
                                                             wspace=0.06))
    half = crop_size // 2
    for b, (label, images) in enumerate(blocks):
        for col in range(axes.shape[1]):
            ax_full = axes[per_block * b, col]
            axs = [ax_full] + ([axes[per_block * b + 1, col]] if positions is not None else [])
            for ax in axs:
                ax.set_xticks([]), ax.set_yticks([])
            if images is None or col >= len(images):
                continue
            image, original = _as_image(images[col]), _as_image(originals[col])
            ax_full.imshow(image, interpolation="nearest")
            if positions is None:
                if b:
                    ax_full.set_xlabel(f"L1 {np.abs(image - original).mean():.4f}", fontsize=6, labelpad=1)
                elif targets is not None:
                    ax_full.set_xlabel(f"class {targets[col]}", fontsize=6, labelpad=1)
                continue
            x, y = positions[col]
            col0, row0 = int(round(float(x))) - half, int(round(float(y))) - half
            ax_full.add_patch(Rectangle((col0 - 0.5, row0 - 0.5), crop_size, crop_size, fill=False,
                                        edgecolor="red", linewidth=0.6))
            crop = _crop(image, (x, y), crop_size)
            ax_crop = axs[1]
            ax_crop.imshow(crop, interpolation="nearest")
            # Ticks on the crop's border point at the true centre without covering the lander.
            cx, cy = float(x) - col0, float(y) - row0
            tick = crop_size / 8
            for xs, ys in (([cx, cx], [-0.5, -0.5 + tick]), ([cx, cx], [crop_size - 0.5 - tick, crop_size - 0.5]),
                           ([-0.5, -0.5 + tick], [cy, cy]), ([crop_size - 0.5 - tick, crop_size - 0.5], [cy, cy])):
                ax_crop.plot(xs, ys, color="red", linewidth=1.2)
            ax_crop.set_xlim(-0.5, crop_size - 0.5), ax_crop.set_ylim(crop_size - 0.5, -0.5)
            if b:
                crop_l1 = np.abs(crop - _crop(original, (x, y), crop_size)).mean()
                ax_crop.set_xlabel(f"L1 {np.abs(image - original).mean():.4f}\ncrop {crop_l1:.3f}", fontsize=6,
                                   labelpad=1)
            else:
                ax_crop.set_xlabel(f"({float(x):.0f}, {float(y):.0f})", fontsize=6, labelpad=1)
        axes[per_block * b, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
        if positions is not None:
            axes[per_block * b + 1, 0].set_ylabel(f"{crop_size}x{crop_size} crop", rotation=0, ha="right",
                                                  va="center", fontsize=6, color="0.4")
    what = ("test frames, reconstructions and\nmagnified crops around the target's true\nposition (red); "
            "L1 per frame / crop" if positions is not None else "test images and\nreconstructions; L1 per image")
    height = fig.get_figheight()
    # Wrapped: the figure is only as wide as its few frame columns.
    fig.suptitle(f"Figure 6: {what}", fontsize=8, y=1 - 0.05 / height, va="top")
    fig.subplots_adjust(left=1.3 / fig.get_figwidth(), right=0.99, top=1 - 0.6 / height, bottom=0.35 / height)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


#: Colours of the variants in the learning curve: pixel loss blue, perceptual red,
#: feature prediction green.
_COLOURS = {"AE": "tab:blue", "VAE": "tab:cyan", "P. AE": "tab:red", "P. VAE": "tab:orange",
            "F. AE": "tab:green", "F. VAE": "tab:olive", "PCA": "tab:gray", "Frozen PCA": "tab:purple"}
_LINESTYLES = {"mlp": "-", "linear": "--"}
_LEARNING_CURVE_COLUMNS = ("variant", "z_dim", "head", "n_images", "test_metric")


def learning_curve_figure(csv_path, results, path):
    """Head test error against the number of images the autoencoder has seen.

    Reads ``learning_curve.csv`` (columns ``variant, z_dim, head, n_images,
    test_metric`` and optionally ``test_ci_low, test_ci_high,
    val_metric``): one panel per embedding size, one colour per variant
    (pixel loss blue, perceptual red), solid lines for MLP heads and dashed
    for linear ones, the 95% CI as a shaded band, the predict-the-mean
    baseline of ``results``, the training-free baselines at the same z and
    the paper's best AE and P. AE MLP errors as horizontal reference lines.

    Parameters
    ----------
    csv_path : path-like
        ``learning_curve.csv``; nothing is drawn when it does not exist.
    results : pandas.DataFrame
        Rows of ``results.csv`` (for the dataset, task and baseline).
    path : path-like
        The PNG to write.

    Returns
    -------
    written : bool
        False when ``csv_path`` does not exist.
    """
    if not Path(csv_path).is_file():
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    curve = _read_csv(csv_path, _LEARNING_CURVE_COLUMNS)
    dataset, task = str(results["dataset"].iloc[0]), str(results["task"].iloc[0])
    scale = 1.0 if task == "positioning" else 100.0
    zs = sorted(int(z) for z in curve["z_dim"].dropna().unique())
    fig, axes = plt.subplots(1, max(len(zs), 1), figsize=(5 * max(len(zs), 1) + 2.2, 4.2), squeeze=False, sharey=True)
    base = results[results["head"] == "mean-position"]
    for ax, z in zip(axes[0], zs):
        part = curve[curve["z_dim"] == z]
        for (variant, head), g in sorted(part.groupby(["variant", "head"]),
                                         key=lambda kv: (VARIANT_ORDER.index(kv[0][0]) if kv[0][0] in VARIANT_ORDER
                                                         else 99, kv[0][1])):
            g = g.sort_values("n_images")
            colour = _COLOURS.get(variant, "0.3")
            name = "MLP" if head == "mlp" else ("Ridge" if head == "linear" else head)
            ax.plot(g["n_images"], scale * g["test_metric"], _LINESTYLES.get(head, ":"), color=colour, marker="o",
                    markersize=3, label=f"{variant}, {name}")
            if {"test_ci_low", "test_ci_high"} <= set(g.columns) and g["test_ci_low"].notna().any():
                ax.fill_between(g["n_images"], scale * g["test_ci_low"], scale * g["test_ci_high"], color=colour,
                                alpha=0.15, linewidth=0)
        if len(base):
            ax.axhline(float(base["test_metric"].iloc[0]), color="0.4", linestyle=":", linewidth=1,
                       label=f"predict the mean ({float(base['test_metric'].iloc[0]):.2f})")
        # The training-free baselines at this z: what the curves must beat.
        for variant in BASELINES:
            for head in ("mlp", "linear"):
                ref = results[(results["variant"] == variant) & (results["z_dim"] == z) & (results["head"] == head)]
                if len(ref):
                    value = scale * float(ref["test_metric"].iloc[0])
                    ax.axhline(value, color=_COLOURS[variant], linestyle=_LINESTYLES[head], linewidth=0.9, alpha=0.8,
                               label=f"{variant}{_MARK}, {'MLP' if head == 'mlp' else 'Ridge'}, no training "
                                     f"({value:.2f})")
        for variant in ("AE", "P. AE"):
            paper = paper_value(dataset, "mlp", "Any", variant)
            if paper is not None:
                ax.axhline(paper, color=_COLOURS[variant], linestyle=(0, (1, 3)), linewidth=1.2,
                           label=f"paper's best {variant} MLP ({paper:g})")
        ax.set_xscale("log")
        if task == "positioning":
            ax.set_yscale("log")
            # Plain numbers (2, 5, 10 px), not powers of ten, on the log axis.
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_minor_formatter(ScalarFormatter())
            ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_xlabel("images the autoencoder has seen")
        ax.set_title(f"z = {z}", fontsize=9)
        ax.grid(True, which="both", alpha=0.2)
    axes[0, 0].set_ylabel("test error (px, log scale)" if task == "positioning" else "test accuracy (%)")
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.suptitle(f"{dataset}: head test metric vs autoencoder training (95% bootstrap CI shaded)", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return True


def embeddings_figure(results, out_dir, path, task):
    """2-D PCA of each variant's best test embeddings, coloured by the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from sklearn.decomposition import PCA

    # Each variant at the size whose head (the MLP where there is one) validated best.
    heads = results[results["head"].isin(list(HEADS))]
    kind = "mlp" if (heads["head"] == "mlp").any() else (heads["head"].iloc[0] if len(heads) else None)
    dec = results[results["head"] == "decoder-retrain"]
    if not len(dec):
        dec = results[(results["head"] == kind) & results["variant"].isin(VARIANT_ORDER)].drop_duplicates("variant")
    refs = results[(results["head"] == kind) & results["variant"].isin(BASELINES)]
    if len(refs) and "val_score" in refs:
        best = refs.sort_values("val_score", ascending=False).drop_duplicates("variant")
        dec = pd.concat([dec, best.sort_values("variant", key=lambda v: v.map(BASELINES.index))])
    fig, axes = plt.subplots(1, max(len(dec), 1), figsize=(2.6 * max(len(dec), 1) + 1, 2.8), squeeze=False,
                             layout="constrained")
    sc = None
    for ax, (_, r) in zip(axes[0], dec.iterrows()):
        with _npz(out_dir, r["ae_file"]) as f:
            Z, y = f["Z_test"], f["y_test"]
        P = PCA(n_components=2, random_state=0).fit_transform(Z) if Z.shape[1] >= 2 else np.c_[Z, np.zeros(len(Z))]
        colour = y[:, 0] if y.ndim == 2 else y
        sc = ax.scatter(P[:, 0], P[:, 1], c=colour, s=4, cmap="viridis" if task == "positioning" else "tab10")
        ax.set_title(f"{r['variant']} z={int(r['z_dim'])}", fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    if sc is not None:
        fig.colorbar(sc, ax=axes[0].tolist(), pad=0.01, label="x position (px)" if task == "positioning" else "class")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


#: How a run directory with a damaged or missing file is mended.
_RERUN = ("Rebuild it by re-running the `skperceptual experiment` command that made this run directory (with the "
          "same --out): finished units are reused, so only the CSV files and the report are rewritten.")

#: Columns every results.csv has; a file without them is not one the runner wrote whole.
_REQUIRED_COLUMNS = ("dataset", "task", "variant", "z_dim", "head", "test_metric")


def _read_csv(path, required):
    """Read one of a run's CSV files; clear errors, naming the file and the fix, instead of pandas'."""
    import pandas as pd

    path = Path(path)
    fix = _RERUN
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: this is not a finished run directory. {fix}")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is truncated or corrupt ({type(exc).__name__}: {str(exc).strip()}). {fix}") from exc
    # pandas fills a row cut short (a file truncated mid-line) with empty cells.
    with open(path, newline="") as f:
        for number, row in enumerate(csv.reader(f), 1):
            if number == 1:
                width = len(row)
            elif len(row) != width:
                raise ValueError(f"{path} is truncated or corrupt: its row {number} has {len(row)} of the "
                                 f"{width} fields of its header. {fix}")
    missing = [c for c in required if c not in table.columns]
    if missing or not len(table):
        what = f"lacks the columns {missing}" if missing else "has no rows"
        raise ValueError(f"{path} is truncated or corrupt: it {what}. {fix}")
    return table


def read_results(path):
    """Read a run's ``results.csv``, with a clear error when it is missing, truncated or corrupt.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    results : pandas.DataFrame

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file cannot be parsed, has no rows or lacks the runner's columns.
    """
    return _read_csv(path, _REQUIRED_COLUMNS)


def render_report(out_dir):
    """Re-render ``tables.md`` and the figures of a run directory.

    Writes ``tables.md``, ``figure6.png`` (when the run has autoencoders),
    ``embeddings.png`` and, when the run has a ``learning_curve.csv``,
    ``learning_curve.png``.

    Parameters
    ----------
    out_dir : str or path-like
        A run directory holding ``results.csv`` (and ``config.json``).

    Returns
    -------
    paths : list of pathlib.Path
        The files written.

    Raises
    ------
    FileNotFoundError, ValueError
        ``results.csv`` or ``config.json`` is missing, truncated or corrupt,
        or a unit that ``results.csv`` names is missing; nothing is written.
    """
    out = Path(out_dir)
    results = read_results(out / "results.csv")
    # Everything the tables and figures read is checked before anything is written.
    fix = _RERUN
    if not (out / "config.json").is_file():
        raise FileNotFoundError(f"{out / 'config.json'} does not exist: {out} is not a whole run directory. {fix}")
    try:
        config = json.loads((out / "config.json").read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{out / 'config.json'} is corrupt ({exc}). {fix}") from None
    for column in ("ae_file", "retrained_file"):
        for rel in results[column].dropna().unique() if column in results else ():
            npz = out / Path(rel).with_suffix(".npz")
            if not npz.is_file():
                raise FileNotFoundError(f"{npz} does not exist: the run directory lacks a unit that "
                                        f"results.csv names. {fix}")
    dataset = str(results["dataset"].iloc[0])
    task = str(results["task"].iloc[0])
    with atomic_path(out / "tables.md") as tmp:
        tmp.write_text(render_tables(results, dataset, task, config))
    paths = [out / "tables.md"]
    if results["variant"].isin(VARIANT_ORDER).any():  # Figure 6 shows autoencoders' reconstructions
        figure6(results, out, out / "figure6.png")
        paths.append(out / "figure6.png")
    embeddings_figure(results, out, out / "embeddings.png", task)
    paths.append(out / "embeddings.png")
    if learning_curve_figure(out / "learning_curve.csv", results, out / "learning_curve.png"):
        paths.append(out / "learning_curve.png")
    return paths
