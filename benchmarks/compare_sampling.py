"""The paper's claim, measured: Pareto fronts of supernets trained with different samplers, same recipe.

    python benchmarks/compare_sampling.py --method uniform runs/cifar10-uniform/last.safetensors runs/search-uniform \
        --method bestup runs/cifar10-bestup/last.safetensors runs/search-bestup \
        --out benchmarks/results/sampling_comparison

The first method is the baseline the others are compared with; one method alone gets its own table. Per method: the held-out Pareto front found by ``anas-search`` (its ``pareto.json``), and the family it
picked (``family.json``) plus the smallest and largest subnets, each extracted, BN-calibrated on the
held-out split and evaluated on the CIFAR-10 test split exactly as ``anas-zoo extract`` ships them.
Writes ``comparison.md``, ``comparison.csv``, ``fronts.csv`` and ``comparison.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import tempfile
from pathlib import Path

from anas_zoo.extract import extract_weights
from anas_zoo.fileio import atomic_write, save_png
from anas_zoo.space import ArchConfig, get_space
from anas_zoo.train.checkpoint import read_checkpoint


def evaluate_method(name: str, supernet: str, search_dir: str, data: str | None) -> dict:
    """Held-out front, and test accuracy of the family + smallest + largest subnets, of one trained supernet."""
    search = Path(search_dir)
    missing = [f for f in ("pareto.json", "family.json") if not (search / f).is_file()]
    if missing:
        raise SystemExit(f"compare_sampling: {search} has no {' or '.join(missing)}; pass the --out folder of an "
                         f"anas-search run made with --family")
    pareto = json.loads((search / "pareto.json").read_text())
    family = json.loads((search / "family.json").read_text())
    _, meta = read_checkpoint(supernet)
    space = get_space(meta["space"])
    genomes = [ArchConfig.from_dict(m["genome"]) for m in family] + [space.min_arch(), space.max_arch()]
    labels = [f"a{i}" for i in range(len(family))] + ["smallest", "largest"]
    unique = list(dict.fromkeys(genomes))  # the smallest subnet is often a0 too: extract and evaluate it once
    with tempfile.TemporaryDirectory() as tmp:
        extracted = extract_weights(supernet, unique, [f"{name}_{labels[genomes.index(g)]}" for g in unique], tmp,
                                    name, data)
    by_genome = dict(zip(unique, extracted))
    records = [by_genome[g] for g in genomes]
    held_out = {json.dumps(m["genome"], sort_keys=True): m["accuracy"] for m in pareto["members"]}
    rows = []
    for label, record, member in zip(labels, records, [*family, None, None]):
        rows.append({"model": label, "method": name, "macs": record["macs"], "params": record["params"],
                     "held_out_top1": member["accuracy"] * 100 if member else
                     _pct(held_out.get(json.dumps(record["genome"], sort_keys=True))),
                     "test_top1": record["metrics"][0]["top1"], "genome": json.dumps(record["genome"])})
    front = [m for m in pareto["members"] if m["on_front"]]
    state = meta.get("state", {})
    return {"name": name, "rows": rows, "front": front, "steps": state.get("step"),
            "recipe": state.get("config", {}), "evaluated": pareto["evaluated"]}


def _pct(value):
    return None if value is None else value * 100


def _fmt(value, digits=2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(methods: list[dict]) -> str:
    base, other = methods[0], methods[1:]
    head = ["model"] + [f"{m['name']} {col}" for m in methods for col in ("MMACs", "held-out %", "test %")]
    head += [f"test Δ {m['name']}−{base['name']}" for m in other]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, row in enumerate(base["rows"]):
        cells = [row["model"]]
        for m in methods:
            r = m["rows"][i]
            cells += [_fmt(r["macs"] / 1e6), _fmt(r["held_out_top1"]), _fmt(r["test_top1"])]
        cells += [_fmt(m["rows"][i]["test_top1"] - row["test_top1"]) for m in other]
        lines.append("| " + " | ".join(cells) + " |")
    summary = []
    for m in other:
        diffs = [b["test_top1"] - a["test_top1"] for a, b in zip(base["rows"], m["rows"]) if a["model"].startswith("a")]
        wins = sum(d > 0 for d in diffs)
        summary.append(f"- family a0-a{len(diffs) - 1}, CIFAR-10 test: {m['name']} better than {base['name']} on {wins} of "
                       f"{len(diffs)} models, mean Δ {sum(diffs) / len(diffs):+.2f} points "
                       f"(range {min(diffs):+.2f} to {max(diffs):+.2f}).")
    recipe = [f"- {m['name']}: {m['steps']} steps, sampler {m['recipe'].get('sampler')} (k={m['recipe'].get('k')}), "
              f"{m['evaluated']} genomes evaluated by the search" for m in methods]
    title = " vs ".join(m["name"] for m in methods)
    return (f"# Sampler fronts on CIFAR-10: {title}\n\n"
            "Held-out: top-1 on the held-out split used by the search (BN recalibrated on training batches). "
            "Test: the extracted model, BN calibrated on the held-out split, on the 10,000 CIFAR-10 test images. "
            "Family members are picked per method at the same MACs budgets, so MACs differ slightly.\n\n"
            + "\n".join(lines) + "\n\n" + "\n".join(summary + recipe) + "\n")


def plot(methods: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=120)
    for m, color in zip(methods, ("tab:red", "tab:blue", "tab:green", "tab:orange")):
        front = sorted(m["front"], key=lambda c: c["macs"])
        axes[0].plot([c["macs"] / 1e6 for c in front], [c["accuracy"] * 100 for c in front], "o-", ms=3, color=color,
                     label=f"{m['name']} ({len(front)} on the front)")
        rows = sorted(m["rows"], key=lambda r: r["macs"])
        axes[1].plot([r["macs"] / 1e6 for r in rows], [r["test_top1"] for r in rows], "o-", color=color,
                     label=m["name"])
        for r in rows:
            axes[1].annotate(r["model"], (r["macs"] / 1e6, r["test_top1"]), fontsize=7, xytext=(3, -8),
                             textcoords="offset points")
    axes[0].set_title("held-out Pareto front (search)", fontsize=10)
    axes[1].set_title("extracted family + smallest/largest, CIFAR-10 test", fontsize=10)
    for ax in axes:
        ax.set_xlabel("MMACs")
        ax.set_ylabel("top-1 %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_png(fig, path)


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", nargs=3, action="append", required=True, metavar=("NAME", "SUPERNET", "SEARCH_DIR"),
                        help="a sampler's trained supernet and its anas-search output folder (the first is the baseline "
                             "the others are compared with)")
    parser.add_argument("--data", help="CIFAR-10 archive or folder (default: $ANAS_ZOO_DATA)")
    parser.add_argument("--out", default="benchmarks/results/sampling_comparison")
    args = parser.parse_args()
    methods = [evaluate_method(name, supernet, search, args.data) for name, supernet, search in args.method]
    out = Path(args.out)
    atomic_write(out / "comparison.md", markdown(methods))
    atomic_write(out / "comparison.csv", _csv([r for m in methods for r in m["rows"]]))
    atomic_write(out / "fronts.csv", _csv([{"method": m["name"], "macs": c["macs"], "params": c["params"],
                                            "held_out_top1": c["accuracy"] * 100, "genome": json.dumps(c["genome"])}
                                           for m in methods for c in m["front"]]))
    plot(methods, out / "comparison.png")
    print((out / "comparison.md").read_text())


if __name__ == "__main__":
    main()
