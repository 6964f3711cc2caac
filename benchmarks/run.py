"""skperceptual performance benchmarks: the reference implementation against this library, one table.

Usage::

    python benchmarks/run.py            # full run (tens of minutes on 2 busy CPU cores)
    python benchmarks/run.py --quick    # smoke test, under 2 minutes
    # the fit table in short commands (a shared machine), accumulated in fit.json
    # (each command's fits first run once untimed, so short commands cost double):
    python benchmarks/run.py --only-fit --reps 1 --losses pixel --results fit.json --skip-memory
    python benchmarks/run.py --only-fit --skip-fit --results fit.json
    # our perceptual overheads alone, pixel and perceptual fits back to back:
    python benchmarks/run.py --only-fit --skip-memory --reps 8 --kinds fp32 fp32_bf16_loss
    # the fit table on a GPU (the memory table is about CPU RAM):
    python benchmarks/run.py --only-fit --skip-memory --device cuda --reps 5
    # a fast GPU trains the default 6,000 images in a tenth of a second: also
    python benchmarks/run.py --only-fit --skip-memory --device cuda --reps 5 --n-fit 40000
    # the benchmarks page, docs/benchmarks.md, from benchmarks/results/*.json
    # (files that --results wrote: measurements, machine, versions, command):
    python benchmarks/render_page.py

Every comparison is measured inside one process, alternating the contenders
repetition by repetition, and reports median (min-max): shared machines are
noisy, so absolute numbers move with the load but the ratios hold better.
Within one command, each implementation's pixel and perceptual fits run
back to back, and every other repetition runs the contenders in reverse
order, so that a ratio is taken between neighbouring fits and drift
cancels out.
Fit throughputs count the training and validation images of one epoch
divided by the wall time of ``fit``, for us and for the reference alike.

The "reference" rows re-create, in a few lines of plain PyTorch, the
structure of the paper's reference training code
(github.com/guspih/Perceptual-Autoencoders, ``VAE.py`` ``train_autoencoder``
and ``utility.py`` ``run_epoch``): a float32 copy of the whole data set,
``TensorDataset(data, data)`` behind shuffled DataLoaders, NCHW tensors,
stock layers, default Adam, and a validation pass that also runs a backward.
It is a re-creation for timing, not their code.
"""

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from skperceptual import PerceptualAETransformer  # noqa: E402
from skperceptual.losses.perceptual import load_perceptual_net  # noqa: E402
from skperceptual.losses.weights import weights_source  # noqa: E402
from skperceptual.models.autoencoder import ConvAutoencoder  # noqa: E402
from skperceptual.training.allocator import retain_freed_memory  # noqa: E402
from skperceptual.training.data import ImageDataset, batch_loader  # noqa: E402

# The ImageNet weights when this machine has them (`skperceptual weights
# show`), else random ones: timing does not depend on the weights' values,
# so a benchmark never waits for a download.
WEIGHTS = "imagenet" if weights_source("alexnet")[0] is not None else None

ROWS = []


def row(section, name, value, note=""):
    ROWS.append((section, name, value, note))
    print(f"  [{section}] {name}: {value} {note}", file=sys.stderr, flush=True)


def images(n, size, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8)


def median_of(fn, reps):
    return statistics.median(fn() for _ in range(reps))


# --------------------------------------------------------------------- FLOPs
def count_macs(module, x):
    """Multiply-adds of one forward pass of ``module`` on ``x``, per image."""
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            k = mod.weight[0].numel()  # C_in/groups * kh * kw (conv), C_out*kh*kw (deconv)
            if isinstance(mod, nn.Conv2d):
                total[0] += out.numel() * k
            else:
                total[0] += inp[0].numel() * k
        elif isinstance(mod, nn.Linear):
            total[0] += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules() if not list(m.children())]
    with torch.no_grad():
        if isinstance(module, ConvAutoencoder):
            # Count the plain module graph: encode() and decode() call the
            # same layers' weights functionally (the first deconv as a
            # matmul, the convolutions with their bias apart), outside hooks.
            h = module.encoder(x)
            mu, _ = module.fc_mu(h), module.fc_logvar(h)
            module.decoder(module.decoder_input(mu).view(-1, *module._seed_shape))
        else:
            module(x)
    for h in handles:
        h.remove()
    return total[0] / len(x)


