"""Top-1 / top-5 accuracy of a model, a runtime or a supernet's sub-network (after BN recalibration), and the
evaluation data a model's data config asks for.

A config with a ``crop`` (the ImageNet models) is evaluated on an ImageNet-style folder through its
transform (resize 256 → centre crop 224 → resize to the model's resolution); any other (the CIFAR-10
family) on the CIFAR-10 archive or folder, normalised with the config's mean/std and resized to its
resolution.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from anas_zoo.data_config import DataConfig, create_transform
from anas_zoo.space import ArchConfig
from anas_zoo.supernet import SuperNet
from anas_zoo.train import data as datasets
from anas_zoo.train.calibrate import calibrate_bn


@torch.inference_mode()
def accuracy(predict: Callable[[torch.Tensor], torch.Tensor], batches: Iterable, limit: int | None = None,
             progress: bool = False) -> dict:
    """``{'top1', 'top5', 'samples'}``: top-1 and top-min(5, classes) accuracy, in %, of ``predict`` (a float
    NCHW batch -> logits: a model or any runtime) over (inputs, labels) batches; ``limit`` stops after that many
    samples. Every accuracy the package reports is this one, in this unit."""
    correct1 = correct5 = samples = 0
    with tqdm(total=limit, desc="eval", unit="img", disable=not progress) as bar:
        for inputs, labels in batches:
            if limit is not None:
                inputs, labels = inputs[: limit - samples], labels[: limit - samples]
            logits = predict(inputs)
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices
            hits = top == labels[:, None]
            correct1 += int(hits[:, 0].sum())
            correct5 += int(hits.any(dim=1).sum())
            samples += len(labels)
            bar.update(len(labels))
            if limit is not None and samples >= limit:
                break
    if samples == 0:
        raise ValueError("evaluation got no samples: the data is empty")
    return {"top1": 100.0 * correct1 / samples, "top5": 100.0 * correct5 / samples, "samples": samples}


def evaluate(
    model: nn.Module,
    batches: Iterable,
    device: torch.device | str | None = None,
    limit: int | None = None,
    progress: bool = False,
) -> dict:
    """:func:`accuracy` of ``model``, put in eval mode (and, with ``device``, moved there with its batches)."""
    model.eval()
    if device is not None:
        model.to(device)
        batches = ((inputs.to(device), labels.to(device)) for inputs, labels in batches)
    return accuracy(model, batches, limit, progress)


def as_fractions(result: dict) -> dict:
    """An :func:`accuracy` result with top-1 and top-5 as fractions in [0, 1]: the unit that training logs and
    summaries and search scores (and so the ``search.held_out_top1`` of weight records) have always been stored in."""
    return {**result, "top1": result["top1"] / 100, "top5": result["top5"] / 100}


def _resized(batches: Iterable, resolution: int, device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Move (inputs, labels) batches to ``device`` and resize inputs to a sub-network's resolution."""
    for x, y in batches:
        yield datasets.resize_to(x.to(device, non_blocking=True), resolution), y.to(device, non_blocking=True)


def evaluate_subnet(
    supernet: SuperNet,
    arch: ArchConfig,
    calib_batches: Iterable,
    eval_batches: Iterable,
    num_calib_batches: int,
    device=None,
    resolution: int | None = None,
) -> dict:
    """Activate ``arch``, recalibrate BN on ``num_calib_batches`` of ``calib_batches``, measure accuracy.

    Batches are (normalised inputs, labels) at any size; inputs are resized to ``resolution``
    (default ``arch.resolution``).
    Returns :func:`accuracy`'s ``{'top1', 'top5', 'samples'}`` (%). The supernet's BN running statistics are
    left holding ``arch``'s calibrated values and its train/eval mode is restored.
    """
    device = device or next(supernet.parameters()).device
    resolution = resolution or arch.resolution
    supernet.set_active(arch)
    calibrate_bn(supernet, _resized(calib_batches, resolution, device), num_calib_batches)
    was_training = supernet.training
    try:
        return evaluate(supernet, _resized(eval_batches, resolution, device))
    finally:
        supernet.train(was_training)


def uses_image_folder(config: DataConfig) -> bool:
    """Whether a data config is the ImageNet folder pipeline (resize → centre crop)."""
    return config.crop is not None


def eval_batches(
    config: DataConfig,
    data: str | Path,
    split: str | None = None,
    batch_size: int = 50,
    limit: int | None = None,
    num_workers: int = 2,
) -> tuple[Iterable, str]:
    """(batches, split used) on ``data`` for a model with data config ``config``
    (:func:`~anas_zoo.pretrained_cfg.resolve_data_config`).

    ImageNet-style: ``data`` is the class-folder root, or its parent holding ``<split>/`` (default
    'val'). CIFAR-10: the archive or folder given to :func:`~anas_zoo.train.data.load_cifar10`, split
    'test' (default) or 'val' (the held-out part of train, as the search uses it).
    """
    if uses_image_folder(config):
        split = split or "val"
        root = Path(data).expanduser()
        if (root / split).is_dir():
            root = root / split
        loader = datasets.image_folder_loader(
            root, config.resolution, train=False, batch_size=batch_size, num_workers=num_workers, limit=limit,
            shuffle=False, transform=create_transform(config),
        )
        return loader, split
    split = split or "test"
    splits = datasets.cifar10_split(datasets.load_cifar10(data)) if split == "val" else datasets.load_cifar10(data)
    if split not in splits:
        raise ValueError(f"unknown split '{split}' for CIFAR-10; allowed: {', '.join(sorted(splits))}")
    images, labels = splits[split]
    if limit is not None:
        spread = torch.arange(0, len(labels), max(1, len(labels) // limit))[:limit]
        images, labels = images[spread], labels[spread]
    loader = datasets.cifar10_loader(
        (images, labels), batch_size, train=False, resolution=config.resolution, mean=config.mean, std=config.std,
    )
    return loader, split
