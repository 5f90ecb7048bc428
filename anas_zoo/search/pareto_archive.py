"""The Pareto archive of a search (best accuracy per cost bucket) and the files that report it.

A bucket's best is replaced only by a strictly better candidate, so the archive never gets worse as
a search goes on. The Pareto front is the subset no other member dominates (:mod:`anas_zoo.pareto`, like the
latency tables), drawn by the same plotter.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from anas_zoo.fileio import atomic_write
from anas_zoo.pareto import Panel, Series, front_of, plot_panels
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
        """The members no other member dominates (lower or equal cost, higher or equal accuracy), by cost."""
        return front_of(self.members(), cost=lambda c: c.cost, accuracy=lambda c: c.accuracy)

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


def _panel(archive: ParetoArchive, evaluated: list[Candidate], cost_label: str, scale: float) -> Panel:
    """Every evaluated genome, the archive's best per bucket and its front, cost scaled by ``1 / scale``."""
    def points(candidates: Iterable[Candidate]) -> list[tuple[float, float]]:
        return [(c.cost / scale, c.accuracy) for c in candidates]

    return Panel([Series("evaluated", points(evaluated), "background"),
                  Series("archive: best per bucket", points(archive.members()), "points"),
                  Series("Pareto front", points(archive.front()), "front")], cost_label, "held-out accuracy")


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
    plot_panels([_panel(archive, evaluated, cost_label, scale)], paths["png"])
    return paths
