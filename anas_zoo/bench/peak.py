"""How close a runtime gets to this CPU's physical limit: achieved GMAC/s of measured fp32 runs against the fp32
peak estimate (:func:`~anas_zoo.bench.environment.fp32_peak_estimate`) of the cores a run used.

Achieved GMAC/s = MACs × batch / p50 latency, read from a latency output folder's ``results.csv`` and
``environment.json`` (written by ``anas-bench latency``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from anas_zoo.bench.environment import fp32_peak_estimate


def read_results(folder: str | Path) -> tuple[list[dict], dict]:
    """(results.csv rows, environment record) of a latency output folder."""
    folder = Path(folder)
    with open(folder / "results.csv") as f:
        rows = list(csv.DictReader(f))
    return rows, json.loads((folder / "environment.json").read_text())


def achieved(rows: list[dict], env: dict, backend: str = "ort", precision: str = "fp32") -> list[dict]:
    """Achieved GMAC/s and % of the peak for every successful (backend, precision) row."""
    out = []
    for row in rows:
        if row["backend"] != backend or row["precision"] != precision or row["status"] != "ok":
            continue
        threads, batch, p50 = int(row["threads"]), int(row["batch"]), float(row["p50_ms"])
        gmacs = int(row["macs"]) * batch / (p50 / 1000.0) / 1e9
        peak = fp32_peak_estimate(env, cores=threads)["peak_gmacs_per_s"]
        out.append({"model": row["model"], "batch": batch, "threads": threads, "macs": int(row["macs"]),
                    "p50_ms": p50, "cv": float(row["cv"]), "achieved_gmacs_per_s": gmacs, "peak_gmacs_per_s": peak,
                    "percent_of_peak": 100.0 * gmacs / peak if peak else None})
    return out
