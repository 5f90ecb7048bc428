"""``anas-bench``: latency of zoo models on this device, its latency model, and how close it gets to the CPU's peak.

    anas-bench latency --models 'attentivenas_a*' --backends torch,ort,openvino,executorch \\
        --precision fp32,int8 --calib-data "$ANAS_ZOO_DATA" --threads 2 --out results/my_device
    anas-bench latency-model --backend ort --threads 1 --out results/my_device/latency_model.json
    anas-bench peak results/my_device
    anas-bench tables results/my_device

``latency`` runs each (model, backend, precision, batch, threads) in its own worker process; batch 1 is the
latency scenario, larger batches the throughput scenario, and the tables keep them apart. It writes
OUT/runs/*.json (every sample + environment), OUT/results.csv, OUT/environment.json and OUT/pareto.{md,csv,png}
(one front per runtime × precision × threads × batch, and the fastest runtime of every model).
``latency-model`` fits the device's latency predictor that ``anas-search --latency-model`` constrains by.
``peak`` reads a ``latency`` output folder and prints fp32 GMAC/s against the CPU's fp32 peak estimate.
``tables`` re-renders a ``latency`` output folder after the bundled weights changed: each registered model takes the
top-1 its weights carry now, the measured timings stay.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from anas_zoo.bench.backends import BACKENDS, PRECISIONS, UnsupportedConfig, check_supported, require_runtime
from anas_zoo.bench.environment import fp32_peak_estimate
from anas_zoo.bench.peak import achieved, read_results
from anas_zoo.bench.runner import Job, load_runs, refresh_accuracy, resolve_models, run_benchmark
from anas_zoo.bench.tables import fastest_runtimes, pareto_table, write_pareto
from anas_zoo.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    at_least,
    comma_list,
    non_negative_int,
    positive_int,
    print_json,
    run,
)
from anas_zoo.search.latency_model import build_latency_model

#: What a latency model must reach on held-out sub-networks measured for real.
TAU_TARGET, MAPE_TARGET = 0.85, 10.0


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"'{text}': expected positive integers, comma-separated (e.g. 1,8,32)")
    return values


def _measured(backend: str, precision: str, device: str, batch: int, calib_data) -> bool:
    try:
        check_supported(backend, precision, device, batch, calib_data)
    except UnsupportedConfig:
        return False
    return True


def _require_runtimes(backends, precisions, device: str, batches, calib_data) -> None:
    """Fail before the first run when a run that will be measured needs a runtime that is not installed."""
    for backend in backends:
        for precision in precisions:
            if any(_measured(backend, precision, device, batch, calib_data) for batch in batches):
                require_runtime(backend, precision)


def _report_line(record: dict) -> str:
    job, s = record["job"], record.get("summary")
    line = (f"{job['model']['name']:<20} {job['backend']:<13} {job['precision']} b{job['batch']} "
            f"t{job['threads']}: ")
    if s:
        return line + (f"p50 {s['p50_ms']:.2f} ms  p90 {s['p90_ms']:.2f}  p99 {s['p99_ms']:.2f}  "
                       f"CV {s['cv'] * 100:.1f} %{' NOISY' if s['noisy'] else ''}  {s['images_per_s']:.1f} img/s")
    return line + f"{record['status']}: {record['error']}"


def _write_tables(out: str, environment: dict, fvcore: bool) -> tuple[dict, list[dict]]:
    """Pareto tables and plot of every run in ``out``: their paths, and the fastest runtime of every model."""
    rows = pareto_table(load_runs(out), fvcore=fvcore)
    paths = {k: str(v) for k, v in write_pareto(rows, out, environment=environment).items()}
    return paths, fastest_runtimes(rows)


def _latency(args: argparse.Namespace) -> int:
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    models = resolve_models(args.models, args.resolution, args.space)
    _require_runtimes(args.backends, args.precision, device, args.batch, args.calib_data)
    jobs = [Job(m, backend, precision, batch, threads, device, args.warmup, args.min_iters, args.min_seconds,
                args.max_iters, args.calib_data, args.exporter)
            for m in models for backend in args.backends for precision in args.precision
            for batch in args.batch for threads in args.threads]

    def report(record: dict) -> None:
        if not args.json:
            tqdm.write(_report_line(record), file=sys.stderr)

    runs = run_benchmark(jobs, args.out, timeout=args.timeout, progress=not args.no_progress, on_result=report)
    paths, fastest = ({}, []) if args.no_pareto else _write_tables(args.out, runs[0]["environment"], not args.no_fvcore)
    failed = [r for r in runs if r["status"] == "error"]
    if args.json:
        print_json({"out": args.out, "device": device, "pareto": paths, "fastest": fastest,
                    "runs": [{k: v for k, v in r.items() if k not in ("samples_ms", "environment")} for r in runs]})
    else:
        for entry in fastest:
            print(f"fastest for {entry['model']} ({entry['threads']} threads, batch {entry['batch']}): "
                  f"{entry['runtime']}, p50 {entry['p50_ms']:.2f} ms")
        print(f"{len(runs) - len(failed)}/{len(runs)} runs done; results in {args.out}/results.csv"
              + (f"; Pareto table {paths['markdown']}" if paths else ""))
    if failed:
        print(f"error: {len(failed)} run(s) failed: " + "; ".join(
            f"{r['job']['model']['name']}/{r['job']['backend']}: {r['error']}" for r in failed), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _latency_model(args: argparse.Namespace) -> int:
    require_runtime(args.backend, args.precision)
    model = build_latency_model(
        args.space, backend=args.backend, threads=args.threads, precision=args.precision, batch=args.batch,
        device=args.device, num_classes=args.num_classes, resolution=args.resolution, num_train=args.num_train,
        num_val=args.num_val, seed=args.seed, warmup=args.warmup, iters=args.iters, rounds=args.rounds,
        progress=not args.no_progress)
    path = model.save(args.out)
    v = model.validation
    ok = v["kendall_tau"] >= TAU_TARGET and v["mape_percent"] <= MAPE_TARGET
    if args.json:
        print_json({"path": str(path), "validation": v, "setting": model.setting,
                    "weights": dict(zip(["constant", *model.features], model.weights)), "targets_met": ok})
        return EXIT_OK
    print(f"latency model for space '{model.space}' on {model.environment['cpu']['model']} "
          f"({args.backend} {args.precision}, {args.threads} threads, batch {args.batch}) -> {path}")
    print(f"  fitted on {v['num_train']} measured sub-networks, train MAPE {v['train_mape_percent']:.1f} %")
    print(f"  held-out: {v['num_val']} random sub-networks measured for real")
    print(f"  Kendall tau {v['kendall_tau']:.3f} (target >= {TAU_TARGET})  "
          f"MAPE {v['mape_percent']:.1f} % (target <= {MAPE_TARGET:.0f} %)  "
          f"-> {'targets met' if ok else 'TARGETS MISSED'}")
    print(f"  measuring took {v['measure_seconds']:.0f} s")
    for name, w in zip(["constant", *model.features], model.weights):
        print(f"    {name:<14} {w:.4g} ms per unit")
    return EXIT_OK


def _peak(args: argparse.Namespace) -> int:
    rows, env = read_results(args.results)
    table = achieved(rows, env, backend=args.backend)
    if not table:
        raise ValueError(f"{args.results}/results.csv has no successful {args.backend} fp32 rows; run anas-bench "
                         f"latency with --backends {args.backend} --precision fp32 first")
    peaks = {t: fp32_peak_estimate(env, cores=t) for t in sorted({r["threads"] for r in table})}
    if args.json:
        print_json({"rows": table, "peaks": {str(k): v for k, v in peaks.items()}})
        return EXIT_OK
    versions = ", ".join(f"{p} {v}" for p, v in env["packages"].items() if v)
    print(f"CPU: {env['cpu']['model']}; {args.backend} fp32 ({versions})")
    for threads, peak in peaks.items():
        print(f"fp32 peak estimate for {threads} core(s): {peak['peak_gmacs_per_s']:.1f} GMAC/s, assuming:")
        for line in peak["assumptions"]:
            print(f"  - {line}")
    print(f"{'model':<20} {'batch':>5} {'thr':>3} {'MMACs':>8} {'p50 ms':>8} {'GMAC/s':>8} {'% peak':>7}")
    for r in table:
        pct = f"{r['percent_of_peak']:.1f}" if r["percent_of_peak"] is not None else "?"
        noisy = "  (noisy run)" if r["cv"] > 0.10 else ""
        print(f"{r['model']:<20} {r['batch']:>5} {r['threads']:>3} {r['macs'] / 1e6:>8.1f} {r['p50_ms']:>8.2f} "
              f"{r['achieved_gmacs_per_s']:>8.2f} {pct:>7}{noisy}")
    return EXIT_OK


def _tables(args: argparse.Namespace) -> int:
    out = Path(args.results)
    if not any((out / "runs").glob("*.json")):
        raise ValueError(f"{out} holds no run records (runs/*.json); point it at an anas-bench latency output folder")
    changed = refresh_accuracy(out)
    environment = json.loads((out / "environment.json").read_text())
    paths, _ = _write_tables(str(out), environment, not args.no_fvcore)
    if args.json:
        print_json({"out": str(out), "accuracy_changed": changed, "pareto": paths})
    else:
        print(f"top-1 taken from the current weights for {', '.join(changed) or 'no model (all unchanged)'}; "
              f"Pareto table {paths['markdown']}")
    return EXIT_OK


def _add_latency(sub) -> None:
    p = sub.add_parser("latency", help="measure latency of zoo models in isolated worker processes, write Pareto tables",
                       description="Measure latency of zoo models on this device and write results, run records and "
                                   "Pareto tables.")
    p.add_argument("--models", nargs="+", required=True,
                   help="registered names (attentivenas_a0), globs ('attentivenas_a*') or genome JSON files")
    p.add_argument("--backends", type=comma_list(BACKENDS), default=["torch", "ort"],
                   help=f"comma-separated from {', '.join(BACKENDS)} (default torch,ort); openvino and executorch "
                        "need their extras: pip install \"anas_zoo[openvino]\" / \"anas_zoo[executorch]\"")
    p.add_argument("--precision", type=comma_list(PRECISIONS), default=["fp32"],
                   help="comma-separated from fp32,fp16,int8 (default fp32; int8 runs on ort, openvino and "
                        "executorch and needs --calib-data; fp16 on ort, and on torch with CUDA)")
    p.add_argument("--batch", type=_positive_ints, default=[1], help="batch sizes, e.g. 1,8,32 (default 1)")
    p.add_argument("--threads", type=_positive_ints, default=[1],
                   help="intra-op threads, e.g. 1,2 (default 1); inter-op is always 1, execution sequential")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto = cuda when torch sees a GPU, else cpu (openvino and executorch: cpu only)")
    p.add_argument("--warmup", type=non_negative_int, default=10, help="untimed calls before sampling (default 10)")
    p.add_argument("--min-iters", type=positive_int, default=50, help="at least this many timed calls (default 50)")
    p.add_argument("--min-seconds", type=at_least(0.0, float), default=2.0, help="and at least this long (default 2 s)")
    p.add_argument("--max-iters", type=positive_int, default=10_000, help="never more timed calls than this")
    p.add_argument("--resolution", type=int, default=None, help="override every model's input resolution")
    p.add_argument("--space", default="attentivenas", help="search space of bare genome files")
    p.add_argument("--calib-data", default=None,
                   help="int8 calibration images: an image folder (<root>/<class>/*.jpg) or the CIFAR-10 archive")
    p.add_argument("--exporter", choices=("auto", "dynamo", "torchscript"), default="auto",
                   help="ONNX exporter for the ort backend (default auto, what anas-export ships)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds before a worker is killed")
    p.add_argument("--out", required=True, help="output folder (run records accumulate across invocations)")
    p.add_argument("--no-pareto", action="store_true", help="skip the Pareto tables and plot")
    p.add_argument("--no-fvcore", action="store_true", help="skip the fvcore MACs cross-check column")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON document with all rows")
    p.set_defaults(func=_latency)


def _add_latency_model(sub) -> None:
    p = sub.add_parser(
        "latency-model", help="fit this device's latency model for a search space, validated on held-out nets",
        description="Measure --num-train sub-networks (smallest, largest, then uniform samples), fit the cost model, "
                    "then measure --num-val further random sub-networks for real and report Kendall tau (target "
                    f">= {TAU_TARGET}) and MAPE (target <= {MAPE_TARGET:.0f} %) of the predictions against them. All "
                    "nets are prepared first, then timed in interleaved rounds (a net's figure is its best round's "
                    "median), so slow swings of other load hit every net alike; still, run it on an idle device.")
    p.add_argument("--space", default="attentivenas", help="registered search space (default attentivenas)")
    p.add_argument("--backend", choices=BACKENDS, default="ort")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--threads", type=positive_int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--batch", type=positive_int, default=1)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--num-train", type=int, default=40, help="measured sub-networks to fit on (default 40)")
    p.add_argument("--num-val", type=int, default=30, help="held-out sub-networks measured for validation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup", type=non_negative_int, default=3)
    p.add_argument("--iters", type=positive_int, default=3, help="timed calls per sub-network and round (default 3)")
    p.add_argument("--rounds", type=positive_int, default=15,
                   help="interleaved timing rounds; a net's latency is its best round's median (default 15)")
    p.add_argument("--resolution", type=int, default=None, help="override every genome's resolution")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--out", required=True, help="where to write the model (JSON)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_latency_model)


def _add_peak(sub) -> None:
    p = sub.add_parser("peak", help="fp32 GMAC/s of measured runs against the CPU's fp32 peak estimate",
                       description="Achieved GMAC/s = MACs × batch / p50 latency of every successful fp32 run of "
                                   "--backend, against cores × FMA units × fp32 SIMD lanes × clock for the cores "
                                   "the run used (its intra-op threads); every assumption behind it is printed.")
    p.add_argument("results", help="an anas-bench latency output folder (results.csv + environment.json)")
    p.add_argument("--backend", choices=BACKENDS, default="ort", help="whose fp32 runs to read (default ort)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_peak)


def _add_tables(sub) -> None:
    p = sub.add_parser("tables", help="re-render a latency folder's tables with the current weights' top-1",
                       description="Rewrite OUT/runs/*.json, OUT/results.csv and OUT/pareto.{md,csv,png} so that every "
                                   "registered model carries the top-1 of the weights registered now. Latency does "
                                   "not depend on the weight values, so the timings stay; a model whose registered "
                                   "architecture changed since its run is refused (measure it again).")
    p.add_argument("results", help="an anas-bench latency output folder (runs/*.json + environment.json)")
    p.add_argument("--no-fvcore", action="store_true", help="skip the fvcore MACs cross-check column")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_tables)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anas-bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_latency(sub)
    _add_latency_model(sub)
    _add_peak(sub)
    _add_tables(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
