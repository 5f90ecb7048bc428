"""Evaluation of sub-networks (BN calibration + accuracy) and the sandwich-rule training loop."""

from __future__ import annotations

from typing import Iterable, Iterator

import torch

from anas_zoo.space import ArchConfig
from anas_zoo.supernet import SuperNet
from anas_zoo.train.calibrate import calibrate_bn
from anas_zoo.train.data import resize_to


def _resized(batches: Iterable, resolution: int, device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Move (inputs, labels) batches to ``device`` and resize inputs to a sub-network's resolution."""
    for x, y in batches:
        yield resize_to(x.to(device, non_blocking=True), resolution), y.to(device, non_blocking=True)


@torch.no_grad()
def accuracy(model: torch.nn.Module, batches: Iterable, resolution: int, device=None) -> dict:
    """top-1 / top-5 (fractions in [0, 1]) and the sample count of ``model`` (eval mode) on ``batches``."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    top1 = top5 = samples = 0
    try:
        for x, y in _resized(batches, resolution, device):
            logits = model(x)
            best = logits.topk(min(5, logits.shape[1]), dim=1).indices
            hits = best == y[:, None]
            top1 += int(hits[:, 0].sum())
            top5 += int(hits.any(dim=1).sum())
            samples += len(y)
    finally:
        model.train(was_training)
    if samples == 0:
        raise ValueError("evaluation got no batches: the data iterable is empty")
    return {"top1": top1 / samples, "top5": top5 / samples, "samples": samples}


def evaluate_subnet(
    supernet: SuperNet,
    arch: ArchConfig,
    calib_batches: Iterable,
    eval_batches: Iterable,
    num_calib_batches: int,
    device=None,
) -> dict:
    """Activate ``arch``, recalibrate BN on ``num_calib_batches`` of ``calib_batches``, measure accuracy.

    Batches are (normalised inputs, labels) at any size; inputs are resized to ``arch.resolution``.
    Returns ``{'top1', 'top5', 'samples'}`` (fractions). The supernet's BN running statistics are left
    holding ``arch``'s calibrated values and its train/eval mode is restored.
    """
    device = device or next(supernet.parameters()).device
    supernet.set_active(arch)
    calibrate_bn(supernet, _resized(calib_batches, arch.resolution, device), num_calib_batches)
    return accuracy(supernet, eval_batches, arch.resolution, device)
