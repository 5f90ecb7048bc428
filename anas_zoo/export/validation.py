"""Checks every format shares: parity of a runtime with PyTorch at batch 1 and 3 on random and real images, and
top-1 of a runtime on labelled images (:mod:`~anas_zoo.export.onnx_validation` adds the ONNX-only checks)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from anas_zoo.data_config import DataConfig
from anas_zoo.evaluate import accuracy
from anas_zoo.export.errors import ExportError
from anas_zoo.export.quantize import image_batches, load_images
from anas_zoo.export.report import ExportReport
from anas_zoo.pretrained_cfg import resolve_data_config

CHECK_BATCHES = (1, 3)
EVAL_BATCH = 50


def compare(reference: np.ndarray, actual: np.ndarray) -> dict:
    """max/mean |diff| and top-1 agreement of two logit batches."""
    diff = np.abs(reference.astype(np.float64) - actual.astype(np.float64))
    return {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "top1_agreement": float((reference.argmax(1) == actual.argmax(1)).mean()),
        "finite": bool(np.isfinite(actual).all()),
    }


def parity(run: Callable[[np.ndarray], np.ndarray], reference: torch.nn.Module, *, precision: str, atol: float,
           batches: Sequence[int], resolution: int, real: np.ndarray | None = None) -> tuple[list[dict], bool]:
    """(rows, passed): ``run`` (a float32 NCHW batch -> logits) vs PyTorch at each batch on random/real inputs.

    fp32 passes when every max |diff| ≤ ``atol``; other precisions report their differences and pass
    when the outputs are finite and of the right shape (their agreement is a measurement).
    """
    largest = max(batches)
    inputs = {"random": np.random.default_rng(0).standard_normal((largest, 3, resolution, resolution), dtype=np.float32)}
    if real is not None and len(real) >= largest:
        inputs["real"] = np.ascontiguousarray(real[:largest], dtype=np.float32)
    # One PyTorch pass over all inputs gives the reference rows for every batch size.
    with torch.inference_mode():
        expected_all = reference(torch.from_numpy(np.concatenate(list(inputs.values())))).numpy()
    rows, passed = [], True
    for batch in batches:
        for k, (kind, x) in enumerate(inputs.items()):
            expected = expected_all[k * largest : k * largest + batch]
            got = np.asarray(run(np.ascontiguousarray(x[:batch])))
            if got.shape != expected.shape:
                row = {"input": kind, "batch": batch, "max_abs_diff": float("inf"), "mean_abs_diff": float("inf"),
                       "top1_agreement": 0.0, "finite": False, "shape": list(got.shape), "passed": False}
            else:
                row = {"input": kind, "batch": batch, **compare(expected, got)}
                row["passed"] = bool(row["finite"] and (precision != "fp32" or row["max_abs_diff"] <= atol))
            passed = passed and row["passed"]
            rows.append(row)
    return rows, passed


def parity_failure(rows: list[dict], atol: float | None, runtime: str) -> str:
    """One line naming the worst failed parity row."""
    worst = max((r for r in rows if not r["passed"]), key=lambda r: r["max_abs_diff"])
    limit = f" > atol {atol:g}" if atol is not None else " (non-finite or wrong shape)"
    return (f"{runtime} differs from PyTorch: max |diff| {worst['max_abs_diff']:.3g}{limit} "
            f"on {worst['input']} input at batch {worst['batch']}")


def check_runtime(run: Callable[[np.ndarray], np.ndarray], fp32_run: Callable[[np.ndarray], np.ndarray],
                  reference: torch.nn.Module, report: ExportReport, *, atol: float, real: np.ndarray | None,
                  eval_data, eval_samples: int, structure: list[str]) -> dict:
    """Validation of a non-ONNX file: its signature ``structure`` problems, :func:`parity` at batch 1 and 3,
    and, with ``eval_data``, top-1 of the fp32 graph and of the exported precision on its test split."""
    config = resolve_data_config(reference)
    if real is None and eval_data is not None:
        real = load_images(eval_data, config, max(CHECK_BATCHES), split="test")[0]
    rows, ran_ok = parity(run, reference, precision=report.precision, atol=atol, batches=CHECK_BATCHES,
                          resolution=report.resolution, real=real)
    validation = {"structure": structure, "parity": rows, "atol": atol if report.precision == "fp32" else None,
                  "passed": ran_ok and not structure}
    if eval_data is not None:
        runs = {"fp32": fp32_run, report.precision: run}
        validation["accuracy"] = {label: runtime_accuracy(r, eval_data, config, eval_samples)
                                  for label, r in runs.items()}
    return validation


def runtime_accuracy(run: Callable[[np.ndarray], np.ndarray], eval_data, config: DataConfig, samples: int,
                     batch: int | None = None, progress: bool = False) -> dict:
    """:func:`~anas_zoo.evaluate.accuracy` (%) of ``run`` (a float32 NCHW array -> logits, any runtime) on up to
    ``samples`` labelled images of ``eval_data`` (CIFAR-10: its test split), prepared with ``config``.
    ``batch`` is a fixed-batch graph's batch (a smaller last batch is left out), None for a free one;
    ``progress`` shows a bar on stderr."""
    if batch is not None and samples < batch:
        raise ExportError(f"{samples} evaluation images make no batch of {batch} for this fixed-batch graph")
    batches = image_batches(eval_data, config, samples, "test", batch or EVAL_BATCH)
    if batch is not None:
        batches = ((x, y) for x, y in batches if len(y) == batch)
    return accuracy(lambda x: torch.from_numpy(run(x.numpy())), batches, limit=samples, progress=progress)


def runtime_failure(runtime: str) -> Callable[[dict], str]:
    """The ``failure`` summary for :func:`publish` of a file checked by :func:`check_runtime` in ``runtime``."""
    def summary(validation: dict) -> str:
        if validation["structure"]:
            return "; ".join(validation["structure"])
        return parity_failure(validation["parity"], validation["atol"], runtime)

    return summary
