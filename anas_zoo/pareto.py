"""Pareto fronts of (cost, accuracy) points and their plots: the one implementation behind the latency tables
(:mod:`anas_zoo.bench.tables`) and the search archive (:mod:`anas_zoo.search.pareto_archive`).

A point dominates another when it costs no more *and* is at least as accurate, one of the two strictly;
the front is the set of points no other dominates. Lower cost is better (latency, MACs), higher accuracy
is better.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from anas_zoo.fileio import save_png

T = TypeVar("T")


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether the (cost, accuracy) point ``a`` dominates ``b``."""
    return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])


def pareto_front(points: Sequence[tuple[float, float | None]]) -> list[bool]:
    """For (cost, accuracy) points: True where no other point dominates (points without accuracy: False).

    Equal points do not dominate each other, so both stay on the front.
    """
    scored = [(cost, acc) for cost, acc in points if acc is not None]
    return [acc is not None and not any(dominates(other, (cost, acc)) for other in scored) for cost, acc in points]


def front_of(items: Iterable[T], cost: Callable[[T], float], accuracy: Callable[[T], float]) -> list[T]:
    """The items of ``items`` on the front, by increasing cost (equal costs keep their given order)."""
    items = list(items)
    flags = pareto_front([(cost(item), accuracy(item)) for item in items])
    return sorted((item for item, flag in zip(items, flags) if flag), key=cost)


@dataclass
class Series:
    """Points drawn in one style: ``front`` (a line through them, by cost), ``points`` or ``background``."""

    label: str
    points: list[tuple[float, float]]
    style: str = "points"


@dataclass
class Panel:
    """One plot: its series, axis labels, title, and names written beside points (x, y, text)."""

    series: list[Series]
    xlabel: str
    ylabel: str
    title: str = ""
    names: list[tuple[float, float, str]] = field(default_factory=list)


_STYLES = {
    "background": {"s": 8, "color": "0.7"},
    "points": {"s": 18, "color": "tab:blue"},
}


def plot_panels(panels: Sequence[Panel], path: str | Path, title: str = "", empty: str = "nothing to plot") -> Path:
    """Draw ``panels`` side by side (two per row) into the PNG ``path``; ``empty`` is written when there are none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(max(1, len(panels)), 2)
    rows = (max(1, len(panels)) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.5 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    if not panels:
        axes[0, 0].text(0.5, 0.5, empty, ha="center", va="center")
    for ax, panel in zip(axes.flat, panels):
        for series in panel.series:
            xs, ys = [p[0] for p in series.points], [p[1] for p in series.points]
            label = f"{series.label} ({len(series.points)})"
            if series.style == "front":
                order = sorted(range(len(xs)), key=xs.__getitem__)
                ax.plot([xs[i] for i in order], [ys[i] for i in order], "o-", color="tab:red", ms=5, label=label,
                        zorder=3)
            else:
                ax.scatter(xs, ys, label=label, **_STYLES[series.style])
        for x, y, text in panel.names:
            ax.annotate(text, (x, y), fontsize=7, xytext=(4, -3), textcoords="offset points")
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        ax.set_title(panel.title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path, dpi=120)
