"""Write the benchmarks page, docs/benchmarks.md, from benchmarks/run.py's JSON results.

Usage::

    python benchmarks/render_page.py                  # benchmarks/results/*.json -> docs/benchmarks.md
    python benchmarks/render_page.py A.json B.json --out /tmp/page.md
    python benchmarks/render_page.py --check          # exit 1 if docs/benchmarks.md is out of date

Each file is what ``python benchmarks/run.py ... --results FILE`` writes
(``merge_results``)::

    {"fit": {"kind|loss": [img/s of each repetition, ...], ...},
     "memory": {kind: {"base": GiB, "data": GiB, "with_data": GiB, "peak": GiB}, ...},
     "meta": {"machine": {"cpu", "cores", "gpu"}, "torch", "skorch", "date",
              "commands": [...], "fit": {"device", "n_fit", "batch", "reps"},
              "memory": {"n", "steps", "batch"}}}

A fit entry may instead be a recorded summary, ``{"median", "min", "max"}``
with an optional ``"ratio_to_reference"`` summary of the per-repetition
ratios, for results whose single repetitions were not kept; such a file says
so in ``meta["transcribed"]``, and ``meta["notes"]`` adds lines under its
table. Files measured on a CPU make the CPU table, the others a GPU table
each; files with memory measurements make the memory table. Without a CPU
file the page says that the CPU table is pending, with the command that
measures it, and shows no CPU numbers.

It imports neither torch nor the library: the tests render the page in
milliseconds and check that the committed page is this script's output.
"""

import argparse
import json
import statistics
import sys
from collections import namedtuple
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"

CPU_COMMAND = "python benchmarks/run.py --only-fit --reps 5 --results benchmarks/results/cpu.json"
GPU_COMMAND = ("python benchmarks/run.py --only-fit --skip-memory --device cuda --reps 5 --n-fit 40000 "
               "--results benchmarks/results/gpu.json")
RENDER_COMMAND = "python benchmarks/render_page.py"

#: Our contenders of the tables, as ``benchmarks/run.py`` names them.
BF16_LOSS = "fp32_bf16_loss"
MEMORY_ROWS = (("fp32", "fp32 (default)"), ("bf16", '`precision="bf16"`'),
               (BF16_LOSS, '`precision="fp32", loss_precision="bf16"`'))

Summary = namedtuple("Summary", "median lo hi")  # lo and hi are None for a ratio of medians
Result = namedtuple("Result", "path fit memory meta memmap")


def load(path):
    """One results file: ``fit`` keyed by ``(kind, loss)``, its latest paired repetitions."""
    path = Path(path)
    data = json.loads(path.read_text())
    if "meta" not in data:
        raise ValueError(f"{path} has no 'meta' block: write it with benchmarks/run.py --results")
    fit = {tuple(key.split("|")): entry for key, entry in data.get("fit", {}).items()}
    # A file filled by several commands may hold more repetitions of some
    # contenders: pair the latest ones, which ran together (as run.py does).
    lists = [len(v) for v in fit.values() if isinstance(v, list)]
    if lists:
        n = min(lists)
        fit = {key: v[-n:] if isinstance(v, list) else v for key, v in fit.items()}
    return Result(path, fit, data.get("memory", {}), data["meta"], data.get("memmap", []))


def summary(entry):
    """Median, min and max of repetitions, or a recorded summary as it is."""
    if isinstance(entry, dict):
        return Summary(entry["median"], entry["min"], entry["max"])
    return Summary(statistics.median(entry), min(entry), max(entry))


def ratio(fit, kind, loss):
    """``kind`` over the reference, the same loss: per repetition where they were kept."""
    ours, ref = fit.get((kind, loss)), fit.get(("ref", loss))
    if ours is None or ref is None:
        return None
    if isinstance(ours, list) and isinstance(ref, list):
        return summary([a / b for a, b in zip(ours, ref)])
    if isinstance(ours, dict) and "ratio_to_reference" in ours:
        return summary(ours["ratio_to_reference"])
    return Summary(summary(ours).median / summary(ref).median, None, None)


