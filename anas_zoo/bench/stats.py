"""Summary statistics of latency samples, and the rank/error metrics used to validate predictors.

Every sample is kept by the caller; this module only aggregates. Percentiles use linear
interpolation between order statistics (numpy's default), so they are reproducible from the raw list.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: A run whose coefficient of variation exceeds this is flagged as noisy.
NOISY_CV = 0.10


def summarize(samples_ms: Sequence[float], batch: int = 1) -> dict:
    """mean/p50/p90/p99/std/CV/min/max of per-call latencies in ms, images/s at the median, and a noise flag."""
    if len(samples_ms) == 0:
        raise ValueError("no latency samples to summarize")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    x = np.asarray(samples_ms, dtype=np.float64)
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    p50, p90, p99 = (float(v) for v in np.percentile(x, [50, 90, 99]))
    cv = std / mean if mean > 0 else 0.0
    return {
        "n": len(x),
        "mean_ms": mean,
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "std_ms": std,
        "min_ms": float(x.min()),
        "max_ms": float(x.max()),
        "cv": cv,
        "images_per_s": batch * 1000.0 / p50 if p50 > 0 else float("inf"),
        "noisy": cv > NOISY_CV,
    }


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b rank correlation of two equally long sequences (ties handled)."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two sequences of equal length >= 2, got {len(a)} and {len(b)}")
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    upper = np.triu_indices(len(x), k=1)
    dx, dy = dx[upper], dy[upper]
    concordance = float((dx * dy).sum())
    denom = float(np.sqrt(np.count_nonzero(dx) * np.count_nonzero(dy)))
    return concordance / denom if denom > 0 else 0.0


def mape(actual: Sequence[float], predicted: Sequence[float]) -> float:
    """Mean absolute percentage error of ``predicted`` against ``actual``, in percent."""
    t, p = np.asarray(actual, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    if t.shape != p.shape or len(t) == 0:
        raise ValueError(f"need two non-empty sequences of equal length, got {t.shape} and {p.shape}")
    if np.any(t <= 0):
        raise ValueError("actual values must be positive for a percentage error")
    return float(np.mean(np.abs(p - t) / t) * 100.0)
