"""Eager PyTorch latency of the static paper models: batch 1, own resolution, fixed threads.

Prints the median (and p90) of --runs timed forward passes after --warmup untimed ones, for the model
as loaded ("plain": Conv2d + BatchNorm2d, NCHW) and as prepared by
``anas_zoo.export.fold.optimize_for_inference`` ("optimized": BN folded, channels_last weights and
input). Target for attentivenas_a0 on the 2-core CI machine kind: <= 16 ms with 2 threads.

    python benchmarks/eager_latency.py [--models 'attentivenas_a*'] [--threads 2] [--runs 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics

import torch

import anas_zoo
from anas_zoo.export.fold import optimize_for_inference
from anas_zoo.timing import collect_samples, timed


def measure(model: torch.nn.Module, resolution: int, warmup: int, runs: int, optimized: bool) -> list[float]:
    x = torch.randn(1, 3, resolution, resolution)
    if optimized:
        model = optimize_for_inference(model)
        x = x.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        return collect_samples(timed(lambda: model(x)), warmup=warmup, min_iters=runs, max_iters=runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="attentivenas_a*", help="glob over registered names")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.runs < 50:
        parser.error(f"--runs must be at least 50 for a stable median, got {args.runs}")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    rows = []
    for name in anas_zoo.list_models(args.models):
        model = anas_zoo.load(name).eval()
        row = {"model": name, "resolution": model.resolution, "macs_m": round(model.pretrained_cfg["macs"] / 1e6, 2)}
        for variant in ("plain", "optimized"):
            samples = measure(model, model.resolution, args.warmup, args.runs, variant == "optimized")
            row[f"{variant}_median_ms"] = round(statistics.median(samples), 2)
            row[f"{variant}_p90_ms"] = round(statistics.quantiles(samples, n=10)[-1], 2)
        row["runs"] = args.runs
        rows.append(row)
    env = {"torch": torch.__version__, "threads": args.threads, "cpu": platform.processor() or platform.machine()}
    if args.json:
        print(json.dumps({"environment": env, "results": rows}, indent=2))
        return
    print(f"eager PyTorch, batch 1, {args.threads} threads, median of {args.runs} runs, torch {torch.__version__}")
    print(f"{'model':<18}{'res':>5}{'MMACs':>9}{'plain ms':>10}{'p90':>8}{'optimized ms':>14}{'p90':>8}")
    for r in rows:
        print(f"{r['model']:<18}{r['resolution']:>5}{r['macs_m']:>9.2f}{r['plain_median_ms']:>10.2f}"
              f"{r['plain_p90_ms']:>8.2f}{r['optimized_median_ms']:>14.2f}{r['optimized_p90_ms']:>8.2f}")

if __name__ == "__main__":
    main()
