"""Layer study on LunarLander: which AlexNet layer, feature prediction, multi-layer loss.

Runs the evaluation protocol (``skperceptual.protocol``) with the real
ImageNet AlexNet weights for six settings, each a P. AE or F. AE at one
embedding size (``layer_study.toml``: z = 64, the cpu profile's data):

* the P. AE with AlexNet cut at each of the four layers the follow-up study
  used: ``relu1`` (cut 2), ``relu2`` (cut 5, the 2020 paper's), ``relu3``
  (cut 8) and ``relu5`` (cut 12);
* feature prediction (F. AE) at ``relu2``;
* the P. AE with a multi-layer loss over ``relu1`` and ``relu2`` (2 + 5),
  equally weighted.

Every setting is its own protocol run directory under ``--out``, so the
study resumes where it stopped. It then writes, under
``experiments/results/layer-study/``, ``layer_study.csv`` (one row per
setting and head), ``layer_study.md`` (test errors in pixels with 95%
confidence intervals, AE training time, and a note reading them against the
follow-ups' claims) and ``layer_study.png``.

Command (needs the ImageNet AlexNet weights, see ``skperceptual weights``;
about 3 minutes per setting and seed on an idle 2-core machine with
``--n-jobs 2`` (16 min 43 s for the six settings of one seed), so under an
hour for the default three seeds; much less on a GPU with ``--set ae.device=cuda``)::

    python experiments/layer_study.py --out runs/layer-study --n-jobs 2
    python experiments/layer_study.py --out runs/layer-study --summarise-only

Any profile value can be overridden as for ``skperceptual experiment``,
e.g. ``--set ae.max_epochs=2`` (a quick check of the pipeline). With
several seeds, the 95% confidence intervals are t-intervals of the per-seed
test errors (the seed also draws the data subsets, so they include that
variation); with a single seed they are the protocol's bootstrap intervals
over test rollouts, which leave out the AE seed's own variation (in the
cpu profile's A/Bs, three AE seeds of the P. AE spread 1.57-1.93 px).
"""

import argparse
import math
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Run from a checkout, use its skperceptual rather than an installed copy.
sys.path.insert(0, str(HERE.parent))
PROFILE = HERE / "layer_study.toml"
RESULTS = HERE / "results" / "layer-study"

#: (label, protocol variant, estimator parameters).
SETTINGS = [
    ("relu1 (cut 2)", "P. AE", {"perceptual_layer": "relu1"}),
    ("relu2 (cut 5, paper)", "P. AE", {"perceptual_layer": "relu2"}),
    ("relu3 (cut 8)", "P. AE", {"perceptual_layer": "relu3"}),
    ("relu5 (cut 12)", "P. AE", {"perceptual_layer": "relu5"}),
    ("feature prediction, relu2", "F. AE", {"perceptual_layer": "relu2"}),
    ("relu1 + relu2 (cuts 2+5)", "P. AE", {"perceptual_layer": ["relu1", "relu2"]}),
]
PAPER_LABEL, FP_LABEL = SETTINGS[1][0], SETTINGS[4][0]
HEADS = ("mlp", "linear")


def slug(label):
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-").replace("--", "-")


def run(out, seeds, overrides, n_jobs=None):
    """Run (or resume) every setting's protocol for every seed."""
    from skperceptual.protocol import load_profile, run_protocol

    for label, variant, params in SETTINGS:
        for seed in seeds:
            extra = {f"ae__{k}": v for k, v in params.items()}
            config = load_profile(PROFILE, **{"random_state": seed, "ae__variants": [variant], **extra, **overrides})
            run_protocol(config=config, out_dir=Path(out) / f"{slug(label)}-seed{seed}", n_jobs=n_jobs,
                         report=False)


