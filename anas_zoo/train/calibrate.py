"""BatchNorm recalibration: every evaluation of a sub-network goes through here.

Supernets trained with BN momentum 0 (as in the paper) carry meaningless running statistics, and a
sub-network's statistics differ from the largest one's anyway: reset them and recompute them as a
cumulative average over N forward-only training batches.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def _inputs(batch) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


@torch.no_grad()
def calibrate_bn(
    model: nn.Module, batches: Iterable, num_batches: int, device: torch.device | str | None = None
) -> int:
    """Reset every BN's running stats and re-estimate them (cumulative average) on ``num_batches`` batches.

    ``batches`` yields input tensors or (inputs, labels) pairs already preprocessed for the model; each
    batch must mix classes (shuffle a class-sorted split), or the per-batch variances are biased.
    Works on a :class:`~anas_zoo.supernet.SuperNet` (its active sub-network) and on a static model.
    Restores the model's mode and BN momentum afterwards; returns the number of batches used.
    """
    if num_batches < 1:
        raise ValueError(f"num_batches must be >= 1, got {num_batches}")
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    was_training = model.training
    regularize = getattr(model, "regularize", None)
    if regularize is not None:
        model.regularize = False
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    used = 0
    try:
        for batch in batches:
            if used == num_batches:
                break
            x = _inputs(batch)
            model(x.to(device) if device is not None else x)
            used += 1
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
        model.train(was_training)
        if regularize is not None:
            model.regularize = regularize
    if used == 0:
        raise ValueError("calibration got no batches: the data iterable is empty")
    return used