def flop_floor(size):
    """Extra multiply-adds of the perceptual loss per training step, relative."""
    ae_macs = count_macs(ConvAutoencoder(64, (size, size)), torch.rand(2, 3, size, size))
    p_macs = count_macs(load_perceptual_net(weights=None), torch.rand(2, 3, size, size))
    # Training the AE: forward + grad wrt input + grad wrt weights ~ 3x.
    # Perceptual: p(x_hat) forward + its input gradient (p is frozen) + p(x).
    return ae_macs, p_macs, 3 * p_macs / (3 * ae_macs), 2 * p_macs / (3 * ae_macs)


# ----------------------------------------------------------- our fit, bare loop
def our_estimator(batch, loss, validation=0.2, device="cpu", **params):
    """The estimator every benchmark times: z=64, one epoch, no early stopping; ``params`` override."""
    defaults = dict(z_dim=64, max_epochs=1, perceptual_weights=WEIGHTS, patience=None, random_state=0)
    return PerceptualAETransformer(**{**defaults, **params}, batch_size=batch, loss=loss,
                                   validation_fraction=validation, device=device)


def fit_ours(X, batch, loss, validation=0.2, device="cpu", **params):
    ae = our_estimator(batch, loss, validation, device, **params).fit(X)
    # Train + validation images per second, as the reference is counted.
    return len(X) / ae.fit_time_, ae


def fit_bare(X, batch, channels_last=True):
    """The same model, data, batch size and steps as fit(), with no skorch."""
    torch.manual_seed(0)
    start = time.perf_counter()
    model = ConvAutoencoder(64, X.shape[2:])
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3, fused=True)  # as the library
    data = torch.from_numpy(X)
    with retain_freed_memory():  # as fit() does
        for idx in torch.randperm(len(data)).split(batch):
            x = data[idx].float().div_(255).contiguous(memory_format=fmt)
            opt.zero_grad(set_to_none=True)
            recon, _, _ = model(x)
            F.mse_loss(recon, x).backward()
            opt.step()
    return len(X) / (time.perf_counter() - start)


# --------------------------------------------------- reference re-creation
class _RefAE(nn.Module):
    """The paper's autoencoder as the reference runs it: stock modules, NCHW.

    Its ``forward`` returns ``(rec_x, z, mu, logvar)`` like the reference's
    ``TemplateVAE``; its ReLUs are not in place, as there.
    """

    def __init__(self, size):
        super().__init__()
        self.ae = ConvAutoencoder(64, (size, size))
        for m in self.ae.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = False

    def forward(self, x):
        ae = self.ae
        h = ae.encoder(x)
        mu, logvar = ae.fc_mu(h), ae.fc_logvar(h)
        return ae.decoder(ae.decoder_input(mu).view(-1, *ae._seed_shape)), mu, mu, logvar


def fit_reference(X, batch, loss, validation=0.2, device="cpu"):
    """Re-creation of the reference's ``train_autoencoder``: one epoch + validation.

    Mirrors the structure of ``VAE.py`` / ``utility.py`` in
    github.com/guspih/Perceptual-Autoencoders (read, not copied): a float32
    copy of the data, ``TensorDataset(data, data)`` (input and target
    collated per item) behind shuffled ``DataLoader``s, NCHW tensors, stock
    layers, default Adam, ``zero_grad`` + ``loss.item()`` every batch, a
    perceptual net ending in a Sigmoid whose target branch runs with autograd
    on, and a validation epoch in eval mode that also calls ``backward``.
    On CUDA, each batch is copied to the GPU as the reference does
    (``.cuda()`` per batch, no pinned memory). Returns train + validation
    images per second.
    """
    torch.manual_seed(0)
    start = time.perf_counter()
    data = torch.from_numpy(X).float().div(255)  # whole float32 copy, as they do
    n_valid = max(1, round(validation * len(data)))
    train, valid = data[n_valid:], data[:n_valid]
    model = _RefAE(X.shape[2]).to(device)
    opt = torch.optim.Adam(model.parameters())
    if loss == "perceptual":
        p = nn.Sequential(*load_perceptual_net(weights=WEIGHTS), nn.Sigmoid()).to(device)

        def criterion(output, x):
            return F.mse_loss(p(output[0]).flatten(1), p(x).flatten(1))
    else:

        def criterion(output, x):
            return F.mse_loss(output[0].view(len(x), -1), x.reshape(len(x), -1))

    for part, training in ((train, True), (valid, False)):
        model.train(training)
        for x, y in DataLoader(TensorDataset(part, part), batch_size=batch, shuffle=True):
            x, y = x.to(device), y.to(device)
            opt.zero_grad()
            lo = criterion(model(x), y)
            lo.item()
            lo.backward()  # in validation too, as the reference does
            if training:
                opt.step()
    if device != "cpu":
        torch.cuda.synchronize()  # the last backward runs after its lo.item()
    return len(data) / (time.perf_counter() - start)


