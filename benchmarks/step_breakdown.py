"""Where a training step of a recipe spends its time: the subnets' forward + backward, candidate ranking,
candidate drawing, and the rest (optimizer, clipping, bookkeeping).

    python benchmarks/step_breakdown.py --config configs/cifar10.yaml [key=value ...] [--steps 8] [--json]

Runs real steps of the recipe on its real data (``largest_only_epochs`` is set to 0 so every step is a
sandwich step) after three untimed ones, and prints seconds per step for each part. Compare recipe keys
such as ``channels_last=false`` or ``rank_subbatch=16`` by running it twice.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

from anas_zoo.cli.train import load_config
from anas_zoo.train.trainer import Trainer

#: Trainer parts timed on their own; "rest" is the step minus their sum.
PARTS = {"forward_backward": "_forward_backward", "ranking": "_score"}


def breakdown(trainer: Trainer, steps: int, warmup: int = 3) -> dict:
    """Seconds per step of each part over ``steps`` timed sandwich steps of ``trainer``."""
    seconds: dict[str, float] = defaultdict(float)

    def timed(label, fn):
        def call(*args, **kwargs):
            tic = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[label] += time.perf_counter() - tic
        return call

    for label, name in PARTS.items():
        setattr(trainer, name, timed(label, getattr(trainer, name)))
    trainer.sampler.candidates = timed("drawing", trainer.sampler.candidates)
    batches = trainer.train_loader.forever()
    for _ in range(warmup):
        trainer.train_step(*next(batches))
    seconds.clear()
    tic = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(*next(batches))
    total = time.perf_counter() - tic
    result = {label: seconds[label] / steps for label in (*PARTS, "drawing")}
    result["rest"] = total / steps - sum(result.values())
    result = {k: round(v, 4) for k, v in result.items()}
    return {"seconds_per_step": round(total / steps, 4), "parts": result,
            "images_per_second": round(trainer.config.batch_size * steps / total, 1), "steps": steps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="YAML recipe, e.g. configs/cifar10.yaml")
    parser.add_argument("--steps", type=int, default=8, help="timed steps (default 8)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    config = load_config(args.config, [*args.overrides, "largest_only_epochs=0", "resume=null", "progress=false",
                                       "out_dir=runs/step_breakdown"])
    result = {"config": args.config, "overrides": args.overrides, **breakdown(Trainer(config), args.steps)}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.config} {' '.join(args.overrides)}: {result['seconds_per_step']:.3f} s a step "
          f"({result['images_per_second']} img/s) over {args.steps} steps")
    for part, value in result["parts"].items():
        print(f"  {part:<17} {value:.3f} s  ({100 * value / result['seconds_per_step']:.0f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