def overhead(fit, kind):
    """Extra time of ``kind``'s perceptual fit over our fp32 pixel fit (0.25 = +25%)."""
    pixel, perceptual = fit.get(("fp32", "pixel")), fit.get((kind, "perceptual"))
    if pixel is None or perceptual is None:
        return None
    if isinstance(pixel, list) and isinstance(perceptual, list):
        return summary([a / b - 1 for a, b in zip(pixel, perceptual)])
    return Summary(summary(pixel).median / summary(perceptual).median - 1, None, None)


def speed_vs_fp32(fit, loss):
    """Median bf16 throughput over the median fp32 throughput, or None."""
    if ("bf16", loss) not in fit or ("fp32", loss) not in fit:
        return None
    return summary(fit["bf16", loss]).median / summary(fit["fp32", loss]).median


def fmt(s, spec, suffix=""):
    if s is None:
        return ""
    text = f"{s.median:{spec}}{suffix}"
    if s.lo is not None:
        text += f" ({s.lo:{spec}}{suffix}–{s.hi:{spec}}{suffix})"
    return text


def rate(fit, kind, loss):
    return fmt(summary(fit[kind, loss]), ",.0f") if (kind, loss) in fit else "not measured"


def is_cpu(result):
    return result.meta.get("fit", {}).get("device", "cpu") == "cpu"


def repetitions(result):
    lists = [len(v) for v in result.fit.values() if isinstance(v, list)]
    return min(lists) if lists else result.meta.get("fit", {}).get("reps")


def machine(meta):
    """The hardware and versions, in words."""
    m = meta["machine"]
    cores = f"{m['cores']} CPU cores" if m.get("cores") else "CPU"
    if m.get("gpu"):
        hardware = f"{m['gpu']}, host with {cores}" + (f" ({m['cpu']})" if m.get("cpu") else "")
    else:
        hardware = f"{m.get('cpu') or 'CPU'}, {cores}"
    return f"{hardware}; torch {meta['torch']}, skorch {meta['skorch']}; measured {meta['date']}"


def fit_table(result):
    """The throughput table of one file, its one-line machine description and its notes."""
    fit, meta = result.fit, result.meta
    setup = meta.get("fit", {})
    lines = [f"**Machine:** {machine(meta)}; {setup.get('n_fit', 0):,} images, batch "
             f"{setup.get('batch', '?')}, median (min–max) of {repetitions(result)} repetitions.", "",
             "| loss | reference, img/s | skperceptual fp32, img/s | fp32 / reference "
             "| skperceptual bf16, img/s | bf16 / reference |",
             "|---|---|---|---|---|---|"]
    for loss in ("pixel", "perceptual"):
        cells = [rate(fit, "ref", loss)]
        for kind in ("fp32", "bf16"):
            cells += [rate(fit, kind, loss), fmt(ratio(fit, kind, loss), ".2f", "x")]
        lines.append(f"| {loss} | " + " | ".join(cells) + " |")
    if (BF16_LOSS, "perceptual") in fit:
        lines.append(f'| perceptual, fp32 with `loss_precision="bf16"` | {rate(fit, "ref", "perceptual")} | '
                     f'{rate(fit, BF16_LOSS, "perceptual")} | {fmt(ratio(fit, BF16_LOSS, "perceptual"), ".2f", "x")} '
                     "| | |")
    lines.append("")
    if meta.get("transcribed"):
        lines += [meta["transcribed"], ""]
    if meta.get("notes"):
        lines += [f"- {note}" for note in meta["notes"]] + [""]
    return lines


def memory_table(result):
    meta, memory = result.meta, result.memory
    setup = meta.get("memory", {})
    data = next(iter(memory.values()))["data"]
    steps = setup.get("steps", "?")
    steps = "training step" if steps == 1 else f"{steps} training steps"
    lines = [f"**Machine:** {machine(meta)}; a perceptual fit of {setup.get('n', 0):,} uint8 images of "
             f"64x64 ({data:.2f} GiB), batch {setup.get('batch', '?')}, its first {steps}, one run per row.", "",
             "| parameters | peak RSS − data | of which imports (RSS before the data) |",
             "|---|---|---|"]
    for kind, label in MEMORY_ROWS:
        if kind in memory:
            m = memory[kind]
            lines.append(f"| {label} | {m['peak'] - m['data']:.2f} GiB | {m['base']:.2f} GiB |")
    return lines + [""]


