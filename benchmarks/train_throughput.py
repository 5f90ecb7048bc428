"""Throughput of one full training step: sandwich rule (4 subnets) + BestUp-k ranking, on CPU by default.

    python benchmarks/train_throughput.py [--space attentivenas] [--resolution 32] [--batch 128]
                                          [--threads 2] [--subbatch 32] [--steps 8] [--json]

Prints images per second with candidates ranked on the full batch (like for like with the reference
implementation), with the default ranking sub-batch, and the peak resident memory. Synthetic images:
the input pipeline is not part of the step.

    python benchmarks/train_throughput.py --space cifar10 --against REV [--rounds 3] [--json]

is the A/B: this checkout against git revision REV (checked out in a temporary worktree), each measured in
its own process, in alternating rounds on the same idle cores; prints every round (stderr), both means and the
ratio; with --json, also the machine (CPU model and ISA flags: a speed-up found on one CPU need not hold on another).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from anas_zoo.bench.environment import capture_environment
from anas_zoo.cli.common import non_negative_int, positive_int
from anas_zoo.provenance import source_commit
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


def against(args) -> dict:
    """Alternating rounds of this checkout and of revision ``args.against``, each in a fresh process."""
    repo = Path(__file__).resolve().parents[1]
    flags = [f"--{key}={getattr(args, key)}" for key in ("space", "resolution", "batch", "threads", "k", "subbatch",
                                                           "steps", "warmup")]
    flags += [] if args.channels_last else ["--no-channels-last"]
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "against"
        added = subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(other), args.against],
                               capture_output=True, text=True)
        if added.returncode:
            raise SystemExit(f"--against {args.against!r} is not a revision of {repo} (git: "
                             f"{added.stderr.strip().splitlines()[-1] if added.stderr.strip() else 'worktree add failed'})")
        try:
            for number in range(1, args.rounds + 1):
                for side, root in (("against", other), ("this", repo)):
                    done = subprocess.run([sys.executable, str(root / "benchmarks" / "train_throughput.py"), *flags,
                                           "--json"], env={**os.environ, "PYTHONPATH": str(root)},
                                          capture_output=True, text=True)
                    if done.returncode:
                        raise SystemExit(f"the {side} side failed: {done.stderr.strip()[-2000:]}")
                    rounds.append({"round": number, "side": side, **json.loads(done.stdout)})
                    print(f"round {number} {side:8s} {rounds[-1]['images_per_second']:7.2f} img/s "
                          f"(ranking sub-batch {rounds[-1]['images_per_second_subbatch']:.2f})", file=sys.stderr)
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(other)], check=False)
    means = {side: {key: round(sum(r[key] for r in rounds if r["side"] == side) / args.rounds, 2)
                    for key in ("images_per_second", "images_per_second_subbatch")} for side in ("against", "this")}
    return {"against": args.against, "this": source_commit(), "rounds": rounds, "means": means,
            "ratio": {key: round(means["this"][key] / means["against"][key], 3) for key in means["this"]},
            "environment": capture_environment(args.threads)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="attentivenas")
    parser.add_argument("--resolution", type=positive_int, default=32)
    parser.add_argument("--batch", type=positive_int, default=128)
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--k", type=positive_int, default=3)
    parser.add_argument("--subbatch", type=positive_int, default=32, help="ranking sub-batch of the second figure (the bundled recipe's)")
    parser.add_argument("--steps", type=positive_int, default=8,
                        help="timed steps; each samples other subnets, so few steps measure the draw, not the code")
    parser.add_argument("--warmup", type=non_negative_int, default=1)
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument("--against", metavar="REV", help="A/B: also measure git revision REV, in alternating rounds")
    parser.add_argument("--rounds", type=positive_int, default=3, help="rounds of the --against A/B (default 3)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.against:
        report = against(args)
        print(json.dumps(report) if args.json else f"this / {args.against}: {report['ratio']}")
        return
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
