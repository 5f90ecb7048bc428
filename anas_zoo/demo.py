"""The main job on the bundled family: load, evaluate, export the smallest model, time it, tabulate.

Every bundled model is loaded with its verified default weights and evaluated on a few CIFAR-10 test images
(``data``, else ``$ANAS_ZOO_DATA``; when neither names readable data, on a synthetic batch, which only checks
that the models run); each is timed in PyTorch eager at batch 1; the smallest is exported to a checked ONNX
file and timed in ONNX Runtime. The result is a Pareto table: recorded test accuracy × MACs × latency, with the
recorded test accuracy of each of the model's weight sets (the supernet's own and the fine-tuned one) side by side.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from anas_zoo.bench.backends import prepare, set_torch_threads, timed_session
from anas_zoo.bench.stats import summarize
from anas_zoo.evaluate import eval_batches, evaluate
from anas_zoo.export import to_onnx
from anas_zoo.pareto import pareto_front
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.timing import collect_samples
from anas_zoo.train.data import DataError
from anas_zoo.zoo import list_models, load, model_info

BUNDLED_FAMILY = "attentivenas_cifar10_a*"


def _latency(call, iters: int) -> dict:
    return summarize(collect_samples(call, warmup=max(3, iters // 10), min_iters=iters, min_seconds=0.0))


def _sample_accuracy(model, samples: int, data) -> dict | None:
    """Top-1 on ``samples`` CIFAR-10 test images spread over the split; None when ``data`` is not given and the
    shared copy is not here. Data the user named must be readable: its errors are raised, never replaced."""
    try:
        batches, _ = eval_batches(resolve_data_config(model), data, "test", batch_size=100, limit=samples)
        return evaluate(model, batches, limit=samples)
    except (DataError, FileNotFoundError):
        if data is not None:
            raise
        return None


def run_demo(samples: int = 500, threads: int = 2, iters: int = 50, data=None, out_dir=None,
             pattern: str = BUNDLED_FAMILY) -> dict:
    """Run the main job; returns ``{'models': [...], 'onnx': {...}, 'data': ...}``."""
    names = list_models(pattern)
    if not names:
        raise ValueError(f"no registered model matches '{pattern}'")
    set_torch_threads(threads)
    rows, models = [], {}
    for name in names:
        model = load(name, pretrained=True)
        cfg = model.pretrained_cfg
        sample = _sample_accuracy(model, samples, data)
        if sample is None:  # no CIFAR-10 here: a synthetic batch proves the model runs
            with torch.inference_mode():
                model(torch.randn(8, *resolve_data_config(model).input_size))
        eager = _latency(prepare("torch", model, batch=1, resolution=model.resolution, threads=threads).call, iters)
        rows.append({"name": name, "tag": cfg.tag, "resolution": model.resolution, "macs": cfg["macs"],
                     "params": cfg["params"], "test_top1": cfg.metrics[0]["top1"],
                     "test_samples": cfg.metrics[0]["samples"],
                     "test_top1_by_tag": {w["tag"]: w["metrics"][0]["top1"] for w in model_info(name)["weights"]},
                     "sample_top1": None if sample is None else sample["top1"],
                     "sample_images": None if sample is None else sample["samples"],
                     "torch_p50_ms": eager["p50_ms"], "torch_cv": eager["cv"]})
        models[name] = model
    for row, on_front in zip(rows, pareto_front([(r["torch_p50_ms"], r["test_top1"]) for r in rows])):
        row["on_front"] = on_front

    smallest = min(rows, key=lambda r: r["macs"])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(out_dir) if out_dir else Path(tmp)
        report = to_onnx(models[smallest["name"]], folder / f"{smallest['name']}.onnx", name=smallest["name"],
                         exporter="torchscript")
        x = torch.randn(1, 3, smallest["resolution"], smallest["resolution"])
        ort = _latency(timed_session(Path(report.path), x, threads)[0], iters)
    onnx = {"model": smallest["name"], "path": report.path if out_dir else None, "passed": report.passed,
            "max_abs_diff": max(r["max_abs_diff"] for r in report.validation["parity"]),
            "ort_p50_ms": ort["p50_ms"], "ort_cv": ort["cv"], "threads": threads}
    sampled = rows[0]["sample_top1"] is not None
    return {"models": rows, "onnx": onnx,
            "data": f"{samples} CIFAR-10 test images" if sampled else "synthetic batch (no CIFAR-10: pass --data or set ANAS_ZOO_DATA)"}
