"""README.md and MODEL_CARD.md quote the bundled family exactly as its weight records and latency results say."""

import importlib.util
from pathlib import Path

from anas_zoo.bundled import bundled_records

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("family_table", ROOT / "benchmarks" / "family_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_matches_the_records():
    table = _module().readme_table(bundled_records())
    assert len(table.splitlines()) == 2 + 7
    assert table in (ROOT / "README.md").read_text(), "README.md is stale: paste `python benchmarks/family_table.py`"


def test_model_card_table_matches_the_records_and_latency_results():
    table = _module().card_table(bundled_records())
    assert "–" not in table, "every bundled model has latency results in the card's folder"
    assert table in (ROOT / "MODEL_CARD.md").read_text(), "MODEL_CARD.md is stale: paste `python benchmarks/family_table.py`"


def test_models_without_latency_results_show_a_dash(tmp_path):
    rows = _module().card_table(bundled_records()[:1], latency_dir=tmp_path).splitlines()
    assert rows[2].split(" | ")[7:9] == ["– / –", "–"]
