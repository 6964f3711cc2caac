"""tables.md shows every cell of the paper's Tables II-VIII, right, next to ours.

The reference is the paper's tables as transcribed in the shared folder
beside the checkout (``tables.json``); the library itself holds its own copy
in ``skperceptual.protocol._paper``, and this test checks that copy as it is
rendered, cell by cell.
"""

import json
from pathlib import Path

import pandas as pd
import pytest

from skperceptual.protocol._report import read_results, render_tables

TABLES_JSON = Path(__file__).parents[2] / "shared" / "paper" / "tables.json"
DATASETS = {"LunarLander": ("lunarlander", "positioning"), "STL-10": ("stl10", "classification"),
            "SVHN": ("svhn", "classification")}
#: The paper's table number -> (dataset name in tables.json, head).
HEAD_TABLES = {"II": ("LunarLander", "mlp"), "III": ("STL-10", "mlp"), "IV": ("SVHN", "mlp"),
               "V": ("LunarLander", "linear"), "VI": ("STL-10", "linear"), "VII": ("SVHN", "linear")}
VARIANTS = ["AE", "VAE", "P. AE", "P. VAE"]


@pytest.fixture(scope="module")
def paper():
    if not TABLES_JSON.is_file():
        pytest.skip(f"{TABLES_JSON} is not beside the checkout")
    return json.loads(TABLES_JSON.read_text())


def ours(dataset, task, z, variant, head):
    """A distinct synthetic test value per cell, so misplaced cells are caught."""
    value = 1 + 0.01 * z + VARIANTS.index(variant) + (0.5 if head == "linear" else 0)
    return value if task == "positioning" else value / 20


def synthetic_results(tmp_path, dataset, task):
    """A small results.csv as the runner writes it: z 32 and 64 only, one z the paper lacks for STL-10."""
    rows = []
    for variant in VARIANTS:
        for z in (32, 64):
            for head in ("mlp", "linear"):
                m = ours(dataset, task, z, variant, head)
                rows.append(dict(dataset=dataset, task=task, variant=variant, z_dim=z, head=head, test_metric=m,
                                 val_metric=m, test_ci_low=0.9 * m, test_ci_high=1.1 * m, best_params="{}"))
        rows.append(dict(dataset=dataset, task=task, variant=variant, z_dim=64, head="decoder-retrain",
                         test_metric=0.01 * (1 + VARIANTS.index(variant)), l1_before=0.05))
    if task == "positioning":
        rows.append(dict(dataset=dataset, task=task, variant="baseline", head="mean-position", test_metric=14.5,
                         test_ci_low=13.0, test_ci_high=16.0))
    path = tmp_path / f"{dataset}.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return read_results(path)


def parse_tables(markdown):
    """{table number: (header, {first cell: [cells]})} of every '## Table N' section."""
    tables = {}
    for section in markdown.split("\n## ")[1:]:
        title, *body = section.splitlines()
        if not title.startswith("Table "):
            continue
        rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in body if line.startswith("|")]
        header, rows = rows[0], rows[2:]
        tables[title.split(":")[0].split()[1]] = (header, {r[0]: r for r in rows})
    return tables


@pytest.fixture(scope="module")
def rendered(paper, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tables")
    out = {}
    for name, (dataset, task) in DATASETS.items():
        markdown = render_tables(synthetic_results(tmp, dataset, task), dataset, task)
        out[name] = parse_tables(markdown)
    return out


@pytest.mark.parametrize("number", list(HEAD_TABLES))
def test_every_paper_cell_of_tables_ii_to_vii(paper, rendered, number):
    name, head = HEAD_TABLES[number]
    header, rows = rendered[name][number]
    expected = paper[number]["rows"]
    assert set(expected) <= set(rows), f"Table {number} lacks the paper's rows {set(expected) - set(rows)}"
    for z, values in expected.items():
        for variant, value in zip(paper["columns"], values):
            cell = rows[z][header.index(f"{variant} (paper)")]
            assert float(cell) == value, f"Table {number}, z={z}, {variant}: {cell} != paper {value}"


@pytest.mark.parametrize("number", list(HEAD_TABLES))
def test_our_cells_sit_beside_the_papers(paper, rendered, number):
    name, head = HEAD_TABLES[number]
    dataset, task = DATASETS[name]
    header, rows = rendered[name][number]
    scale = 1 if task == "positioning" else 100
    for z in ("32", "64"):
        for variant in VARIANTS:
            cell = rows[z][header.index(variant)]
            value = scale * ours(dataset, task, int(z), variant, head)
            assert cell.startswith(f"{value:.2f} [" if task == "positioning" else f"{value:.1f} ["), (number, z, cell)
    for z in set(paper[number]["rows"]) - {"32", "64", "Any"}:
        assert all(rows[z][header.index(v)] == "—" for v in VARIANTS), f"Table {number} z={z} invents our value"


def test_every_paper_cell_of_table_viii(paper, rendered):
    for name, values in paper["VIII"]["rows"].items():
        header, rows = rendered[name]["VIII"]
        for variant, value in zip(paper["columns"], values):
            assert rows[variant][header.index("relative (paper)")] == f"{value}%", (name, variant)
            # Ours on the same scale: the lowest L1 (AE here) is 100%, the others below.
            assert rows[variant][header.index("relative (ours)")] == f"{100 / (1 + VARIANTS.index(variant)):.0f}%"


def test_training_time_overhead(paper):
    from skperceptual.protocol._paper import PERCEPTUAL_OVERHEAD

    assert paper["training_time_overhead_of_perceptual_loss"].startswith(
        f"+{100 * PERCEPTUAL_OVERHEAD[0]:.0f} ± {100 * PERCEPTUAL_OVERHEAD[1]:.0f}%")


def test_paper_z_sizes(paper):
    from skperceptual.protocol._paper import Z_SIZES

    for name, (dataset, _) in DATASETS.items():
        assert list(Z_SIZES[dataset]) == paper["z_sizes"][name]
