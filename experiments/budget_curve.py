"""Budget curve: what the perceptual loss buys against the pixel loss, by images seen.

Runs the protocol with ``experiments/budget.toml`` once per seed: the
pixel AE and the P. AE at z = 64, each embedded at checkpoints from about
4e3 to 1e6 images seen and scored with Ridge and the MLP chosen on its final
embeddings, next to the training-free baselines (PCA, Frozen PCA) and the
mean. The first seed trains to the profile's whole budget (1e6 images); the
others to ``--short-epochs`` epochs, whose checkpoints fall on the same
numbers of images, so that the seed spread is measured where the curves
separate without paying for 1e6 images three times.

Writes, into ``--results``: ``budget_curve.csv`` (one row per seed,
variant, head and checkpoint, with the 95% CI over test rollouts),
``baselines.csv`` (the reference rows of each seed), ``budget_curve.png``
and ``summary.md`` (the table the README quotes). Each seed's run directory
under ``--out`` is resumable, like any protocol run.

    python experiments/budget_curve.py --seeds 0 1 2 --n-jobs 2 --out runs/budget \\
        --results experiments/results/budget-curve

``--set KEY=VALUE`` overrides the profile as for ``skperceptual
experiment``, e.g. ``--set ae.device=cuda --set ae.batch_size=512``.
"""

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _study import overrides, study_parser  # noqa: E402

from skperceptual._atomic import atomic_path  # noqa: E402
from skperceptual.protocol import load_profile, run_protocol  # noqa: E402

PROFILE = Path(__file__).with_name("budget.toml")
COLOURS = {"AE": "tab:blue", "P. AE": "tab:red", "PCA": "tab:gray", "Frozen PCA": "tab:green"}
HEAD_NAMES = {"mlp": "MLP", "linear": "Ridge"}
STYLES = {"mlp": "-", "linear": "--"}
#: The paper's best LunarLander MLP errors (Table II, "Any").
PAPER = {"AE": 13.22, "P. AE": 1.44}


def short_overrides(profile, short_epochs, extra=None):
    """Overrides that train ``short_epochs`` epochs with checkpoints on the full run's grid."""
    full = load_profile(profile, **(extra or {}))
    epochs = full["ae"]["max_epochs"]
    shrink = epochs // short_epochs if 0 < short_epochs <= epochs else 0
    if not shrink or shrink * short_epochs != epochs or shrink & (shrink - 1):
        raise SystemExit(f"--short-epochs {short_epochs} must divide the profile's ae.max_epochs = {epochs} by a "
                         f"power of two (e.g. {epochs // 8 or 1}), so that its checkpoints fall on the full run's.")
    points = full["learning_curve"]["n_points"] - (shrink.bit_length() - 1)
    if points < 1:
        raise SystemExit(f"--short-epochs {short_epochs} leaves none of the profile's "
                         f"{full['learning_curve']['n_points']} checkpoints; use more epochs.")
    return {"ae__max_epochs": short_epochs, "learning_curve__n_points": points}


def run_seed(profile, seed, short_epochs, out, n_jobs, first, extra=None):
    """Run (or resume) one seed's protocol; the first seed at the profile's budget, the others short."""
    overrides = {**(extra or {}), "random_state": seed}
    if seed != first:
        overrides.update(short_overrides(profile, short_epochs, extra))
    config = load_profile(profile, **overrides)
    run_protocol(None, config, out / f"seed{seed}", n_jobs=n_jobs)
    return _read_seed(out, seed)


def _read_seed(out, seed):
    curve = pd.read_csv(out / f"seed{seed}" / "learning_curve.csv").assign(seed=seed)
    results = pd.read_csv(out / f"seed{seed}" / "results.csv").assign(seed=seed)
    return curve, results


def first_below(rows, threshold):
    """Images seen at the first checkpoint whose test error is below ``threshold`` (None if never)."""
    hit = rows[rows["test_metric"] < threshold].sort_values("n_images")
    return None if hit.empty else int(hit["n_images"].iloc[0])


