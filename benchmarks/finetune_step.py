"""Seconds per ``anas-zoo finetune`` step of a bundled member: its depthwise layers plain, and routed through the
fast weight gradient (``anas_zoo.train.runtime.use_fast_depthwise_gradients``, what the fine-tuner does).

    python benchmarks/finetune_step.py [--model attentivenas_cifar10_a6.cifar10]
                                       [--teacher attentivenas_cifar10_a6.cifar10_ft] [--batch 128]
                                       [--steps 4] [--rounds 2] [--threads 2] [--json]

Both ways run in one process on the same batches, in alternating rounds after an untimed step each; synthetic
images (the input pipeline is not part of the step). Prints each way's median seconds per step and the ratio.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time

import torch

from anas_zoo.cli.common import positive_int
from anas_zoo.train.finetune import FinetuneConfig, FinetuneError, Finetuner
from anas_zoo.train.runtime import use_fast_depthwise_gradients
from anas_zoo.zoo import UnknownModelError


def route(model: torch.nn.Module, fast: bool) -> None:
    """Depthwise layers through the fast weight gradient (``fast``) or their plain ``nn.Conv2d.forward``."""
    for module in model.modules():
        module.__dict__.pop("forward", None)
    if fast:
        use_fast_depthwise_gradients(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="attentivenas_cifar10_a6.cifar10", help="starting weights, NAME.TAG")
    parser.add_argument("--teacher", default="attentivenas_cifar10_a6.cifar10_ft", help="teacher, NAME.TAG")
    parser.add_argument("--batch", type=positive_int, default=128)
    parser.add_argument("--steps", type=positive_int, default=4, help="timed steps per round and way")
    parser.add_argument("--rounds", type=positive_int, default=2)
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    n = args.batch * (args.steps + 1)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g)
    splits = {"train": (images, labels), "val": (images, labels)}
    with tempfile.TemporaryDirectory() as tmp:
        config = FinetuneConfig(model=args.model, teacher=args.teacher, batch_size=args.batch, out=tmp,
                                state_dir=f"{tmp}/state", threads=args.threads, progress=False)
        try:
            tuner = Finetuner(config, splits)
        except (UnknownModelError, FinetuneError) as e:
            raise SystemExit(f"finetune_step.py: {e}") from None
        batches = list(tuner.loader)[: args.steps + 1]
        seconds = {"plain": [], "fast": []}
        for _ in range(args.rounds):
            for way in seconds:
                route(tuner.model, way == "fast")
                tuner.train_step(*batches[0])
                for x, y in batches[1:]:
                    tic = time.perf_counter()
                    tuner.train_step(x, y)
                    seconds[way].append(time.perf_counter() - tic)
    median = {way: round(statistics.median(s), 3) for way, s in seconds.items()}
    report = {"model": args.model, "teacher": args.teacher, "batch": args.batch, "threads": args.threads,
              "seconds_per_step": median, "speedup": round(median["plain"] / median["fast"], 2),
              "torch": torch.__version__, "machine": platform.processor() or platform.machine()}
    if args.json:
        print(json.dumps(report))
        return
    print(f"{args.model} (teacher {args.teacher}), batch {args.batch}, {args.threads} threads: "
          f"plain {median['plain']:.3f} s, fast {median['fast']:.3f} s a step ({report['speedup']:.2f}x)")


if __name__ == "__main__":
    main()
