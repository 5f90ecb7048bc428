"""CIFAR-10 test top-1 of several weight sets alone and as an ensemble (their softmax outputs averaged).

    python benchmarks/ensemble_top1.py WEIGHTS WEIGHTS [...] [--data ARCHIVE] [--json]

WEIGHTS is a registered ``NAME.TAG`` or the ``.json`` record of a weight set written elsewhere (a fine-tuning run's
``--out`` folder). The ensemble costs the sum of its members' compute, so it is a yardstick, not a model to ship: it
says how much the runs disagree, i.e. how much any way of combining them (``anas-zoo soup``, distillation from the
ensemble) can still gain over the best of them.
"""

from __future__ import annotations

import argparse
import json

import torch

from anas_zoo.evaluate import accuracy
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.train.data import cifar10_loader, load_cifar10
from anas_zoo.zoo import load_weight_set


@torch.inference_mode()
def probabilities(weights: str, test: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Softmax outputs of the weight set ``weights`` on the test images, in their order."""
    model = load_weight_set(weights)
    config = resolve_data_config(model)
    loader = cifar10_loader(test, 500, train=False, shuffle=False, resolution=config.resolution, mean=config.mean,
                            std=config.std)
    return torch.cat([model(x).softmax(1) for x, _ in loader])


def ensemble(weights: list[str], test: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """Top-1 (%) of each weight set in ``weights`` and of their ensemble on ``test`` (uint8 images, labels)."""
    labels = test[1]
    probs = [probabilities(w, test) for w in weights]

    def top1(p: torch.Tensor) -> float:
        return round(accuracy(lambda scores: scores, [(p, labels)])["top1"], 2)

    return {"images": len(labels), "top1": {w: top1(p) for w, p in zip(weights, probs)},
            "ensemble_top1": top1(torch.stack(probs).mean(0))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="+", help="CIFAR-10 weight sets: NAME.TAG or the path of a weight set's .json record")
    parser.add_argument("--data", help="CIFAR-10 archive or folder (default: $ANAS_ZOO_DATA)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = ensemble(args.weights, load_cifar10(args.data)["test"])
    if args.json:
        print(json.dumps(report))
        return
    for weights, value in report["top1"].items():
        print(f"{value:6.2f} %  {weights}")
    print(f"{report['ensemble_top1']:6.2f} %  ensemble of {len(args.weights)} ({report['images']} test images)")


if __name__ == "__main__":
    main()