# ------------------------------------------------------------------ sections
def lunar_frames(n, size=64, seed=0):
    """LunarLander-like uint8 frames: black sky, a grey jagged moon surface, a lander."""
    rng = np.random.default_rng(seed)
    frames = np.zeros((n, 3, size, size), dtype=np.uint8)
    cols = np.arange(size)
    rows = np.arange(size)[:, None]
    for i in range(n):
        knots = rng.uniform(0.7, 0.95, 11) * size
        ground = np.interp(cols, np.linspace(0, size - 1, 11), knots)
        frames[i, :, rows >= ground[None, :]] = 200  # broadcast over channels
        y, x = rng.integers(4, size // 2), rng.integers(4, size - 8)
        frames[i, 0, y:y + 4, x:x + 6], frames[i, 2, y:y + 4, x:x + 6] = 128, 229
    return frames


def spread(values, fmt="{:.0f}"):
    """``median (min-max)`` of repeated measurements."""
    lo, med, hi = min(values), statistics.median(values), max(values)
    return f"{fmt.format(med)} ({fmt.format(lo)}–{fmt.format(hi)})"


#: (kind, loss) in the order of even repetitions; odd ones run it reversed.
#: "fp32_bf16_loss" is a float32 autoencoder trained through a bf16 loss
#: network (``loss_precision="bf16"``); its pixel fit would be fp32's.
FIT_CONTENDERS = (
    ("ref", "pixel"), ("ref", "perceptual"),
    ("fp32", "pixel"), ("fp32", "perceptual"), ("fp32_bf16_loss", "perceptual"),
    ("bf16", "pixel"), ("bf16", "perceptual"),
    ("ref_retain", "pixel"), ("ref_retain", "perceptual"),
)

#: Every kind of FIT_CONTENDERS, for --kinds.
KINDS = sorted({kind for kind, _ in FIT_CONTENDERS})

#: The estimator parameters of each of our kinds.
OUR_KINDS = {
    "fp32": dict(precision="fp32"),
    "fp32_bf16_loss": dict(precision="fp32", loss_precision="bf16"),
    "bf16": dict(precision="bf16"),
}


def has_issue_table(res):
    """Whether ``res`` holds both losses of the issue table's kinds: ref, fp32 and bf16."""
    return all(key in res for key in FIT_CONTENDERS if key[0] in ("ref", "fp32", "bf16"))


def measure_fit(args):
    """Time the fit contenders, alternating them repetition by repetition."""
    X = lunar_frames(args.n_fit, 64)
    contenders = [key for key in FIT_CONTENDERS if key[1] in args.losses and key[0] in args.kinds]
    if args.device != "cpu":
        # The glibc setting matters for CPU tensors only.
        contenders = [key for key in contenders if key[0] != "ref_retain"]
    res = {key: [] for key in contenders}

    def fit(kind, loss):
        if kind == "ref":
            return fit_reference(X, args.batch, loss, device=args.device)
        if kind == "ref_retain":
            # How much the reference itself would gain from the glibc
            # setting our fit applies (skperceptual.training.allocator).
            with retain_freed_memory():
                return fit_reference(X, args.batch, loss)
        return fit_ours(X, args.batch, loss, device=args.device, **OUR_KINDS[kind])[0]

    # One untimed repetition first, so that costs paid once per process do
    # not slow whichever contender runs first in the first timed one: the
    # first optimiser's import of torch._dynamo, oneDNN's kernels for each
    # batch shape, and on CUDA the context, cuDNN's handles and lazily
    # loaded kernels.
    for kind, loss in contenders:
        fit(kind, loss)
    for rep in range(args.reps):
        for kind, loss in (contenders if rep % 2 == 0 else contenders[::-1]):
            res[kind, loss].append(fit(kind, loss))
    return res


def cpu_model():
    """The CPU's model name (Linux's /proc/cpuinfo), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_metadata(args, fit=True, memory=True):
    """What a --results file records about the run: machine, versions, date, sizes, command."""
    import shlex

    import skorch

    gpu = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else None
    meta = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": gpu},
        "torch": torch.__version__, "skorch": skorch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        "commands": [shlex.join(["python", "benchmarks/run.py", *sys.argv[1:]])],
    }
    if fit:
        meta["fit"] = {"device": args.device, "n_fit": args.n_fit, "batch": args.batch, "reps": args.reps}
    if memory:
        meta["memory"] = {"n": args.n_memory, "steps": args.memory_steps, "batch": 512}
    return meta


def merge_results(path, fit=None, memory=None, meta=None):
    """Add measurements to the JSON file ``path`` (runs split across commands).

    ``meta`` (:func:`run_metadata`) replaces the file's, keeping the
    commands of earlier runs and the "fit" or "memory" block of a run
    that measured it. ``benchmarks/render_page.py`` makes the
    benchmarks page from such files.
    """
    import json

    stored = {"fit": {}, "memory": {}}
    if os.path.isfile(path):
        with open(path) as f:
            stored = json.load(f)
        if any(not isinstance(v, list) for v in stored["fit"].values()):
            sys.exit(f"{path} holds a recorded summary, not repetitions: write to another file")
    for (kind, loss), values in (fit or {}).items():
        stored["fit"].setdefault(f"{kind}|{loss}", []).extend(values)
    stored["memory"].update(memory or {})
    if meta:
        old = stored.get("meta", {})
        commands = [c for c in old.get("commands", []) if c not in meta["commands"]]
        stored["meta"] = {**meta, "commands": commands + meta["commands"]}
        for block in ("fit", "memory"):  # what this run did not measure
            if block not in meta and block in old:
                stored["meta"][block] = old[block]
    with open(path + ".tmp", "w") as f:
        json.dump(stored, f, indent=1)
    os.replace(path + ".tmp", path)
    fit = {tuple(k.split("|")): v for k, v in stored["fit"].items()}
    return fit, stored["memory"]


def section_fit(args, res):
    """The fit table: reference vs fp32 vs bf16, both losses."""
    size = 64
    ae_macs, p_macs, floor, floor_cached = flop_floor(size)
    reps = min(len(v) for v in res.values())
    # A --results file may hold more repetitions of the contenders measured
    # before one was added: pair the latest ones, which ran together.
    res = args.fit_table = {key: values[-reps:] for key, values in res.items()}
    sec = (f"1. fit {size}x{size} on {args.device}, batch {args.batch}, n={args.n_fit} (20% validation), "
           f"1 epoch, train+valid img/s, median (min–max) of {reps}")
    for loss in ("pixel", "perceptual"):
        for kind, label in (("ref", "reference re-creation"), ("fp32", "skperceptual fp32"),
                            ("fp32_bf16_loss", "skperceptual fp32, bf16 loss network"),
                            ("bf16", "skperceptual bf16"),
                            ("ref_retain", "reference re-creation, freed memory retained")):
            if (kind, loss) in res:
                row(sec, f"{label} img/s, {loss}", spread(res[kind, loss]))
        for kind, target in (("fp32", 2.0), ("fp32_bf16_loss", 2.0), ("bf16", 3.0)):
            if (kind, loss) in res and ("ref", loss) in res:
                ratios = [a / b for a, b in zip(res[kind, loss], res["ref", loss])]
                row(sec, f"{kind} / reference, {loss}", spread(ratios, "{:.2f}x"), f"(target >= {target}x)")
    for kind, pixel_kind in (("fp32", "fp32"), ("fp32_bf16_loss", "fp32"), ("bf16", "bf16")):
        if (kind, "perceptual") in res and (pixel_kind, "pixel") in res:
            over = [a / b - 1 for a, b in zip(res[pixel_kind, "pixel"], res[kind, "perceptual"])]
            row(sec, f"perceptual overhead ({kind}, wall clock)", spread(over, "{:+.0%}"),
                "(target <= +25%)" if pixel_kind == "fp32" else "")
    if ("ref", "pixel") in res and ("ref", "perceptual") in res:
        ref_over = [a / b - 1 for a, b in zip(res["ref", "pixel"], res["ref", "perceptual"])]
        row(sec, "perceptual overhead (reference)", spread(ref_over, "{:+.0%}"),
            f"(paper +12% on GPU; FLOP floor {floor:+.0%}, {floor_cached:+.0%} with cached p(x))")
    if ("ref_retain", "perceptual") in res and ("ref_retain", "pixel") in res:
        # Like for like with ours: page faults no longer slow the
        # reference's pixel steps more than its perceptual ones.
        over = [a / b - 1 for a, b in zip(res["ref_retain", "pixel"], res["ref_retain", "perceptual"])]
        row(sec, "perceptual overhead (reference, freed memory retained)", spread(over, "{:+.0%}"))
    row(sec, "MACs/image: AE fwd, perceptual net fwd", f"{ae_macs / 1e6:.1f}M, {p_macs / 1e6:.1f}M")
    if ("fp32", "pixel") in res and ("fp32", "perceptual") in res:
        args.fit_pixel_64 = statistics.median(res["fp32", "pixel"])
        args.fit_perceptual_64 = statistics.median(res["fp32", "perceptual"])


def issue_table(args):
    """The fit table, from the fit and memory sections."""
    res = args.fit_table
    if not has_issue_table(res):
        return "(the fit table needs every loss of ref, fp32 and bf16)"
    lines = ["| | reference | skperceptual fp32 | ratio | skperceptual bf16 | ratio |",
             "|---|---|---|---|---|---|"]
    for loss in ("pixel", "perceptual"):
        cells = [spread(res["ref", loss])]
        for kind in ("fp32", "bf16"):
            ratios = [a / b for a, b in zip(res[kind, loss], res["ref", loss])]
            cells += [spread(res[kind, loss]), spread(ratios, "{:.2f}x")]
        lines.append(f"| {loss} img/s | " + " | ".join(cells) + " |")
    if ("fp32_bf16_loss", "perceptual") in res:
        ratios = [a / b for a, b in zip(res["fp32_bf16_loss", "perceptual"], res["ref", "perceptual"])]
        lines.append(f"| perceptual img/s, fp32 with `loss_precision=\"bf16\"` | {spread(res['ref', 'perceptual'])} | "
                     f"{spread(res['fp32_bf16_loss', 'perceptual'])} | {spread(ratios, '{:.2f}x')} | | |")
    m = getattr(args, "memory", None)
    if not m:
        return "\n".join(lines)
    lines.append(f"| peak RSS − data, perceptual, n={args.n_memory} | | "
                 f"{m['fp32']['peak'] - m['fp32']['data']:.2f} GiB | | "
                 f"{m['bf16']['peak'] - m['bf16']['data']:.2f} GiB | |")
    if "fp32_bf16_loss" in m:
        lines.append(f"| peak RSS − data, fp32 with `loss_precision=\"bf16\"` | | "
                     f"{m['fp32_bf16_loss']['peak'] - m['fp32_bf16_loss']['data']:.2f} GiB | | | |")
    return "\n".join(lines)


def section_wrapper(args):
    X = images(args.n_small, 64, seed=1)
    fit, bare = [], []
    for _ in range(args.reps):
        fit.append(fit_ours(X, args.batch, "pixel", validation=None)[0])
        bare.append(fit_bare(X, args.batch))
    sec = f"2. wrapper overhead, 64x64 pixel, batch {args.batch}, n={args.n_small}, no validation"
    row(sec, "PerceptualAETransformer.fit img/s", f"{statistics.median(fit):.0f}")
    row(sec, "bare PyTorch loop img/s", f"{statistics.median(bare):.0f}")
    r = statistics.median(a / b for a, b in zip(fit, bare))
    row(sec, "fit / bare throughput", f"{r:.0%}", "(target >= 95%)")


def section_transform(args):
    X = images(args.n_transform, 64, seed=2)
    _, ae = fit_ours(images(64, 64), 32, "pixel", validation=None)
    sec = f"3. transform 64x64, n={args.n_transform}"
    for batch in (256, 1024):
        ae.set_params(batch_size=batch)
        ae.net_.set_params(batch_size=batch)

        def once():
            start = time.perf_counter()
            ae.transform(X)
            return len(X) / (time.perf_counter() - start)

        tput = median_of(once, args.reps)
        row(sec, f"transform img/s, batch {batch}", f"{tput:.0f}",
            f"({tput / args.fit_pixel_64:.1f}x pixel fit, {tput / args.fit_perceptual_64:.1f}x "
            "perceptual fit; target >= 3x)")


def section_data_path(args):
    """One indexing operation per batch vs per-item __getitem__ + collation."""
    X = torch.from_numpy(images(args.n_small * 2, 64, seed=3))

    def sliced():
        start = time.perf_counter()
        for x, _ in batch_loader(ImageDataset(X), args.batch, shuffle=True):
            x.float()
        return len(X) / (time.perf_counter() - start)

    def per_item():
        start = time.perf_counter()
        for (x,) in DataLoader(TensorDataset(X), batch_size=args.batch, shuffle=True):
            x.float()
        return len(X) / (time.perf_counter() - start)

    a, b = [], []
    for _ in range(args.reps):
        a.append(sliced())
        b.append(per_item())
    sec = f"data path, uint8 64x64 batches of {args.batch} (load + float)"
    row(sec, "batch slicing (library) img/s", f"{statistics.median(a):.0f}")
    row(sec, "per-item __getitem__ + collate img/s", f"{statistics.median(b):.0f}")


def section_cache_targets(args):
    """Would caching p(x) across epochs pay? Time share vs memory cost."""
    size, batch = 64, args.batch
    p = load_perceptual_net(weights=WEIGHTS).to(memory_format=torch.channels_last)
    x = torch.rand(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        feats = p(x)

    def target_time():
        start = time.perf_counter()
        with torch.no_grad():
            torch.sigmoid(p(x))
        return time.perf_counter() - start

    t = median_of(target_time, args.reps)
    per_image = t / batch
    step = 1 / args.fit_perceptual_64
    mb = feats[0].numel() * 4 / 2**20
    sec = "perceptual target cache (64x64)"
    row(sec, "p(x) share of a perceptual training step", f"{per_image / step:.0%}",
        f"({per_image * 1e3:.2f} ms of {step * 1e3:.2f} ms per image)")
    row(sec, "cache size per 100k images (float32 / bf16)",
        f"{mb * 1e5 / 1024:.1f} GiB / {mb * 1e5 / 2048:.1f} GiB", "(data itself: 1.14 GiB)")


_MEMORY_CHILD = textwrap.dedent("""
    import resource, sys, json
    import numpy as np, torch
    sys.path.insert(0, {root!r})
    from skperceptual import PerceptualAETransformer
    from skperceptual.training.net import AutoencoderNet
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # GiB (kB units)
    def current():
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**30
    base = current()
    X = np.random.default_rng(0).integers(0, 256, ({n}, 3, 64, 64), dtype=np.uint8)
    with_data = current()
    steps = [0]
    step = AutoencoderNet.train_step
    def limited(self, batch, **kw):
        steps[0] += 1
        if steps[0] > {steps}:
            raise KeyboardInterrupt  # ends the fit: the estimator re-raises it
        return step(self, batch, **kw)
    AutoencoderNet.train_step = limited
    try:
        PerceptualAETransformer(max_epochs=1, batch_size={batch}, perceptual_weights={weights!r},
                                device='cpu', random_state=0, **{params!r}).fit(X)
    except KeyboardInterrupt:
        pass
    print(json.dumps(dict(base=base, data=X.nbytes / 2**30, with_data=with_data, peak=rss())))
""")


def section_memory(args):
    import json

    args.memory = {}
    for kind in ("fp32", "bf16", "fp32_bf16_loss"):
        code = _MEMORY_CHILD.format(root=ROOT, n=args.n_memory, steps=args.memory_steps,
                                    batch=512, weights=WEIGHTS, params=OUR_KINDS[kind])
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        m = args.memory[kind] = json.loads(out.stdout.strip().splitlines()[-1])
        sec = (f"4. peak RSS of fit, perceptual {kind}, batch 512, n={args.n_memory} "
               f"uint8 64x64, {args.memory_steps} steps")
        row(sec, "imports (RSS before data)", f"{m['base']:.2f} GiB")
        row(sec, "data (uint8 array)", f"{m['data']:.2f} GiB")
        row(sec, "peak RSS during fit", f"{m['peak']:.2f} GiB")
        row(sec, "peak minus data", f"{m['peak'] - m['data']:.2f} GiB", "(target <= 1.5 GiB)")
        row(sec, "peak minus data and imports", f"{m['peak'] - m['data'] - m['base']:.2f} GiB",
            "(the fit's own, with torch.optim's import of torch._dynamo)")


def section_scaling(args):
    times = {n: [] for n in args.scaling}
    for _ in range(args.scaling_reps):
        for n in args.scaling:
            X = images(n, 64, seed=4)
            times[n].append(n / fit_ours(X, args.batch, "pixel", validation=None)[0])
    ns = np.log(np.array(args.scaling, dtype=float))
    ts = np.log(np.array([statistics.median(times[n]) for n in args.scaling]))
    slope = np.polyfit(ns, ts, 1)[0]
    sec = f"5. scaling, 64x64 pixel, batch {args.batch}, 1 epoch"
    for n in args.scaling:
        row(sec, f"fit time, n={n}", f"{statistics.median(times[n]):.1f} s")
    row(sec, "exponent of time ~ n^k", f"{slope:.2f}", "(1.00 = linear)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--reps", type=int, default=None, help="repetitions of the fit table")
    parser.add_argument("--only-fit", action="store_true", help="only the fit and memory table")
    parser.add_argument("--losses", nargs="+", default=["pixel", "perceptual"],
                        choices=["pixel", "perceptual"], help="losses of the fit table")
    parser.add_argument("--results", help="JSON file that accumulates fit/memory measurements "
                        "across commands (to keep each timing command short)")
    parser.add_argument("--kinds", nargs="+", default=KINDS, choices=KINDS,
                        help="contenders of the fit table, e.g. 'fp32 fp32_bf16_loss' for our "
                        "perceptual overheads alone (with --only-fit)")
    parser.add_argument("--skip-fit", action="store_true", help="no new fit timings (use --results)")
    parser.add_argument("--skip-memory", action="store_true", help="no memory run (use --results)")
    parser.add_argument("--device", default="cpu",
                        help="device of the fit table (e.g. cuda); the other sections stay on the CPU")
    parser.add_argument("--n-fit", type=int, default=None,
                        help="images of the fit table (default 6000, the issue's); a fast GPU "
                        "trains 6000 in well under a second, so its steady state needs more")
    args = parser.parse_args()
    if args.kinds != KINDS and not args.only_fit:
        parser.error("--kinds times some contenders of the fit table only: add --only-fit")
    if args.quick:
        args.reps, args.batch, args.n_transform = 1, 64, 1024
        args.n_fit = args.n_fit or 320
        args.n_memory, args.memory_steps, args.scaling = 10_000, 1, (128, 256, 512)
        args.n_small = 256
        args.scaling_reps = 1
    else:
        args.reps, args.batch, args.n_transform = args.reps or 3, 512, 8192
        args.n_fit = args.n_fit or 6000
        args.n_memory, args.memory_steps, args.scaling = 100_000, 3, (1024, 2048, 4096)
        args.n_small = 1536
        args.scaling_reps = 1
    start = time.time()
    res = {} if args.skip_fit else measure_fit(args)
    if not args.skip_memory:
        section_memory(args)
    if args.results:
        meta = run_metadata(args, fit=not args.skip_fit, memory=not args.skip_memory)
        res, args.memory = merge_results(args.results, res, getattr(args, "memory", None), meta)
    if args.kinds == KINDS and not has_issue_table(res):
        print(f"Measured {sorted(res)}; run the other loss to get the full table.")
        return
    section_fit(args, res)
    if not args.only_fit:
        section_wrapper(args)
        section_transform(args)
        section_data_path(args)
        section_cache_targets(args)
        section_scaling(args)

    gpu = f"{torch.cuda.get_device_name(args.device)}, " if args.device.startswith("cuda") else ""
    print(f"\nskperceptual benchmarks ({'quick' if args.quick else 'full'}), "
          f"{datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads, "
          f"{gpu}load average at end {os.getloadavg()[0]:.1f}, {time.time() - start:.0f} s\n")
    print(issue_table(args) + "\n")
    width = max(len(r[1]) for r in ROWS)
    current = None
    print("| measurement | value | note |\n|---|---|---|")
    for section, name, value, note in ROWS:
        if section != current:
            print(f"| **{section}** | | |")
            current = section
        print(f"| {name.ljust(width)} | {value} | {note} |")


if __name__ == "__main__":
    main()