def _interval(values):
    """Mean and 95% t-interval of a few values (the half-width is NaN for one)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    from scipy import stats

    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def collect(out, seeds):
    """One row per (setting, head): test error with its 95% CI and the AE's training time.

    Returns
    -------
    table : pandas.DataFrame
    """
    import pandas as pd

    rows, baselines = [], []
    nan = math.nan
    for label, variant, _ in SETTINGS:
        runs = [Path(out) / f"{slug(label)}-seed{seed}" / "results.csv" for seed in seeds]
        frames = [pd.read_csv(path) for path in runs if path.is_file()]
        if not frames:
            continue
        results = pd.concat(frames, ignore_index=True)
        for head in HEADS:
            row = {"setting": label, "variant": variant, "head": head}
            # The trained AE, and its training-free twin: the frozen network at the same cut, then PCA.
            for prefix, name in (("", variant), ("twin_", "Frozen PCA")):
                sel = results[(results["variant"] == name) & (results["head"] == head)]
                if sel.empty:
                    row.update({f"{prefix}n_seeds": 0, f"{prefix}test_error_px": nan, f"{prefix}ci_low": nan,
                                f"{prefix}ci_high": nan})
                    continue
                error, low, high = _estimate(sel)
                row.update({f"{prefix}n_seeds": len(sel), f"{prefix}test_error_px": error, f"{prefix}ci_low": low,
                            f"{prefix}ci_high": high})
                if not prefix:
                    row.update({"ae_fit_time_s": sel["ae_fit_time"].mean(), "ae_epochs": sel["ae_n_epochs"].mean(),
                                "ae_time_per_epoch_s": sel["ae_time_per_epoch"].mean()})
            if variant == "F. AE":
                # Its layer's twin is relu2's, listed there.
                row.update(twin_n_seeds=0, twin_test_error_px=nan, twin_ci_low=nan, twin_ci_high=nan)
            rows.append(row)
        baselines.append(results[results["variant"].isin(["baseline", "PCA"])])
    baseline = pd.concat(baselines, ignore_index=True) if baselines else pd.DataFrame()
    if len(baseline):
        # Each setting's runs hold the same PCA of pixels and mean for the same seed.
        for head in HEADS:
            pca = baseline[(baseline["variant"] == "PCA") & (baseline["head"] == head)].drop_duplicates("unit_key")
            if len(pca):
                error, low, high = _estimate(pca)
                rows.append({"setting": "PCA of pixels (no training)", "variant": "PCA", "head": head,
                             "n_seeds": len(pca), "test_error_px": error, "ci_low": low, "ci_high": high})
        per_seed = baseline[baseline["variant"] == "baseline"].drop_duplicates("test_metric")["test_metric"]
        rows.append({"setting": "mean-position baseline", "variant": "baseline", "head": "mean-position",
                     "n_seeds": len(per_seed), "test_error_px": per_seed.mean()})
    return pd.DataFrame(rows)


def _estimate(sel):
    """Test error and 95% CI of one setting's rows: bootstrap for one seed, t-interval over seeds."""
    if len(sel) == 1 and "test_ci_low" in sel:
        # One seed: the protocol's bootstrap interval over test frames.
        return tuple(sel.iloc[0][["test_metric", "test_ci_low", "test_ci_high"]])
    return _interval(list(sel["test_metric"]))


def _compare(a, b):
    """How two settings' intervals relate, as words for the note."""
    if any(math.isnan(x) for x in (a["ci_low"], a["ci_high"], b["ci_low"], b["ci_high"])):
        return "no intervals"
    separate = a["ci_high"] < b["ci_low"] or b["ci_high"] < a["ci_low"]
    return "separate intervals" if separate else "overlapping intervals"


