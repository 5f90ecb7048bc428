"""README.md and MODEL_CARD.md quote the bundled family exactly as its weight records and latency results say."""

from pathlib import Path

from bench_helpers import load_benchmark

from anas_zoo.bundled import bundled_records

ROOT = Path(__file__).resolve().parents[1]


def test_readme_table_matches_the_records():
    table = load_benchmark("family_table").readme_table(bundled_records())
    assert len(table.splitlines()) == 2 + 7
    assert table in (ROOT / "README.md").read_text(), "README.md is stale: paste `python benchmarks/family_table.py`"


def test_model_card_table_matches_the_records_and_latency_results():
    table = load_benchmark("family_table").card_table(bundled_records())
    assert "–" not in table, "every bundled model has latency results in the card's folder"
    assert table in (ROOT / "MODEL_CARD.md").read_text(), "MODEL_CARD.md is stale: paste `python benchmarks/family_table.py`"


def test_models_without_latency_results_show_a_dash(tmp_path):
    rows = load_benchmark("family_table").card_table(bundled_records()[:1], latency_dir=tmp_path).splitlines()
    assert rows[2].split(" | ")[-3:-1] == ["– / –", "–"]


def test_the_search_column_appears_only_when_a_search_picked_the_genomes(tmp_path):
    family_table = load_benchmark("family_table")
    records = [r for r in bundled_records() if r["name"] == "attentivenas_cifar10_a0"]
    unsearched = [r | {"search": {"budget_macs": None, "held_out_samples": None, "held_out_top1": None}} for r in records]
    searched = [r | {"search": {"budget_macs": 12e6, "held_out_samples": 5000, "held_out_top1": 0.7672}} for r in records]
    assert "held-out top-1 (search)" not in family_table.card_table(unsearched, latency_dir=tmp_path)
    table = family_table.card_table(searched, latency_dir=tmp_path)
    assert "held-out top-1 (search)" in table and " 76.72 " in table
