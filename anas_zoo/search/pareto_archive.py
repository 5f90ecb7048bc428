"""The Pareto archive of a search (best accuracy per cost bucket) and the files that report it.

A bucket's best is replaced only by a strictly better candidate, so the archive never gets worse as
a search goes on. The Pareto front is the subset no other candidate beats at equal or lower cost.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from anas_zoo.fileio import atomic_write, save_png
from anas_zoo.space import GENE_LISTS, ArchConfig


@dataclass(frozen=True)
class Candidate:
    """An evaluated genome: its constrained cost, MACs, params and held-out accuracy."""

    arch: ArchConfig
    cost: float
    macs: int
    params: int
    accuracy: float

    @property
    def key(self) -> str:
        """The canonical text of the genome: identical genomes share one key."""
        return self.arch.to_json()

    def to_dict(self) -> dict:
        return {"genome": self.arch.to_dict(), "cost": self.cost, "macs": self.macs, "params": self.params,
                "accuracy": self.accuracy}

    @classmethod
    def from_dict(cls, data: dict) -> Candidate:
        return cls(ArchConfig.from_dict(data["genome"]), float(data["cost"]), int(data["macs"]),
                   int(data["params"]), float(data["accuracy"]))


def rank_key(c: Candidate) -> tuple:
    """Sort key, best first: higher accuracy, then lower cost, then genome text (a total, deterministic order)."""
    return (-c.accuracy, c.cost, c.key)


def pareto_front(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Candidates that no other beats with a higher accuracy at equal or lower cost, by increasing cost."""
    front: list[Candidate] = []
    for c in sorted(candidates, key=lambda c: (c.cost, -c.accuracy, c.key)):
        if not front or c.accuracy > front[-1].accuracy:
            front.append(c)
    return front


class ParetoArchive:
    """Best candidate per cost bucket ``floor((cost - origin) / bucket_width)``."""

    def __init__(self, origin: float, bucket_width: float):
        if not (math.isfinite(bucket_width) and bucket_width > 0):
            raise ValueError(f"bucket width must be a positive number, got {bucket_width}")
        self.origin = float(origin)
        self.bucket_width = float(bucket_width)
        self.best: dict[int, Candidate] = {}

    def bucket(self, cost: float) -> int:
        return math.floor((cost - self.origin) / self.bucket_width)

    def offer(self, candidate: Candidate) -> bool:
        """Keep ``candidate`` if it beats its bucket's best (or the bucket is empty); True if kept."""
        b = self.bucket(candidate.cost)
        current = self.best.get(b)
        if current is not None and rank_key(current) <= rank_key(candidate):
            return False
        self.best[b] = candidate
        return True

    def members(self) -> list[Candidate]:
        """The best of every bucket, by increasing cost."""
        return [self.best[b] for b in sorted(self.best)]

    def front(self) -> list[Candidate]:
        return pareto_front(self.best.values())

    def to_dict(self) -> dict:
        return {"origin": self.origin, "bucket_width": self.bucket_width,
                "best": {str(b): c.to_dict() for b, c in sorted(self.best.items())}}

    @classmethod
    def from_dict(cls, data: dict) -> ParetoArchive:
        archive = cls(data["origin"], data["bucket_width"])
        archive.best = {int(b): Candidate.from_dict(c) for b, c in data["best"].items()}
        return archive


CSV_FIELDS = ("on_front", "cost", "macs", "params", "accuracy", "resolution", *GENE_LISTS)


def _csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _plot(path: Path, archive: ParetoArchive, evaluated: list[Candidate], cost_label: str, scale: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    ax.scatter([c.cost / scale for c in evaluated], [c.accuracy for c in evaluated], s=8, c="0.75",
               label=f"evaluated ({len(evaluated)})")
    members = archive.members()
    ax.scatter([c.cost / scale for c in members], [c.accuracy for c in members], s=18, c="tab:blue",
               label=f"archive: best per bucket ({len(members)})")
    front = archive.front()
    ax.plot([c.cost / scale for c in front], [c.accuracy for c in front], "o-", c="tab:red", ms=5,
            label=f"Pareto front ({len(front)})")
    ax.set_xlabel(cost_label)
    ax.set_ylabel("held-out accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def write_pareto(out_dir: str | Path, archive: ParetoArchive, evaluated: list[Candidate], cost_name: str,
                 cost_label: str, scale: float = 1.0, metadata: dict | None = None) -> dict[str, Path]:
    """Write ``pareto.json``, ``pareto.csv`` (the archive, front flagged) and ``pareto.png`` into ``out_dir``.

    ``cost_label``/``scale`` set the plot's x axis (e.g. "MMACs", 1e6). Returns the paths written.
    """
    out = Path(out_dir)
    on_front = {c.key for c in archive.front()}
    members = archive.members()
    document = {**(metadata or {}), "cost": cost_name, "evaluated": len(evaluated),
                "members": [c.to_dict() | {"on_front": c.key in on_front} for c in members]}
    rows = [{"on_front": c.key in on_front, "cost": c.cost, "macs": c.macs, "params": c.params, "accuracy": c.accuracy,
             "resolution": c.arch.resolution,
             **{g: "-".join(map(str, getattr(c.arch, g))) for g in GENE_LISTS}} for c in members]
    paths = {"json": out / "pareto.json", "csv": out / "pareto.csv", "png": out / "pareto.png"}
    atomic_write(paths["json"], json.dumps(document, indent=2) + "\n")
    atomic_write(paths["csv"], _csv_text(rows))
    _plot(paths["png"], archive, evaluated, cost_label, scale)
    return paths
