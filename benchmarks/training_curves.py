"""Compare training runs from their ``metrics.jsonl``: held-out top-1 of the largest and smallest subnets per evaluation.

    python benchmarks/training_curves.py old=benchmarks/results/cifar10_training/train-bestup-7ep.metrics.jsonl \
        new=runs/v2/train/metrics.jsonl --out benchmarks/results/cifar10_training/v2

Writes ``curves.md`` (one row per evaluated epoch, a column pair per run) and ``curves.png`` (top-1 of both
subnets against epochs, and the largest subnet's training loss against steps), and prints the table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from anas_zoo.fileio import atomic_write, save_png
from anas_zoo.hub_cards import markdown_table


def read_run(path: str | Path) -> dict:
    """A run's evaluations (epoch -> min/max top-1 in %) and its logged (step, loss_max) pairs."""
    evals, losses = {}, []
    for line in Path(path).read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "eval":
            evals[round(event["epoch"], 3)] = (100 * event["max_top1"], 100 * event["min_top1"])
        elif "loss_max" in event:
            losses.append((event["step"], event["loss_max"]))
    return {"evals": evals, "losses": losses}


def curves_table(runs: dict[str, dict]) -> str:
    """Markdown: one row per evaluated epoch of any run, largest and smallest top-1 of each run ("–": not evaluated)."""
    epochs = sorted({e for run in runs.values() for e in run["evals"]})
    header = ["epoch"] + [f"{name} {which}" for name in runs for which in ("largest", "smallest")]
    rows = []
    for epoch in epochs:
        row = [f"{epoch:g}"]
        for run in runs.values():
            pair = run["evals"].get(epoch)
            row += [f"{v:.2f}" for v in pair] if pair else ["–", "–"]
        rows.append(row)
    return markdown_table(header, rows)


def _smooth(values: list[float], window: int = 10) -> list[float]:
    return [sum(values[max(0, i - window + 1):i + 1]) / (i + 1 - max(0, i - window + 1)) for i in range(len(values))]


def plot_curves(runs: dict[str, dict], path: str | Path) -> Path:
    """PNG: held-out top-1 against epochs (solid: largest, dashed: smallest) and the largest's smoothed loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc, loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    for (name, run), color in zip(runs.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        epochs = sorted(run["evals"])
        acc.plot(epochs, [run["evals"][e][0] for e in epochs], "o-", color=color, label=f"{name} largest")
        acc.plot(epochs, [run["evals"][e][1] for e in epochs], "s--", color=color, label=f"{name} smallest")
        if run["losses"]:
            steps, values = zip(*run["losses"])
            loss.plot(steps, _smooth(list(values)), color=color, label=name)
    acc.set(xlabel="epoch", ylabel="held-out top-1 %", title="held-out top-1 (BN recalibrated)")
    loss.set(xlabel="step", ylabel="loss", title="largest subnet's training loss (10-log moving mean)")
    for ax in (acc, loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=METRICS_JSONL")
    parser.add_argument("--out", type=Path, required=True, help="folder for curves.md and curves.png")
    args = parser.parse_args()
    runs = {}
    for spec in args.runs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not Path(path).is_file():
            parser.exit(1, f"training_curves: {spec!r} is not NAME=PATH of an existing metrics.jsonl\n")
        runs[name] = read_run(path)
    table = curves_table(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "curves.md", table + "\n")
    plot_curves(runs, args.out / "curves.png")
    print(table)


if __name__ == "__main__":
    main()