def verdict(table):
    """Sentences reading the table against the follow-ups' claims (data-driven)."""
    lines = []
    every = table[table["head"] == "mlp"].set_index("setting")
    # Settings whose AE ran (a run of the twins alone has none).
    mlp = every[every["test_error_px"].notna()] if "ae_time_per_epoch_s" in every else every.iloc[:0]
    layers = [s for s, _, p in SETTINGS[:4] if s in mlp.index]
    if layers:
        best = min(layers, key=lambda s: mlp.loc[s, "test_error_px"])
        spread = mlp.loc[layers, "test_error_px"]
        lines.append(f"- Layer choice: MLP test errors over the four AlexNet layers range from {spread.min():.2f} "
                     f"to {spread.max():.2f} px; the best layer is {best}. The follow-up study finds that the "
                     "layer matters at least as much as the architecture; compare this spread with the "
                     "paper's AE vs P. AE gap.")
        base = table.loc[table["head"] == "mean-position", "test_error_px"]
        at_mean = [s for s in layers if len(base) and mlp.loc[s, "ci_low"] <= base.iloc[0] <= mlp.loc[s, "ci_high"]]
        if at_mean:
            lines.append(f"- At the mean: {', '.join(at_mean)}: heads no better than predicting the mean "
                         f"position ({base.iloc[0]:.2f} px, inside their intervals), like the pixel-loss AE.")
    if FP_LABEL in mlp.index and PAPER_LABEL in mlp.index:
        fp, pae = mlp.loc[FP_LABEL], mlp.loc[PAPER_LABEL]
        faster = fp["ae_time_per_epoch_s"] / pae["ae_time_per_epoch_s"]
        relation = _compare(fp, pae)
        if fp["test_error_px"] <= pae["test_error_px"]:
            quality = f"as good or better: lower error, {relation}"
        elif relation == "overlapping intervals":
            quality = "as good within the uncertainty: higher error, overlapping intervals"
        else:
            quality = f"worse: higher error, {relation}"
        lines.append(f"- Feature prediction vs the P. AE at the same layer (relu2): {faster:.2f} times the training "
                     f"time per epoch ({'faster' if faster < 1 else 'not faster'}), MLP error "
                     f"{fp['test_error_px']:.2f} vs {pae['test_error_px']:.2f} px ({quality}). "
                     "The ICPR 2021 paper reports embeddings as good or better and significantly faster training.")
    twins = [s for s, v, _ in SETTINGS if v == "P. AE" and s in mlp.index
             and not math.isnan(mlp.loc[s, "twin_test_error_px"]) and not math.isnan(mlp.loc[s, "test_error_px"])]
    if twins:
        pairs = []
        for s in twins:
            r = mlp.loc[s]
            twin = {"test_error_px": r["twin_test_error_px"], "ci_low": r["twin_ci_low"], "ci_high": r["twin_ci_high"]}
            pairs.append(f"{s}: {r['test_error_px']:.2f} vs {r['twin_test_error_px']:.2f} px ({_compare(r, twin)})")
        lines.append("- Trained P. AE vs its training-free twin (the frozen network at the same cut, then PCA), "
                     "MLP heads: " + "; ".join(pairs) + ".")
    multi = SETTINGS[5][0]
    if multi in mlp.index and PAPER_LABEL in mlp.index:
        m, pae = mlp.loc[multi], mlp.loc[PAPER_LABEL]
        lines.append(f"- Multi-layer relu1 + relu2: MLP error {m['test_error_px']:.2f} vs {pae['test_error_px']:.2f} px "
                     f"for relu2 alone ({_compare(m, pae)}).")
    return lines


