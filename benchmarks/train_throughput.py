"""Throughput of one full training step: sandwich rule (4 subnets) + BestUp-k ranking, on CPU by default.

    python benchmarks/train_throughput.py [--space attentivenas] [--resolution 32] [--batch 128]
                                          [--threads 2] [--subbatch 32] [--steps 8] [--json]

Prints images per second with candidates ranked on the full batch (like for like with the reference
implementation), with the default ranking sub-batch, and the peak resident memory. Synthetic images:
the input pipeline is not part of the step.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time

import torch

from anas_zoo.space import get_space
from anas_zoo.train.config import TrainConfig
from anas_zoo.train.data import TensorLoader
from anas_zoo.train.trainer import Trainer


def measure(args, subbatch: int | None, out_dir: str) -> float:
    space = get_space(args.space)
    g = torch.Generator().manual_seed(0)
    n = args.batch * (args.steps + args.warmup)
    images = torch.randint(0, 256, (n, 3, args.resolution, args.resolution), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, space.num_classes, (n,), generator=g)
    data = {
        "num_classes": space.num_classes,
        "train_loader": lambda bs, rank, world: TensorLoader(images, labels, bs, True, rank=rank, world_size=world),
    }
    config = TrainConfig(
        space=args.space, batch_size=args.batch, input_resolution=args.resolution, sampler="bestup", k=args.k,
        rank_subbatch=subbatch, threads=args.threads, channels_last=args.channels_last, prior_samples=300,
        out_dir=out_dir, resume=None, progress=False, epochs=1,
    )
    trainer = Trainer(config, data)
    batches = iter(trainer.train_loader)
    for _ in range(args.warmup):
        trainer.train_step(*next(batches))
    start = time.perf_counter()
    for _ in range(args.steps):
        x, y = next(batches)
        trainer.train_step(x, y)
    return args.batch * args.steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="attentivenas")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--subbatch", type=int, default=32, help="ranking sub-batch of the second figure (the bundled recipe's)")
    parser.add_argument("--steps", type=int, default=8,
                        help="timed steps; each samples other subnets, so few steps measure the draw, not the code")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        full = measure(args, None, tmp)
        sub = measure(args, args.subbatch, tmp)
    report = {
        "space": args.space,
        "resolution": args.resolution,
        "batch": args.batch,
        "threads": args.threads,
        "k": args.k,
        "channels_last": args.channels_last,
        "images_per_second": round(full, 2),
        "images_per_second_subbatch": round(sub, 2),
        "ranking_subbatch": args.subbatch,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:28s} {value}")


if __name__ == "__main__":
    main()