def parameters_text(cpus, gpus):
    """What ``precision``, ``loss_precision`` and ``channels_last`` buy."""
    fit = cpus[0].fit if cpus else {}
    h100 = next((r.fit for r in gpus if "H100" in (r.meta["machine"].get("gpu") or "")), {})
    h100 = [speed_vs_fp32(h100, loss) for loss in ("pixel", "perceptual")]
    h100 = ("" if None in h100 else f" (in its table, bf16 trained at {h100[0]:.2f}x fp32's speed for the "
            f"pixel loss and {h100[1]:.2f}x for the perceptual loss, medians)")
    bf16 = [speed_vs_fp32(fit, loss) for loss in ("pixel", "perceptual")]
    if None not in bf16:
        cpu_bf16 = (f"On the CPU measured above, bf16 trained at {bf16[0]:.2f}x fp32's speed for the pixel "
                    f"loss and {bf16[1]:.2f}x for the perceptual loss (medians).")
    else:
        cpu_bf16 = "The CPU table, once measured, will show the gain on the CPU measured."
    lines = [
        "## What the parameters buy", "",
        "### `precision`", "",
        '`precision="bf16"` trains the autoencoder and the loss network in mixed precision (autocast); '
        "`transform` still returns float32 embeddings.",
        "It pays on CPUs that compute bf16 natively (AVX512-BF16 or AMX) and lowers a fit's peak memory "
        "(memory table). " + cpu_bf16,
        "Other CPUs emulate bf16, which is slower than fp32.",
        "bf16 changes the results by more than float rounding (the LunarLander head errors stayed inside "
        'fp32\'s confidence intervals), so the default stays `"fp32"`; `"auto"` picks bf16 on CPUs with native '
        "bf16 only.", "",
        "On GPUs, `\"auto\"` means fp32: bf16 did not pay on the NVIDIA H100 measured above" + h100 + ".",
        "cuDNN already runs fp32 convolutions on the tensor cores (TF32), autocast adds a cast kernel per weight "
        "and activation, which a fit whose pace the host sets pays in full, and cuDNN's bf16 input gradient "
        "of AlexNet's first convolution is slower than its fp32 one (about 2.3 against 0.4 ms per batch of 512).",
        "At 96x96, where the GPU sets the pace, bf16 trained the perceptual autoencoder no faster than fp32; "
        "only the pixel loss gained (1.35x; `python benchmarks/cuda_profile.py --size 96 --n 10000 --reps 3`), "
        'and a user who trains that can ask for `precision="bf16"`.', "",
        "### `loss_precision`", "",
        "`loss_precision` sets the loss network's arithmetic alone; None, the default, follows `precision`.",
        'With `precision="fp32", loss_precision="bf16"` the autoencoder, its gradients, the optimiser state, '
        "the embeddings and the MSE stay float32, and only the frozen loss network computes in bf16.",
    ]
    extra = [overhead(fit, kind) for kind in ("fp32", BF16_LOSS)]
    if None not in extra:
        lines.append("It is for CPUs with native bf16, where it cuts the extra time a perceptual fit takes over "
                     f"a pixel fit: on the CPU measured above, {extra[0].median:+.0%} with the default and "
                     f'{extra[1].median:+.0%} with `loss_precision="bf16"` (medians).')
    else:
        lines.append("It is for CPUs with native bf16, where it cuts the extra time a perceptual fit takes over "
                     "a pixel fit (the CPU table, once measured, shows by how much).")
    lines += [
        "It moved the loss after one epoch by 0.15%, and the LunarLander head errors of the perceptual AE "
        "and VAE stayed inside fp32's 95% confidence intervals over five seeds "
        "(`python experiments/ab_lunarlander.py`).",
        "It does not lower the peak memory: the activations it halves are a small part of a step's, and it adds "
        "bf16 copies of the loss network's inputs.",
        "It was not measured on a GPU, where fp32 convolutions already run on the tensor cores.", "",
        "### `channels_last`", "",
        "`channels_last=True`, the default, keeps the autoencoder, the loss network and every batch in the "
        "channels-last (NHWC) memory format; the results equal NCHW's up to float rounding.",
        "oneDNN's CPU convolutions and transposed convolutions, and tensor-core GPUs, are faster on it, and "
        "every table on this page is measured with it (the reference runs NCHW).",
        "The default was chosen on 64x64 images: at another size, compare a short fit with "
        "`channels_last=False` if speed matters.", "",
        "### Custom CPU kernels (`SKPERCEPTUAL_CUSTOM_KERNELS`)", "",
        "On the CPU, the decoder's first transposed convolution runs as one matrix product and the loss "
        "network's convolutions keep no input copy, its strided first one taking its input gradient through "
        "space-to-depth (`skperceptual.kernels`). Against the stock PyTorch modules, whole fp32 fits ran 1.12x "
        "(1.11x–1.13x) as fast for the pixel loss and 1.18x (1.17x–1.19x) for the perceptual loss, bf16 fits "
        "1.17x and 1.19x (AMD EPYC, 2 cores, 2,048 images, batch 512, medians and ranges of 5 alternating "
        "repetitions: `python benchmarks/compare_commits.py 0e9552e 5 2048 [--precision bf16]`, 0e9552e being "
        "the code before them). `SKPERCEPTUAL_CUSTOM_KERNELS=0` runs the stock modules.", "",
    ]
    return lines


