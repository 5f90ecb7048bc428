"""The learning-rate schedule of every training run: linear warm-up, then a per-step cosine to 0."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, base_lr: float) -> float:
    """The lr of step ``step`` (0-based): ``base_lr * (step + 1) / warmup_steps`` during the warm-up, then half a
    cosine from ``base_lr`` down to 0 at ``total_steps``."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * base_lr * (1 + math.cos(math.pi * min(1.0, progress)))