def write(table, results_dir):
    """Write the csv, the markdown table with its note, and the figure."""
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(results_dir / "layer_study.csv", index=False)
    lines = ["# Layer study: LunarLander, z = 64, AlexNet (ImageNet weights)", "",
             "Test error of the position heads in pixels [95% CI], the AE's training time, and the error of its "
             "training-free twin: the frozen network at the same cut, then PCA to the same z (Frozen PCA).", "",
             "| setting | head | test error (px) | frozen twin (px) | AE fit (s) | s / epoch |",
             "|---|---|---|---|---|---|"]

    def cell(r, prefix=""):
        value = r.get(f"{prefix}test_error_px", math.nan)
        if value is None or math.isnan(value):
            return "—"
        ci = "" if math.isnan(r.get(f"{prefix}ci_low", math.nan)) else \
            f" [{r[f'{prefix}ci_low']:.2f}, {r[f'{prefix}ci_high']:.2f}]"
        return f"{value:.2f}{ci}"

    for _, r in table.iterrows():
        fit = "" if math.isnan(r.get("ae_fit_time_s", math.nan)) else f"{r['ae_fit_time_s']:.0f}"
        per = "" if math.isnan(r.get("ae_time_per_epoch_s", math.nan)) else f"{r['ae_time_per_epoch_s']:.1f}"
        lines.append(f"| {r['setting']} | {r['head']} | {cell(r)} | {cell(r, 'twin_')} | {fit} | {per} |")
    lines += ["", "## Against the follow-ups' claims", ""] + verdict(table)
    (results_dir / "layer_study.md").write_text("\n".join(lines) + "\n")

    fig, (ax_err, ax_time) = plt.subplots(1, 2, figsize=(12, 4))
    settings = [s for s, _, _ in SETTINGS if s in set(table["setting"])]
    settings += [s for s in table["setting"].unique() if s not in settings and s != "mean-position baseline"]
    for offset, head in zip((-0.15, 0.15), HEADS):
        rows = table[table["head"] == head].set_index("setting").reindex(settings)
        err = [rows["test_error_px"] - rows["ci_low"], rows["ci_high"] - rows["test_error_px"]]
        ax_err.errorbar([i + offset for i in range(len(settings))], rows["test_error_px"], yerr=err, fmt="o",
                        capsize=3, label=f"{head} head")
    if "twin_test_error_px" in table:
        twins = table[table["head"] == "mlp"].set_index("setting").reindex(settings)
        ax_err.plot(range(len(settings)), twins["twin_test_error_px"], "x", color="tab:green", markersize=8,
                    label="frozen twin (same cut + PCA), mlp head")
    baseline = table.loc[table["head"] == "mean-position", "test_error_px"]
    if len(baseline):
        ax_err.axhline(baseline.iloc[0], color="grey", linestyle=":",
                       label=f"predict the mean ({baseline.iloc[0]:.2f})")
    ax_err.set_xticks(range(len(settings)), settings, rotation=30, ha="right")
    ax_err.set_ylabel("test error (px, lower is better)")
    ax_err.set_title("head error on each setting's embedding (95% CI)")
    ax_err.legend(loc="center")
    times = table[table["head"] == "mlp"].set_index("setting").reindex(settings).get("ae_time_per_epoch_s")
    if times is None:  # the twins alone: no AE was trained
        times = pd.Series(float("nan"), index=settings)
    ax_time.bar(range(len(settings)), times)
    ax_time.set_xticks(range(len(settings)), settings, rotation=30, ha="right")
    ax_time.set_ylabel("AE training time per epoch (s)")
    ax_time.set_title("AE training time per epoch")
    fig.tight_layout()
    fig.savefig(results_dir / "layer_study.png", dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/layer-study", help="folder of the protocol runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-jobs", type=int, default=None, help="units run at a time (as for the CLI)")
    parser.add_argument("--results", default=str(RESULTS), help="where the table and figure go")
    parser.add_argument("--summarise-only", action="store_true", help="only collect finished runs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="profile override, e.g. ae.device=cuda (as for 'skperceptual experiment')")
    args = parser.parse_args(argv)
    if not args.summarise_only:
        from skperceptual.protocol._config import parse_overrides

        run(args.out, args.seeds, parse_overrides(args.set), args.n_jobs)
    table = collect(args.out, args.seeds)
    if table.empty:
        raise SystemExit(f"No finished runs under {args.out}; run without --summarise-only first.")
    write(table, Path(args.results))
    print(f"wrote {args.results}/layer_study.md, .csv and .png")


if __name__ == "__main__":
    main()
