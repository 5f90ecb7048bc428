"""PNG plot of a Pareto table: top-1 accuracy vs p50 latency, one panel per setting, fronts highlighted."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path


def plot_pareto(rows: Sequence[dict], path: str | Path) -> Path:
    """Draw one panel per (device, runtime, precision, threads, batch); rows without accuracy are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from anas_zoo.bench.pareto import group_key
    from anas_zoo.fileio import save_png

    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        if row["accuracy"] is not None:
            groups[group_key(row)].append(row)
    panels = max(1, len(groups))
    cols = min(panels, 2)
    nrows = (panels + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(6.5 * cols, 4.5 * nrows), squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.axis("off")
    if not groups:
        axes[0, 0].text(0.5, 0.5, "no accuracy figures to plot", ha="center", va="center")
    for ax, members in zip(axes.flat, groups.values()):
        first = members[0]
        front = sorted((r for r in members if r["on_front"]), key=lambda r: r["p50_ms"])
        others = [r for r in members if not r["on_front"]]
        ax.scatter([r["p50_ms"] for r in others], [r["accuracy"] for r in others], color="0.6", label="dominated")
        ax.plot([r["p50_ms"] for r in front], [r["accuracy"] for r in front], "o-", color="tab:red",
                label="Pareto front", zorder=3)
        for r in members:
            marker = "*" if r["noisy"] else ""
            ax.annotate(f"{r['model']}{marker}", (r["p50_ms"], r["accuracy"]), fontsize=7,
                        xytext=(4, -3), textcoords="offset points")
        sources = sorted({r["accuracy_source"] or "?" for r in members})
        ax.set_xlabel(f"p50 latency (ms), batch {first['batch']}")
        ax.set_ylabel(f"top-1 % ({'/'.join(sources)})")
        ax.set_title(f"{first['device_name'][:32]} · {first['backend']} {first['precision']} · "
                     f"{first['threads']} thr · {first['accuracy_dataset']}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("accuracy vs measured latency (* = noisy run, CV > 10 %)", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path, dpi=120)
