"""Measure latency of zoo models on this device and write results, run records and Pareto tables.

    python benchmarks/run_latency.py --models 'attentivenas_a*' --backends torch,ort --threads 2 \\
        --out benchmarks/results/my_machine

Each (model, backend, precision, batch, threads) runs in its own worker process. Batch 1 is the
latency scenario, larger batches the throughput scenario; the tables keep them apart. Writes
OUT/runs/*.json (every sample + environment), OUT/results.csv, OUT/environment.json and
OUT/pareto.{md,csv,png}.
"""

from __future__ import annotations

import argparse
import sys

from anas_zoo.bench.backends import BACKENDS, PRECISIONS
from anas_zoo.bench.runner import Job, load_runs, resolve_models, run_benchmark
from anas_zoo.bench.tables import pareto_table, write_pareto
from anas_zoo.cli.common import EXIT_FAILED, EXIT_OK, print_json, run


def _choices(allowed: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"'{text}': allowed values are {', '.join(allowed)} (comma-separated)")
        return values
    return parse


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"'{text}': expected positive integers, comma-separated (e.g. 1,8,32)")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run_latency.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", required=True,
                   help="registered names (attentivenas_a0), globs ('attentivenas_a*') or genome JSON files")
    p.add_argument("--backends", type=_choices(BACKENDS), default=["torch", "ort"],
                   help=f"comma-separated from {', '.join(BACKENDS)} (default torch,ort)")
    p.add_argument("--precision", type=_choices(PRECISIONS), default=["fp32"],
                   help="comma-separated from fp32,fp16,int8 (default fp32; int8 is ORT-only and needs --calib-data)")
    p.add_argument("--batch", type=_positive_ints, default=[1], help="batch sizes, e.g. 1,8,32 (default 1)")
    p.add_argument("--threads", type=_positive_ints, default=[1],
                   help="intra-op threads, e.g. 1,2 (default 1); inter-op is always 1, execution sequential")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto = cuda when torch sees a GPU, else cpu")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls before sampling (default 10)")
    p.add_argument("--min-iters", type=int, default=50, help="at least this many timed calls (default 50)")
    p.add_argument("--min-seconds", type=float, default=2.0, help="and at least this long (default 2 s)")
    p.add_argument("--max-iters", type=int, default=10_000, help="never more timed calls than this")
    p.add_argument("--resolution", type=int, default=None, help="override every model's input resolution")
    p.add_argument("--space", default="attentivenas", help="search space of bare genome files")
    p.add_argument("--calib-data", default=None, help="calibration images for ORT int8")
    p.add_argument("--exporter", choices=("auto", "dynamo", "torchscript"), default="auto",
                   help="ONNX exporter for the ort backend (default auto, what anas-export ships)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds before a worker is killed")
    p.add_argument("--out", required=True, help="output folder (run records accumulate across invocations)")
    p.add_argument("--no-pareto", action="store_true", help="skip the Pareto tables and plot")
    p.add_argument("--no-fvcore", action="store_true", help="skip the fvcore MACs cross-check column")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON document with all rows")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("warmup", "min_iters", "max_iters", "min_seconds"):
        if getattr(args, name) < (0 if name in ("warmup", "min_seconds") else 1):
            build_parser().error(f"--{name.replace('_', '-')} {getattr(args, name)} is out of range")

    def body() -> int:
        import torch
        from tqdm import tqdm

        device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
        models = resolve_models(args.models, args.resolution, args.space)
        jobs = [Job(m, backend, precision, batch, threads, device, args.warmup, args.min_iters, args.min_seconds,
                    args.max_iters, args.calib_data, args.exporter)
                for m in models for backend in args.backends for precision in args.precision
                for batch in args.batch for threads in args.threads]

        def report(record: dict) -> None:
            if args.json:
                return
            s = record.get("summary")
            line = (f"{record['job']['model']['name']:<20} {record['job']['backend']:<13} "
                    f"{record['job']['precision']} b{record['job']['batch']} t{record['job']['threads']}: ")
            if s:
                line += (f"p50 {s['p50_ms']:.2f} ms  p90 {s['p90_ms']:.2f}  p99 {s['p99_ms']:.2f}  "
                         f"CV {s['cv'] * 100:.1f} %{' NOISY' if s['noisy'] else ''}  {s['images_per_s']:.1f} img/s")
            else:
                line += f"{record['status']}: {record['error']}"
            tqdm.write(line, file=sys.stderr)

        runs = run_benchmark(jobs, args.out, timeout=args.timeout, progress=not args.no_progress, on_result=report)
        paths = {}
        if not args.no_pareto:
            all_runs = load_runs(args.out)
            rows = pareto_table(all_runs, fvcore=not args.no_fvcore)
            paths = {k: str(v) for k, v in write_pareto(rows, args.out, environment=runs[0]["environment"]).items()}
        failed = [r for r in runs if r["status"] == "error"]
        if args.json:
            print_json({"out": args.out, "device": device, "pareto": paths,
                        "runs": [{k: v for k, v in r.items() if k not in ("samples_ms", "environment")}
                                 for r in runs]})
        else:
            print(f"{len(runs) - len(failed)}/{len(runs)} runs done; results in {args.out}/results.csv"
                  + (f"; Pareto table {paths['markdown']}" if paths else ""))
        if failed:
            print(f"error: {len(failed)} run(s) failed: " + "; ".join(
                f"{r['job']['model']['name']}/{r['job']['backend']}: {r['error']}" for r in failed), file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK

    return run(body)


if __name__ == "__main__":
    sys.exit(main())
