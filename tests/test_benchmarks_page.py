"""docs/benchmarks.md is generated from benchmarks/results/*.json by benchmarks/render_page.py.

No benchmark runs here: the page is rendered from tiny JSON files.
"""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def render_page():
    spec = importlib.util.spec_from_file_location("render_page", ROOT / "benchmarks" / "render_page.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


META = {
    "machine": {"cpu": "Test CPU 9000", "cores": 4, "gpu": None},
    "torch": "2.99.0", "skorch": "9.9.9", "date": "2030-01-02",
    "commands": ["python benchmarks/run.py --only-fit --reps 3"],
    "fit": {"device": "cpu", "n_fit": 6000, "batch": 512, "reps": 3},
    "memory": {"n": 100000, "steps": 3, "batch": 512},
}

# Three repetitions each, as benchmarks/run.py's merge_results writes them.
FIT = {
    "ref|pixel": [100.0, 110.0, 90.0],
    "ref|perceptual": [80.0, 100.0, 90.0],
    "fp32|pixel": [250.0, 220.0, 270.0],
    "fp32|perceptual": [200.0, 240.0, 180.0],
    "fp32_bf16_loss|perceptual": [220.0, 260.0, 198.0],
    "bf16|pixel": [300.0, 330.0, 360.0],
    "bf16|perceptual": [240.0, 300.0, 270.0],
    "ref_retain|pixel": [120.0, 120.0, 120.0],
}

MEMORY = {kind: {"base": 0.7, "data": 1.14, "with_data": 1.84, "peak": peak}
          for kind, peak in (("fp32", 2.94), ("bf16", 2.55), ("fp32_bf16_loss", 2.90))}


def write(path, fit, memory=None, meta=META):
    path.write_text(json.dumps({"fit": fit, "memory": memory or {}, "meta": meta}))
    return path


def table_row(page, start):
    return next(line for line in page.splitlines() if line.startswith(start))


def test_cpu_table_medians_ranges_and_ratios(render_page, tmp_path):
    page = render_page.render([render_page.load(write(tmp_path / "cpu.json", FIT, MEMORY))])
    # Medians and ranges of the repetitions; ratios repetition by repetition:
    # fp32 pixel 2.5, 2.0, 3.0; bf16 pixel 3.0, 3.0, 4.0;
    # fp32 perceptual 2.5, 2.4, 2.0; bf16 perceptual 3.0, 3.0, 3.0.
    assert table_row(page, "| pixel |") == (
        "| pixel | 100 (90–110) | 250 (220–270) | 2.50x (2.00x–3.00x) "
        "| 330 (300–360) | 3.00x (3.00x–4.00x) |")
    assert table_row(page, "| perceptual |") == (
        "| perceptual | 90 (80–100) | 200 (180–240) | 2.40x (2.00x–2.50x) "
        "| 270 (240–300) | 3.00x (3.00x–3.00x) |")
    # fp32 with the bf16 loss network: 2.75, 2.6, 2.2.
    assert table_row(page, '| perceptual, fp32 with `loss_precision="bf16"`') == (
        '| perceptual, fp32 with `loss_precision="bf16"` | 90 (80–100) | 220 (198–260) '
        "| 2.60x (2.20x–2.75x) | | |")
    assert "**Machine:** Test CPU 9000, 4 CPU cores; torch 2.99.0, skorch 9.9.9; measured 2030-01-02; " \
           "6,000 images, batch 512, median (min–max) of 3 repetitions." in page
    # Memory: peak RSS minus data, one row per setting.
    assert "| fp32 (default) | 1.80 GiB | 0.70 GiB |" in page
    assert '| `precision="bf16"` | 1.41 GiB | 0.70 GiB |' in page
    assert '| `precision="fp32", loss_precision="bf16"` | 1.76 GiB | 0.70 GiB |' in page
    # The parameters' text quotes the measured CPU: bf16 over fp32 by medians,
    # perceptual overheads over our fp32 pixel fit (+25%, -8%, +50% and
    # +14%, -15%, +36%).
    assert "bf16 trained at 1.32x fp32's speed for the pixel loss and 1.35x for the perceptual loss" in page
    assert '+25% with the default and +14% with `loss_precision="bf16"`' in page
    assert "pending" not in page
    assert "python benchmarks/run.py --only-fit --reps 3 --results benchmarks/results/cpu.json" in page


def test_pending_cpu_table_shows_the_command_and_no_cpu_numbers(render_page, tmp_path):
    gpu = dict(META, machine={"cpu": None, "cores": 16, "gpu": "Test GPU"}, memory=None,
               fit={"device": "cuda", "n_fit": 40000, "batch": 512, "reps": 5})
    page = render_page.render([render_page.load(write(tmp_path / "gpu.json", FIT, meta=gpu))])
    cpu_section = page.split("## Training speed on a CPU")[1].split("## Training speed on a GPU")[0]
    assert "The CPU table is pending re-measurement" in cpu_section
    assert render_page.CPU_COMMAND in cpu_section
    assert "|" not in cpu_section
    assert "The memory table is pending re-measurement" in page
    assert "**Machine:** Test GPU, host with 16 CPU cores;" in page
    assert "# cpu.json (pending)" in page


def test_recorded_summaries(render_page, tmp_path):
    fit = {"ref|pixel": {"median": 100, "min": 90, "max": 120},
           "fp32|pixel": {"median": 400, "min": 300, "max": 500,
                          "ratio_to_reference": {"median": 3.9, "min": 3.1, "max": 4.6}},
           "bf16|pixel": {"median": 300, "min": 280, "max": 310}}
    meta = dict(META, transcribed="Transcribed from a recorded summary.", notes=["A note."])
    page = render_page.render([render_page.load(write(tmp_path / "cpu.json", fit, meta=meta))])
    # A recorded ratio as recorded; without one, the ratio of the medians alone.
    assert table_row(page, "| pixel |") == (
        "| pixel | 100 (90–120) | 400 (300–500) | 3.90x (3.10x–4.60x) | 300 (280–310) | 3.00x |")
    assert "| perceptual | not measured |" in page
    assert "Transcribed from a recorded summary." in page and "- A note." in page
    # A transcribed file's command is shown as it was run.
    assert "\npython benchmarks/run.py --only-fit --reps 3\n" in page


def test_latest_paired_repetitions(render_page, tmp_path):
    """A file filled by several commands: the latest repetitions, which ran together."""
    fit = {"ref|pixel": [1.0, 100.0], "fp32|pixel": [200.0]}
    result = render_page.load(write(tmp_path / "cpu.json", fit))
    assert result.fit == {("ref", "pixel"): [100.0], ("fp32", "pixel"): [200.0]}


def test_data_on_disk_section(render_page, tmp_path):
    runs = [{"mode": "memmap", "n": 200000, "fit_img_s": 450.0, "transform_img_s": 2900.0,
             "fit_peak_anon_mib": 800.0, "transform_peak_anon_mib": 150.0},
            {"mode": "ram", "n": 200000, "fit_img_s": 500.0, "transform_img_s": 3000.0,
             "fit_peak_anon_mib": 780.0, "transform_peak_anon_mib": 140.0}]
    meta = {**META, "batch_size": 512, "precision": "auto", "image_file_gib": 2.29,
            "command": "python benchmarks/memmap.py --results benchmarks/results/memmap-cpu.json"}
    path = tmp_path / "memmap-cpu.json"
    path.write_text(json.dumps({"memmap": runs, "meta": meta}))
    page = render_page.render([render_page.load(write(tmp_path / "cpu.json", FIT, MEMORY)), render_page.load(path)])
    assert "on 200,000 uint8 64x64 images (2.29 GiB)" in page
    assert table_row(page, "| memory map |") == "| memory map | 450 | +0.78 GiB | 2,900 | +0.15 GiB |"
    assert table_row(page, "| in RAM |") == "| in RAM | 500 | +0.76 GiB | 3,000 | +0.14 GiB |"
    assert "`fit` ran at 0.90x and `transform` at 0.97x the in-RAM throughput" in page
    assert "# memmap-cpu.json: Test CPU 9000, 4 CPU cores\n" + meta["command"] in page


def test_committed_page_is_rendered_from_committed_results(render_page):
    files = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    expected = render_page.render([render_page.load(f) for f in files])
    assert (ROOT / "docs" / "benchmarks.md").read_text() == expected, \
        "docs/benchmarks.md is out of date: run python benchmarks/render_page.py"
    assert len(expected.splitlines()) <= 200
