"""The optimiser of every training run (supernet and fine-tuning): SGD with weight decay on conv/linear weights
only, and the learning-rate schedule: linear warm-up, then a per-step cosine to 0."""

from __future__ import annotations

import math

import torch


def sgd(model: torch.nn.Module, weight_decay: float, momentum: float = 0.9, nesterov: bool = True) -> torch.optim.SGD:
    """SGD over ``model``'s parameters, weight decay on conv/linear weights only (none on BN parameters and biases);
    the lr is set every step from :func:`warmup_cosine`."""
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.dim() > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=0.0, momentum=momentum, nesterov=nesterov)


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, base_lr: float) -> float:
    """The lr of step ``step`` (0-based): ``base_lr * (step + 1) / warmup_steps`` during the warm-up, then half a
    cosine from ``base_lr`` down to 0 at ``total_steps``."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * base_lr * (1 + math.cos(math.pi * min(1.0, progress)))
