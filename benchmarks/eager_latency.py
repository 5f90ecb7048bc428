"""Eager PyTorch latency of the static paper models: batch 1, own resolution, fixed threads.

Prints the median (and p90) of --runs timed forward passes after --warmup untimed ones. Target for
attentivenas_a0 on the 2-core CI machine kind: <= 16 ms with 2 threads.

    python benchmarks/eager_latency.py [--models 'attentivenas_a*'] [--threads 2] [--runs 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

import anas_zoo


def measure(model: torch.nn.Module, resolution: int, warmup: int, runs: int, channels_last: bool) -> list[float]:
    x = torch.randn(1, 3, resolution, resolution)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    samples = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                samples.append((time.perf_counter() - start) * 1e3)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="attentivenas_a*", help="glob over registered names")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--memory-format", choices=["contiguous", "channels_last"], default="contiguous")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.runs < 50:
        parser.error(f"--runs must be at least 50 for a stable median, got {args.runs}")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    rows = []
    for name in anas_zoo.list_models(args.models):
        model = anas_zoo.load(name).eval()
        samples = measure(model, model.resolution, args.warmup, args.runs, args.memory_format == "channels_last")
        rows.append({
            "model": name,
            "resolution": model.resolution,
            "macs_m": round(model.pretrained_cfg["macs"] / 1e6, 2),
            "median_ms": round(statistics.median(samples), 2),
            "p90_ms": round(statistics.quantiles(samples, n=10)[-1], 2),
            "runs": len(samples),
        })
    env = {"torch": torch.__version__, "threads": args.threads, "memory_format": args.memory_format,
           "cpu": platform.processor() or platform.machine()}
    if args.json:
        print(json.dumps({"environment": env, "results": rows}, indent=2))
        return
    print(f"eager PyTorch, batch 1, {args.threads} threads, {args.memory_format}, torch {torch.__version__}")
    print(f"{'model':<18}{'res':>5}{'MMACs':>9}{'median ms':>11}{'p90 ms':>9}")
    for r in rows:
        print(f"{r['model']:<18}{r['resolution']:>5}{r['macs_m']:>9.2f}{r['median_ms']:>11.2f}{r['p90_ms']:>9.2f}")


if __name__ == "__main__":
    main()