def summary(curve, references, first):
    """Markdown: per checkpoint, the full-budget seed's error [CI] and the range over seeds, per variant and head."""
    seeds = [first] + sorted(set(curve["seed"].unique()) - {first})
    lines = [f"Test error (px) by images seen; seed {seeds[0]} [95% CI over test rollouts]; "
             f"in braces the min-max over seeds {', '.join(map(str, seeds))} where more than one reached it.", "",
             "| images seen | " + " | ".join(f"{v} {HEAD_NAMES[h]}" for v in ("AE", "P. AE") for h in ("mlp", "linear"))
             + " |", "|---" * 5 + "|"]
    for n in sorted(curve["n_images"].unique()):
        cells = []
        for v in ("AE", "P. AE"):
            for h in ("mlp", "linear"):
                rows = curve[(curve["n_images"] == n) & (curve["variant"] == v) & (curve["head"] == h)]
                top = rows[rows["seed"] == seeds[0]]
                cell = "—" if top.empty else (f"{top['test_metric'].iloc[0]:.2f} "
                                              f"[{top['test_ci_low'].iloc[0]:.2f}, {top['test_ci_high'].iloc[0]:.2f}]")
                if len(rows) > 1:
                    cell += f" {{{rows['test_metric'].min():.2f}–{rows['test_metric'].max():.2f}}}"
                cells.append(cell)
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    lines += ["", "Images seen at the first checkpoint where the MLP error falls below 10 px and 3 px, per seed:", ""]
    for v in ("AE", "P. AE"):
        for seed in seeds:
            rows = curve[(curve["variant"] == v) & (curve["head"] == "mlp") & (curve["seed"] == seed)]
            if rows.empty:
                continue
            top = int(rows["n_images"].max())
            marks = [first_below(rows, t) for t in (10, 3)]
            text = ", ".join(f"< {t} px: " + (f"{m:,}" if m else f"not within {top:,}") for t, m in zip((10, 3), marks))
            lines.append(f"- {v}, seed {seed}: {text}")
    lines += ["", "Training-free references at z = 64 (no images seen by any AE), per seed:", "",
              "| seed | " + " | ".join(f"{v} {HEAD_NAMES[h]}" for v in ("PCA", "Frozen PCA") for h in ("mlp", "linear"))
              + " | predict the mean |", "|---" * 6 + "|"]
    for seed, part in references.groupby("seed"):
        cells = []
        for v in ("PCA", "Frozen PCA"):
            for h in ("mlp", "linear"):
                r = part[(part["variant"] == v) & (part["head"] == h)]
                cells.append("—" if r.empty else f"{r['test_metric'].iloc[0]:.2f} "
                             f"[{r['test_ci_low'].iloc[0]:.2f}, {r['test_ci_high'].iloc[0]:.2f}]")
        mean = part[part["head"] == "mean-position"]["test_metric"]
        lines.append(f"| {seed} | " + " | ".join(cells) + f" | {'—' if mean.empty else f'{mean.iloc[0]:.2f}'} |")
    return "\n".join(lines) + "\n"


