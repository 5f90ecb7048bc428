"""Scoring a supernet's sub-networks on the held-out split its training recorded (never the test split)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from anas_zoo.evaluate import as_fractions, evaluate_subnet
from anas_zoo.space import ArchConfig
from anas_zoo.train.data import calibration_loader, cifar10_loader


def held_out_scorer(supernet, split: dict, samples: int | None, *, calib_batches: int, batch_size: int = 128,
                    seed: int = 0, device: str = "cpu",
                    resolution: int | None = None) -> tuple[Callable[[ArchConfig], float], int]:
    """``(score, n)``: ``score(arch)`` is top-1 on ``n`` held-out images (``samples`` of ``split["val"]``,
    None: all) after BN recalibration on ``calib_batches`` training batches, as a fraction: the unit search
    states, family files and the records' ``search.held_out_top1`` hold.

    ``split`` is the one the supernet's training recorded, so no image the supernet trained on scores a
    candidate. Both sets are fixed for every candidate (same images, same order; the calibration images carry
    training's augmentation with fixed draws, see :func:`~anas_zoo.train.data.calibration_loader`), so scores compare.
    """
    val_images, val_labels = split["val"]
    pick = torch.randperm(len(val_labels), generator=torch.Generator().manual_seed(seed))[:samples]
    held_out = (val_images[pick], val_labels[pick])

    def score(arch: ArchConfig) -> float:
        calib = calibration_loader(split["train"], batch_size, seed=seed)
        evals = cifar10_loader(held_out, batch_size, train=False)
        metrics = evaluate_subnet(supernet, arch, calib, evals, calib_batches, device=device, resolution=resolution)
        return float(as_fractions(metrics)["top1"])

    return score, len(held_out[1])
