"""Where training pays: trained AEs against the training-free baselines, by embedding size.

Runs the protocol with ``experiments/zsweep.toml`` once per seed: the pixel
AE and the P. AE at z in {4, 8, 16, 32, 64}, with the cpu profile's data and
AE budget, next to PCA of the pixels and Frozen PCA (the frozen loss network
at the perceptual layer, then PCA) at the same sizes, all scored with the
protocol's full head grid. Every seed's run directory under ``--out`` is
resumable.

Writes, into ``--results``: ``z_sweep.csv`` (one row per seed, embedding,
z and head, with the 95% CI over test rollouts), ``z_sweep.md`` (per z and
embedding: the mean over seeds, the range over seeds, and one seed's CI)
and ``z_sweep.png`` (error against z, one panel per head)::

    python experiments/z_sweep.py --seeds 0 1 2 --n-jobs 2 --out runs/z-sweep \\
        --results experiments/results/z-sweep

``--set KEY=VALUE`` overrides the profile as for ``skperceptual experiment``.
"""

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _study import overrides, study_parser  # noqa: E402

from skperceptual._atomic import atomic_path  # noqa: E402
from skperceptual.protocol import load_profile, run_protocol  # noqa: E402

PROFILE = Path(__file__).with_name("zsweep.toml")
EMBEDDINGS = ("AE", "P. AE", "PCA", "Frozen PCA")
COLOURS = {"AE": "tab:blue", "P. AE": "tab:red", "PCA": "tab:gray", "Frozen PCA": "tab:green"}
HEAD_NAMES = {"mlp": "MLP", "linear": "Ridge"}
COLUMNS = ["seed", "variant", "z_dim", "head", "test_metric", "test_ci_low", "test_ci_high", "val_metric",
           "best_params"]


def collect(out, seeds):
    """The head rows of every finished seed, and the mean-position baseline of each."""
    frames = []
    for seed in seeds:
        path = Path(out) / f"seed{seed}" / "results.csv"
        if path.is_file():
            frames.append(pd.read_csv(path).assign(seed=seed))
    if not frames:
        return pd.DataFrame(columns=COLUMNS), pd.DataFrame()
    results = pd.concat(frames, ignore_index=True)
    rows = results[results["variant"].isin(EMBEDDINGS) & results["head"].isin(list(HEAD_NAMES))]
    return rows[COLUMNS].reset_index(drop=True), results[results["head"] == "mean-position"]


def table(rows, mean):
    """Markdown: per z, head and embedding, the mean over seeds {min-max} and the first seed's CI."""
    seeds = sorted(rows["seed"].unique())
    lines = [f"Test error (px): mean over seeds {', '.join(map(str, seeds))} {{min–max}}; "
             f"seed {seeds[0]}'s 95% CI over test rollouts in brackets.", ""]
    for head in HEAD_NAMES:
        lines += [f"### {HEAD_NAMES[head]} heads", "", "| z | " + " | ".join(EMBEDDINGS) + " |",
                  "|---" * (len(EMBEDDINGS) + 1) + "|"]
        for z in sorted(rows["z_dim"].unique()):
            cells = []
            for v in EMBEDDINGS:
                part = rows[(rows["z_dim"] == z) & (rows["variant"] == v) & (rows["head"] == head)]
                if part.empty:
                    cells.append("—")
                    continue
                first = part.sort_values("seed").iloc[0]
                spread = f" {{{part['test_metric'].min():.2f}–{part['test_metric'].max():.2f}}}" if len(part) > 1 else ""
                cells.append(f"{part['test_metric'].mean():.2f}{spread} [{first['test_ci_low']:.2f}, "
                             f"{first['test_ci_high']:.2f}]")
            lines.append(f"| {int(z)} | " + " | ".join(cells) + " |")
        lines.append("")
    if len(mean):
        lines.append(f"Predict the mean: {mean['test_metric'].mean():.2f} px.")
    return "\n".join(lines) + "\n"


def figure(rows, mean, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
    for ax, head in zip(axes, HEAD_NAMES):
        for v in EMBEDDINGS:
            part = rows[(rows["variant"] == v) & (rows["head"] == head)]
            if part.empty:
                continue
            stats = part.groupby("z_dim")["test_metric"].agg(["mean", "min", "max"]).sort_index()
            ax.plot(stats.index, stats["mean"], "-o", color=COLOURS[v], markersize=4,
                    label=f"{v} (mean over {part['seed'].nunique()} seed{'s' if part['seed'].nunique() > 1 else ''})")
            ax.fill_between(stats.index, stats["min"], stats["max"], color=COLOURS[v], alpha=0.15, linewidth=0)
        if len(mean):
            value = float(mean["test_metric"].mean())
            ax.axhline(value, color="black", linestyle=":", linewidth=1, label=f"predict the mean ({value:.2f})")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(ScalarFormatter())
        ax.set_xlabel("embedding size z")
        ax.set_title(f"{HEAD_NAMES[head]} heads (band: min–max over seeds)", fontsize=9)
        ax.grid(True, which="both", alpha=0.2)
    axes[0].set_ylabel("lander position, test error (px, log scale)")
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.suptitle("LunarLander: trained AEs against training-free baselines, by embedding size", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write(rows, mean, results_dir):
    results_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(results_dir / "z_sweep.csv") as tmp:
        rows.sort_values(["seed", "head", "variant", "z_dim"]).to_csv(tmp, index=False)
    with atomic_path(results_dir / "z_sweep.md") as tmp:
        tmp.write_text("# Where training pays: error by embedding size\n\n" + table(rows, mean))
    figure(rows, mean, results_dir / "z_sweep.png")


def main(argv=None):
    p = study_parser(__doc__, PROFILE, "runs/z-sweep", "experiments/results/z-sweep")
    args = p.parse_args(argv)
    extra = overrides(args)
    for seed in args.seeds:
        if not args.summarise_only:
            config = load_profile(args.profile, **{**extra, "random_state": seed})
            run_protocol(None, config, args.out / f"seed{seed}", n_jobs=args.n_jobs)
        rows, mean = collect(args.out, args.seeds)
        if len(rows):
            # Written after every seed, so that a stopped sweep keeps what it measured.
            write(rows, mean, args.results)
    if not len(rows):
        raise SystemExit(f"No finished runs under {args.out}.")
    print((args.results / "z_sweep.md").read_text())


if __name__ == "__main__":
    main()