def figure(curve, references, path, first):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    fig, ax = plt.subplots(figsize=(9.5, 5.2))
    for (variant, head), g in curve.groupby(["variant", "head"]):
        others = sorted(set(g["seed"]) - {first})
        for seed, s in g.groupby("seed"):
            s = s.sort_values("n_images")
            main = seed == first
            if main:
                label = f"{variant}, {HEAD_NAMES[head]} (seed {seed}, 95% CI)"
            else:
                label = f"{variant}, {HEAD_NAMES[head]}, seeds {', '.join(map(str, others))}" if seed == others[0] else None
            ax.plot(s["n_images"], s["test_metric"], STYLES[head], color=COLOURS[variant],
                    marker="o" if main else None, markersize=3, linewidth=1.6 if main else 0.8,
                    alpha=1.0 if main else 0.6, label=label)
            if main:
                ax.fill_between(s["n_images"], s["test_ci_low"], s["test_ci_high"], color=COLOURS[variant],
                                alpha=0.12, linewidth=0)
    ref = references[references["seed"] == first]
    for variant in ("PCA", "Frozen PCA"):
        for head in ("mlp", "linear"):
            r = ref[(ref["variant"] == variant) & (ref["head"] == head)]
            if len(r):
                value = float(r["test_metric"].iloc[0])
                ax.axhline(value, color=COLOURS[variant], linestyle=STYLES[head], linewidth=1, alpha=0.8,
                           label=f"{variant} z = 64, {HEAD_NAMES[head]}, no training ({value:.2f})")
    mean = ref[ref["head"] == "mean-position"]
    if len(mean):
        value = float(mean["test_metric"].iloc[0])
        ax.axhline(value, color="black", linestyle=":", linewidth=1, label=f"predict the mean ({value:.2f})")
    for variant, value in PAPER.items():
        ax.axhline(value, color=COLOURS[variant], linestyle=(0, (1, 3)), linewidth=1.4,
                   label=f"paper's best {variant} MLP ({value:g})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_xlabel("images the autoencoder has seen (log scale)")
    ax.set_ylabel("lander position, test error (px, log scale)")
    ax.set_title("LunarLander, z = 64: pixel vs perceptual AE by training budget, against training-free baselines",
                 fontsize=9)
    ax.grid(True, which="both", alpha=0.2)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main(argv=None):
    p = study_parser(__doc__, PROFILE, "runs/budget", "experiments/results/budget-curve")
    p.add_argument("--full-seed", type=int, default=None,
                   help="the seed trained to the whole budget (default: the first of --seeds); the others run short, "
                        "so seeds can run in separate processes: --seeds 1 --full-seed 0")
    p.add_argument("--short-epochs", type=int, default=4,
                   help="epochs of every seed but the first (a power-of-two fraction of the profile's)")
    args = p.parse_args(argv)
    extra = overrides(args)
    first = args.seeds[0] if args.full_seed is None else args.full_seed
    curves, references = [], []
    for seed in args.seeds:
        if args.summarise_only:
            run = args.out / f"seed{seed}"
            if not (run / "learning_curve.csv").is_file():
                continue
            curve, results = _read_seed(args.out, seed)
        else:
            curve, results = run_seed(args.profile, seed, args.short_epochs, args.out, args.n_jobs, first, extra)
        curves.append(curve)
        references.append(results[results["variant"].isin(["PCA", "Frozen PCA", "baseline"])])
        # Written after every seed, so that a stopped study keeps what it measured.
        if args.full_seed is None or any(c["seed"].iloc[0] == first for c in curves):
            write(pd.concat(curves, ignore_index=True), pd.concat(references, ignore_index=True), args.results, first)
    if not curves:
        raise SystemExit(f"No finished runs under {args.out}.")
    if (args.results / "summary.md").is_file():
        print((args.results / "summary.md").read_text())


def write(curve, refs, results_dir, first):
    """Write the CSV files, the summary and the figure of the seeds done so far."""
    results_dir.mkdir(parents=True, exist_ok=True)
    columns = ["seed", "variant", "z_dim", "head", "n_images", "test_metric", "test_ci_low", "test_ci_high",
               "val_metric"]
    with atomic_path(results_dir / "budget_curve.csv") as tmp:
        curve[columns].sort_values(["seed", "variant", "head", "n_images"]).to_csv(tmp, index=False)
    with atomic_path(results_dir / "baselines.csv") as tmp:
        refs[["seed", "variant", "z_dim", "head", "test_metric", "test_ci_low", "test_ci_high", "val_metric",
              "best_params"]].to_csv(tmp, index=False)
    with atomic_path(results_dir / "summary.md") as tmp:
        tmp.write_text(summary(curve, refs, first))
    figure(curve, refs, results_dir / "budget_curve.png", first)


if __name__ == "__main__":
    main()