def render(results):
    """The page's Markdown, from loaded results files."""
    cpus = [r for r in results if r.fit and is_cpu(r)]
    gpus = [r for r in results if r.fit and not is_cpu(r)]
    memories = [r for r in results if r.memory]
    lines = [
        "# Benchmarks", "",
        "How fast `PerceptualAETransformer` trains, against a re-creation of the paper's reference training "
        "code, and how much memory a fit takes.",
        "The tables are generated by `benchmarks/render_page.py` from the JSON files that `benchmarks/run.py` "
        "writes in `benchmarks/results/`; the commands are at the end of the page.", "",
        "**What is timed.** One epoch of `fit` on LunarLander-like 64x64 uint8 frames, 20% of them held out "
        "for validation, `z_dim=64`. Throughput is the training and validation images over the wall time of "
        "`fit`, for both implementations alike.",
        "The *reference* re-creates in plain PyTorch how github.com/guspih/Perceptual-Autoencoders trains "
        "(it is not its code): a float32 copy of the whole data set, `DataLoader(TensorDataset(data, data), "
        "shuffle=True)`, NCHW tensors, stock layers, default Adam, and a validation pass that also runs a "
        "backward.",
        "All contenders run in one process and alternate repetition by repetition, every other repetition "
        "in reverse order, so that the machine's load slows them alike: read the ratios, each taken between "
        "neighbouring fits, more than the absolute speeds.",
        "Cells give the median and the range (min–max) over the repetitions; a ratio is ours over the "
        "reference's throughput, repetition by repetition.",
        "The loss network uses AlexNet's ImageNet weights where the machine has them, random ones otherwise: "
        "the timings do not depend on their values.", "",
        "## Training speed on a CPU", "",
    ]
    for r in cpus:
        lines += fit_table(r)
    if not cpus:
        lines += ["The CPU table is pending re-measurement. It comes from", "", "```", CPU_COMMAND,
                  RENDER_COMMAND, "```", ""]
    lines += ["## Training speed on a GPU", ""]
    for r in gpus:
        lines += fit_table(r)
    if not gpus:
        lines += ["No GPU results are recorded; on a CUDA machine, measure them with", "", "```",
                  GPU_COMMAND, RENDER_COMMAND, "```", ""]
    lines += ["## Memory", "",
              "Peak resident memory (RSS) of a fit on the CPU, minus its uint8 data. It includes torch's own "
              "imports, which take more memory with PyPI's CUDA wheels than with the CPU-only wheels "
              "(`python benchmarks/import_memory.py`).", ""]
    for r in memories:
        lines += memory_table(r)
    if not memories:
        lines += ["The memory table is pending re-measurement; the command of the CPU table measures it too.", ""]
    lines += memmap_text([r for r in results if r.memmap])
    lines += parameters_text(cpus, gpus)
    lines += ["## Reproducing", "",
              "Each results file and the command that measured it; then render the page:", "", "```"]
    for r in sorted(cpus + gpus + [m for m in memories if m not in cpus + gpus], key=lambda r: r.path.name):
        lines.append(f"# {r.path.name}: {machine(r.meta).split(';')[0]}")
        lines += command_for(r)
    for r in (r for r in results if r.memmap):
        lines += [f"# {r.path.name}: {machine(r.meta).split(';')[0]}", r.meta["command"]]
    if not cpus:
        lines += ["# cpu.json (pending)", CPU_COMMAND]
    lines += [RENDER_COMMAND, "```", "",
              "`run.py --results` adds repetitions to an existing file, and the tables use the latest ones that "
              "ran together; delete the file first for a fresh measurement.",
              "A file transcribed from a summary cannot be extended: measure into a new file, e.g. "
              f"`{GPU_COMMAND}` on a GPU.",
              "`python benchmarks/run.py` without `--only-fit` also times the estimator against a bare PyTorch "
              "loop, `transform`, the data path and the scaling with the number of images, and "
              "`python benchmarks/run.py --quick` is the smoke test."]
    return "\n".join(lines) + "\n"


