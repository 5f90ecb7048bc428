"""Helpers shared by the exporter tests: non-trivial weights and a small folder of real CIFAR-10 images."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
import torch
from torch import nn

from anas_zoo.train.data import CIFAR10_CLASSES, cifar10_source


def spread_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give BN non-trivial running stats/affine terms and the classifier a wider spread.

    Freshly initialised models have identity BNs and near-zero logits, so an export check on them
    could pass while folding or exporting were wrong; with these weights logits are O(1).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
        model.classifier.weight.normal_(0, 0.05, generator=g)
    return model.eval()


def cifar_folder(root: Path, classes: tuple[str, ...] = ("airplane", "automobile"), per_class: int = 8) -> Path:
    """``root/<class>/*.jpg`` with the first ``per_class`` training JPEGs of each class from the shared archive."""
    archive = cifar10_source()
    if not archive.exists():
        pytest.skip(f"the CIFAR-10 archive is not at {archive} (ANAS_ZOO_DATA), so there are no real images to calibrate on")
    wanted = {c: 0 for c in classes}
    with tarfile.open(archive, "r:xz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) == 3 and parts[0] == "train" and wanted.get(parts[1], per_class) < per_class:
                target = root / parts[1] / parts[2]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
                wanted[parts[1]] += 1
            if all(n >= per_class for n in wanted.values()):
                break
    return root


def cifar_split_folder(root: Path, train_per_class: int, test_per_class: int) -> Path:
    """``root/{train,test}/<class>/*.jpg``: the first JPEGs of every class of each split of the shared archive,
    a CIFAR-10 source for calibration (train) and top-1 (test) that decodes in seconds."""
    archive = cifar10_source()
    if not archive.exists():
        pytest.skip(f"the CIFAR-10 archive is not at {archive} (ANAS_ZOO_DATA), so there are no real images")
    wanted = {"train": train_per_class, "test": test_per_class}
    taken: dict[tuple[str, str], int] = {}
    with tarfile.open(archive, "r:xz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) != 3 or parts[0] not in wanted:
                continue
            key = (parts[0], parts[1])
            if taken.get(key, 0) < wanted[parts[0]]:
                target = root / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
                taken[key] = taken.get(key, 0) + 1
                if sum(taken.values()) == len(CIFAR10_CLASSES) * sum(wanted.values()):
                    break
    return root
