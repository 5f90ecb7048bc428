"""The bundled family's tables in README.md and MODEL_CARD.md, rendered from the weight records.

    python benchmarks/family_table.py [--latency benchmarks/results/icelake_2core_kvm]

Prints the README's short table and the model card's full one, one row per model with every weight set's
figures (the default tag first). Every figure comes from a
``checkpoints/*.json`` record (MACs, params, test top-1/top-5, file size) or from the latency
harness's ``results.csv`` under ``--latency``, so shipping a new family means pasting this output;
``tests/test_family_tables.py`` fails while the documents and the records disagree.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from anas_zoo.bundled import TAG_PREFERENCE, bundled_records
from anas_zoo.hub_cards import latency_rows, markdown_table
from anas_zoo.store import BUNDLED_DIR

ROOT = Path(__file__).resolve().parents[1]
#: Where the model card's latency columns were measured (the machine the card names).
LATENCY_DIR = ROOT / "benchmarks" / "results" / "icelake_2core_kvm"


def _test_metric(record: dict) -> dict:
    return next(m for m in record["metrics"] if m["split"] == "test")


def by_name(records: list[dict]) -> list[list[dict]]:
    """The records grouped per model (by increasing MACs), each group in the registry's tag order."""
    names = sorted({r["name"] for r in records}, key=lambda n: next(r["macs"] for r in records if r["name"] == n))
    order = {t: i for i, t in enumerate(TAG_PREFERENCE)}
    return [sorted((r for r in records if r["name"] == name), key=lambda r: (order.get(r["tag"], len(order)), r["tag"]))
            for name in names]


def _tags(records: list[dict]) -> list[str]:
    return [r["tag"] for r in by_name(records)[0]]


def _common(group: list[dict]) -> list[str]:
    r = group[0]
    return [r["name"], str(r["resolution"]), f"{r['macs'] / 1e6:.2f}", f"{r['params'] / 1e6:.2f} M"]


def readme_table(records: list[dict]) -> str:
    """README.md's table: architecture and the CIFAR-10 test top-1 of every weight set (default tag first)."""
    tags = _tags(records)
    return markdown_table(["model", "res", "MMACs", "params", *(f"test top-1 .{t}" for t in tags)],
                          [_common(g) + [f"{_test_metric(r)['top1']:.2f}" for r in g] for g in by_name(records)])


def _p50(rows: list[dict], backend: str, threads: int) -> str:
    found = [float(r["p50_ms"]) for r in rows if (r["backend"], r["precision"], r["batch"], r["threads"], r["status"])
             == (backend, "fp32", "1", str(threads), "ok")]
    return f"{found[0]:.2f}" if found else "–"


def _held_out(group: list[dict]) -> float | None:
    """The search's held-out top-1 of the member's genome, when a search picked it."""
    return next((r["search"]["held_out_top1"] for r in group if (r.get("search") or {}).get("held_out_top1")), None)


def card_table(records: list[dict], latency_dir: Path = LATENCY_DIR) -> str:
    """MODEL_CARD.md's table: also top-5 of every weight set, the search's held-out top-1 (a column only when a
    search picked the genomes), batch-1 p50 latency and the file size."""
    tags = _tags(records)
    groups = by_name(records)
    searched = any(_held_out(g) is not None for g in groups)
    rows = []
    for group in groups:
        timings = latency_rows(group[0]["name"], latency_dir)
        size = (BUNDLED_DIR / group[0]["file"]).stat().st_size / 1e6
        accuracy = [f"{_test_metric(r)['top1']:.2f} / {_test_metric(r)['top5']:.2f}" for r in group]
        held_out = _held_out(group)
        search = ["–" if held_out is None else f"{100 * held_out:.2f}"] if searched else []
        rows.append(_common(group) + accuracy + search + [
            f"{_p50(timings, 'ort', 1)} / {_p50(timings, 'ort', 2)}", _p50(timings, "torch", 1), f"{size:.1f} MB"])
    return markdown_table(["model", "res", "MMACs", "params", *(f"test top-1 / top-5 .{t}" for t in tags),
                           *(["held-out top-1 (search)"] if searched else []), "ORT fp32 p50 ms (1 / 2 thr)",
                           "torch p50 ms (1 thr)", "size (float16)"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=Path, default=LATENCY_DIR,
                        help="latency results folder for the card's timing columns "
                             f"(default {LATENCY_DIR.relative_to(ROOT)})")
    args = parser.parse_args()
    records = bundled_records()
    if not records:
        parser.exit(1, f"family_table: no weight records in {BUNDLED_DIR}\n")
    if not args.latency.is_dir():
        parser.exit(1, f"family_table: latency folder {args.latency} does not exist\n")
    print(f"README.md\n\n{readme_table(records)}\n\nMODEL_CARD.md\n\n{card_table(records, args.latency)}")


if __name__ == "__main__":
    main()