def memmap_text(results):
    """The section on data that stays on disk, from ``benchmarks/memmap.py``'s results."""
    if not results:
        return []
    lines = ["## Data on disk", ""]
    for r in results:
        runs = {run["mode"]: run for run in r.memmap}
        n, meta = r.memmap[0]["n"], r.meta
        lines += [
            f"`fit` (one epoch, perceptual loss, batch {meta['batch_size']}, `precision=\"{meta['precision']}\"`) "
            f"and `transform` on {n:,} uint8 64x64 images ({meta['image_file_gib']:.2f} GiB) read from a "
            "memory map (`np.load(path, mmap_mode=\"r\")`, the file's pages dropped from the page cache first) "
            "and the same images in RAM, each in a fresh process. Memory is the peak of anonymous memory "
            "(`RssAnon`) above its value before the call: a copy of the images would show there, while a "
            "memory map's pages are page cache. One run each.", "",
            f"**Machine:** {machine(meta)}.", "",
            "| images | fit, img/s | fit, peak anonymous memory | transform, img/s | "
            "transform, peak anonymous memory |",
            "|---|---|---|---|---|",
        ]
        for mode, label in (("memmap", "memory map"), ("ram", "in RAM")):
            if mode in runs:
                run = runs[mode]
                lines.append(f"| {label} | {run['fit_img_s']:,.0f} | +{run['fit_peak_anon_mib'] / 1024:.2f} GiB | "
                             f"{run['transform_img_s']:,.0f} | +{run['transform_peak_anon_mib'] / 1024:.2f} GiB |")
        if {"memmap", "ram"} <= set(runs):
            fit = runs["memmap"]["fit_img_s"] / runs["ram"]["fit_img_s"]
            transform = runs["memmap"]["transform_img_s"] / runs["ram"]["transform_img_s"]
            lines += ["", f"From the memory map, `fit` ran at {fit:.2f}x and `transform` at {transform:.2f}x the "
                      "in-RAM throughput."]
        lines.append("")
    return lines


def command_for(result):
    """The commands that made ``result``'s numbers, writing to its file when they did not."""
    out = []
    for command in result.meta.get("commands", []):
        if "--results" not in command and not result.meta.get("transcribed"):
            command += f" --results benchmarks/results/{result.path.name}"
        out.append(command)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path,
                        help="results files (default: benchmarks/results/*.json)")
    parser.add_argument("--out", type=Path, default=PAGE, help="the page to write (default: docs/benchmarks.md)")
    parser.add_argument("--check", action="store_true", help="only check that --out is up to date")
    args = parser.parse_args(argv)
    files = args.files or sorted(RESULTS.glob("*.json"))
    text = render([load(f) for f in files])
    if args.check:
        if not args.out.is_file() or args.out.read_text() != text:
            sys.exit(f"{args.out} is out of date: run {RENDER_COMMAND}")
        return
    args.out.write_text(text)
    print(f"wrote {args.out} from {len(files)} results file(s)")


if __name__ == "__main__":
    main()
