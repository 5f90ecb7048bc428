"""How far a CIFAR-10 weight set fits its training images beyond the held-out ones: top-1 on the training part
(un-augmented), on the held-out part and on the test split, the same images for every weight set.

    python benchmarks/fit_gap.py attentivenas_cifar10_a6.cifar10_ft [NAME.TAG | RECORD.json ...] [--images 5000] [--data ARCHIVE] [--json]

A weight set is a registered ``NAME.TAG`` or the ``.json`` record of one written elsewhere (say a fine-tuning run's
``--out`` folder), so that a candidate can be diagnosed before it replaces the bundled weights.

A large train - held-out gap says regularisation (augmentation, weight decay) is the lever; a small one says the
model needs capacity or more training. The training part and the held-out part are the 45,000 / 5,000 split every
recipe trains and calibrates on (``anas_zoo.train.data.cifar10_split``).
"""

from __future__ import annotations

import argparse
import json

import torch

from anas_zoo.cli.common import positive_int
from anas_zoo.evaluate import evaluate
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.store import WeightsError
from anas_zoo.train.data import cifar10_loader, cifar10_split, load_cifar10
from anas_zoo.zoo import UnknownModelError, load_weight_set


def spread(split: tuple[torch.Tensor, torch.Tensor], count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` images spread evenly over a split (all of it when it is smaller)."""
    images, labels = split
    index = torch.linspace(0, len(labels) - 1, min(count, len(labels))).round().long()
    return images[index], labels[index]


def measure(weights: str, splits: dict) -> dict:
    """Top-1 (%) of the weight set ``weights`` (NAME.TAG or a record's path) on each of ``splits`` (name ->
    (uint8 images, labels)), and the training part's lead over the held-out part."""
    model = load_weight_set(weights)
    config = resolve_data_config(model)
    top1 = {name: evaluate(model, cifar10_loader(split, 250, train=False, resolution=config.resolution,
                                                 mean=config.mean, std=config.std))["top1"]
            for name, split in splits.items()}
    return {"weights": weights, "images": {name: len(split[1]) for name, split in splits.items()},
            **{f"{name}_top1": round(value, 2) for name, value in top1.items()},
            "train_minus_val": round(top1["train"] - top1["val"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="+", help="CIFAR-10 weight sets: NAME.TAG or the path of a weight set's .json record")
    parser.add_argument("--images", type=positive_int, default=5000, help="images per split (default 5000)")
    parser.add_argument("--data", help="CIFAR-10 archive or folder (default: $ANAS_ZOO_DATA)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    splits = {name: spread(split, args.images) for name, split in cifar10_split(load_cifar10(args.data)).items()}
    try:
        rows = [measure(weights, splits) for weights in args.weights]
    except (UnknownModelError, WeightsError) as e:
        parser.error(str(e))
    if args.json:
        print(json.dumps(rows))
        return
    width = max(len("weights"), *(len(r["weights"]) for r in rows))
    print(f"{'weights':{width}s} {'train':>7s} {'held-out':>9s} {'test':>7s} {'gap':>6s}  (top-1 %, {args.images} images each)")
    for r in rows:
        print(f"{r['weights']:{width}s} {r['train_top1']:7.2f} {r['val_top1']:9.2f} {r['test_top1']:7.2f} "
              f"{r['train_minus_val']:6.2f}")


if __name__ == "__main__":
    main()
