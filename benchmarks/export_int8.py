"""fp32 vs int8 ONNX Runtime latency (batch 1, 2 threads) and, for CIFAR-10 models, the int8 accuracy drop.

Each model is exported twice with :func:`anas_zoo.export.to_onnx` (fp32; int8 static QDQ calibrated on
CIFAR-10 training images), then both files are timed in alternating rounds so background load hits
both alike. A model with 10 classes (a CIFAR-10 model: ``--checkpoint`` weight set or a registered
name) also gets fp32 and int8 top-1 on the CIFAR-10 test split. Models without local weights keep
their random weights, with BatchNorm statistics re-estimated on real images so activations have
realistic ranges (latency does not depend on the weights' values; accuracy would be meaningless and
is not reported for them). Target from the issue: int8 ≤ 0.5× fp32 latency, ≤ 1 point accuracy drop.

    .venv/bin/python benchmarks/export_int8.py                       # A0
    .venv/bin/python benchmarks/export_int8.py --checkpoint run/cifar.json --eval-samples 10000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import torch

import anas_zoo
from anas_zoo.export import to_onnx
from anas_zoo.export.quantize import image_batches
from anas_zoo.export.session import ort_session
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.static import StaticNet
from anas_zoo.store import read_record
from anas_zoo.timing import collect_samples, interleaved_samples, timed
from anas_zoo.train.calibrate import calibrate_bn
from anas_zoo.train.data import DataError, cifar10_source
from anas_zoo.zoo import find_weights, get_entry, load_into


def _model(name: str | None, checkpoint: str | None, calib: str) -> tuple[StaticNet, str, bool]:
    """(model, label, has trained weights)."""
    if checkpoint:
        record = read_record(checkpoint)
        model = StaticNet(record["genome"], record.get("space", "attentivenas"), record.get("num_classes"))
        load_into(model, checkpoint)
        return model.eval(), f"{record.get('name', Path(checkpoint).stem)} ({Path(checkpoint).name})", True
    entry = get_entry(name)
    trained = bool(entry.weights) and find_weights(name) is not None
    model = anas_zoo.load(name, pretrained=trained)
    if not trained:
        batches = [x for x, _ in image_batches(calib, resolve_data_config(model), 64, "train", 16)]
        calibrate_bn(model, batches, len(batches))
    return model.eval(), name, trained


def _interleaved_latency(paths: dict[str, Path], resolution: int, threads: int, rounds: int, per_round: int) -> dict:
    x = np.random.default_rng(0).standard_normal((1, 3, resolution, resolution), dtype=np.float32)
    sessions = [ort_session(p, threads) for p in paths.values()]
    calls = [timed(partial(session.run, None, {"input": x})) for session in sessions]
    for call in calls:
        collect_samples(call, warmup=5, min_iters=1)
    samples = interleaved_samples(calls, rounds=rounds, iters=per_round)
    times = [np.concatenate(per_round) for per_round in samples]
    return {k: {"median_ms": float(np.median(v)), "p10_ms": float(np.percentile(v, 10)), "runs": len(v)}
            for k, v in zip(paths, times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=["attentivenas_a0"], help="registered names")
    parser.add_argument("--checkpoint", action="append", default=[], help="weight set .json (e.g. a CIFAR-10 model)")
    parser.add_argument("--calib-data", help="calibration images (default: $ANAS_ZOO_DATA, the CIFAR-10 archive)")
    parser.add_argument("--calib-samples", type=int, default=256)
    parser.add_argument("--eval-samples", type=int, default=10000, help="CIFAR-10 test images for accuracy")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--exporter", default="torchscript", choices=("auto", "dynamo", "torchscript"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        args.calib_data = str(cifar10_source(args.calib_data))
    except DataError as e:
        parser.error(str(e))
    torch.set_num_threads(args.threads)

    rows = []
    jobs = [(n, None) for n in args.models] + [(None, c) for c in args.checkpoint]
    with tempfile.TemporaryDirectory() as tmp:
        for name, checkpoint in jobs:
            model, label, trained = _model(name, checkpoint, args.calib_data)
            cifar = trained and model.num_classes == 10
            common = {"name": label, "exporter": args.exporter, "batch": 1, "dynamic_batch": False}
            fp32 = to_onnx(model, Path(tmp) / "fp32.onnx", check=False, **common)
            int8 = to_onnx(model, Path(tmp) / "int8.onnx", precision="int8", calib_data=args.calib_data,
                           calib_samples=args.calib_samples, eval_data=args.calib_data if cifar else None,
                           eval_samples=args.eval_samples, **common)
            latency = _interleaved_latency({"fp32": Path(fp32.path), "int8": Path(int8.path)}, model.resolution,
                                           args.threads, args.rounds, args.per_round)
            row = {"model": label, "trained_weights": trained, "resolution": model.resolution,
                   "macs": int8.metadata["macs"], "latency": latency,
                   "int8_over_fp32": latency["int8"]["median_ms"] / latency["fp32"]["median_ms"],
                   "int8_vs_pytorch_real": [r for r in int8.validation["parity"] if r["input"] == "real"],
                   "size_mb": {"fp32": fp32.size_bytes / 1e6, "int8": int8.size_bytes / 1e6}}
            if cifar:
                acc = int8.validation["accuracy"]
                row["accuracy"] = acc
                row["int8_drop_points"] = acc["fp32"]["top1"] - acc["int8"]["top1"]
            rows.append(row)
    env = {"threads": args.threads, "onnxruntime": __import__("onnxruntime").__version__, "torch": torch.__version__,
           "calib_samples": args.calib_samples, "exporter": args.exporter}
    if args.json:
        json.dump({"environment": env, "results": rows}, sys.stdout, indent=2)
        print()
        return
    print(f"fp32 vs int8 ONNX Runtime CPU latency, batch 1, {args.threads} threads ({env})")
    print(f"{'model':<32}{'res':>5}{'MMACs':>8}{'fp32 ms':>10}{'int8 ms':>10}{'int8/fp32':>11}{'MB fp32/int8':>15}"
          f"{'top1 fp32':>11}{'top1 int8':>11}{'drop pts':>10}")
    for r in rows:
        lat = r["latency"]
        acc = r.get("accuracy")
        accuracy = (f"{acc['fp32']['top1']:>11.2f}{acc['int8']['top1']:>11.2f}{r['int8_drop_points']:>10.2f}" if acc
                    else f"{'-':>11}{'-':>11}{'-':>10}")
        print(f"{r['model']:<32}{r['resolution']:>5}{r['macs'] / 1e6:>8.1f}{lat['fp32']['median_ms']:>10.2f}"
              f"{lat['int8']['median_ms']:>10.2f}{r['int8_over_fp32']:>11.2f}"
              f"{r['size_mb']['fp32']:>8.1f}/{r['size_mb']['int8']:<6.1f}{accuracy}")
    print("target: int8/fp32 <= 0.50 and drop <= 1.00 point; latency medians of alternating rounds "
          "(p10 in --json); accuracy only for trained CIFAR-10 models, on the CIFAR-10 test split")


if __name__ == "__main__":
    main()
