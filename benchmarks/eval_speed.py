"""Seconds to measure a bundled model's CIFAR-10 test top-1, per way of running it, on one core by default.

The tests re-measure every bundled weight set on the 10,000 test images; this times the ways that check could
run it, on the same images and batches: as loaded in channels_last ("channels_last"), BN folded by
``anas_zoo.export.optimize_for_inference`` ("folded") and an ONNX Runtime session of its fp32 export ("ort",
what tests/test_bundled.py uses) and an OpenVINO CPU (float32) compile of that export ("openvino", when
installed). Each prints its top-1 too, so a faster way that changed the answer shows.

    python benchmarks/eval_speed.py [--model attentivenas_cifar10_a6.cifar10_ft] [--samples 2000] [--threads 1]
                                    [--batch 50] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

import anas_zoo
from anas_zoo.evaluate import accuracy, eval_batches
from anas_zoo.export import optimize_for_inference, to_onnx
from anas_zoo.export.openvino import runner as openvino_runner
from anas_zoo.export.session import INPUT_NAME, ort_session
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.train.data import cifar10_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="attentivenas_cifar10_a6.cifar10_ft", help="a bundled NAME.TAG")
    parser.add_argument("--samples", type=int, default=2000, help="test images, spread over the split (default 2000)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1, as in a test worker)")
    parser.add_argument("--batch", type=int, default=50, help="images per batch (default 50, as anas-zoo eval)")
    parser.add_argument("--data", help="CIFAR-10 archive or folder (default: $ANAS_ZOO_DATA)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = anas_zoo.load(args.model, pretrained=True)
    config = resolve_data_config(model)
    data = cifar10_source(args.data)
    eval_batches(config, data, "test", limit=1)  # decode the archive into the cache before any timing
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "m.onnx"
        to_onnx(args.model, onnx_path, check=False)
        session = ort_session(onnx_path, threads=args.threads)
        folded = optimize_for_inference(model)
        ways = {  # name: (predict, whether it takes channels_last batches: the PyTorch ones do)
            "channels_last": (model.to(memory_format=torch.channels_last), True),
            "folded": (folded, True),
            "ort": (lambda x: torch.from_numpy(session.run(None, {INPUT_NAME: x.contiguous().numpy()})[0]), False),
        }
        if importlib.util.find_spec("openvino"):
            run_openvino = openvino_runner(onnx_path, threads=args.threads)
            ways["openvino"] = (lambda x: torch.from_numpy(run_openvino(x.contiguous().numpy())), False)
        rows = []
        for way, (predict, channels_last) in ways.items():
            batches, _ = eval_batches(config, data, "test", batch_size=args.batch, limit=args.samples)
            if channels_last:
                batches = ((x.contiguous(memory_format=torch.channels_last), y) for x, y in batches)
            start = time.perf_counter()
            result = accuracy(predict, batches)
            rows.append({"way": way, "seconds": round(time.perf_counter() - start, 2), "top1": result["top1"],
                         "samples": result["samples"]})
    report = {"model": args.model, "threads": args.threads, "batch": args.batch, "cpu": platform.processor() or
              platform.machine(), "torch": torch.__version__, "rows": rows}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"{args.model}: {rows[0]['samples']} CIFAR-10 test images, batch {args.batch}, {args.threads} thread(s)")
    for row in rows:
        print(f"  {row['way']:<14} {row['seconds']:7.2f} s   top-1 {row['top1']:.2f} %")


if __name__ == "__main__":
    main()
