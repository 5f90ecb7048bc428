"""The largest subnet trained alone: what the sandwich rule's weight sharing costs it at a recipe's budget.

    python benchmarks/largest_alone.py --config configs/cifar10.yaml out_dir=runs/largest-alone [key=value ...]

Same data, optimizer, schedule, checkpoints and held-out validation as ``anas-train`` with that recipe,
but each step trains only the space's largest subnet on the labels (``largest_only_epochs`` covers the
whole run: no sampled or smallest subnet, no distillation). Prints the run summary as JSON; compare its
``max`` top-1 with the sandwich run's.
"""

from __future__ import annotations

import argparse
import dataclasses

from anas_zoo.cli.common import print_json
from anas_zoo.cli.train import load_config
from anas_zoo.train.config import TrainConfig
from anas_zoo.train.trainer import Trainer


def largest_alone(config: TrainConfig, data: dict | None = None) -> Trainer:
    """A :class:`Trainer` for ``config`` (and ``data``, default the recipe's) whose every step holds the largest
    subnet only."""
    return Trainer(dataclasses.replace(config, largest_only_epochs=config.epochs), data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML recipe, e.g. configs/cifar10.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    print_json(largest_alone(load_config(args.config, args.overrides)).fit())


if __name__ == "__main__":
    main()
