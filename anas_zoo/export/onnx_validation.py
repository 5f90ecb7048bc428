"""Check an exported ONNX file: checker, graph signature, portability, ONNX Runtime vs PyTorch.

:func:`validate` decides whether the file passes; :func:`check_file` adds the measurements asked for
(accuracy on labelled images, int8 vs fp32 latency). Both run on the staged file before it is published.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import torch

from anas_zoo.export.portable import portability_problems
from anas_zoo.export.quantize import latency_ms, load_images
from anas_zoo.export.report import ExportReport, first_line
from anas_zoo.export.session import INPUT_NAME, OUTPUT_NAME, ort_session
from anas_zoo.export.validation import CHECK_BATCHES, parity, parity_failure, runtime_accuracy
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.static import StaticNet


def ort_runner(path: str | Path, threads: int = 2) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a float32 NCHW batch to the logits of the file at ``path`` on ONNX Runtime."""
    session = ort_session(path, threads=threads)
    return lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]


def _structure_problems(model: onnx.ModelProto, batch: int | None, resolution: int, num_classes: int) -> list[str]:
    """Differences between the graph's signature and the contract: input NCHW float32, output logits."""
    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    problems = []
    inputs, outputs = list(model.graph.input), list(model.graph.output)
    if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in outputs] != [OUTPUT_NAME]:
        signature = f"{[i.name for i in inputs]} -> {[o.name for o in outputs]}"
        return [f"graph signature is {signature}, expected ['{INPUT_NAME}'] -> ['{OUTPUT_NAME}']"]
    float32 = onnx.TensorProto.FLOAT
    for value in (inputs[0], outputs[0]):
        if value.type.tensor_type.elem_type != float32:
            problems.append(f"'{value.name}' is not float32")
    in_dims, out_dims = dims(inputs[0]), dims(outputs[0])
    if in_dims[1:] != [3, resolution, resolution]:
        problems.append(f"input shape {in_dims} is not [N, 3, {resolution}, {resolution}]")
    if out_dims[1:] != [num_classes]:
        problems.append(f"output shape {out_dims} is not [N, {num_classes}]")
    batch_dims = (in_dims[0], out_dims[0])
    if batch is None and any(isinstance(d, int) for d in batch_dims):
        problems.append(f"batch axis is fixed ({batch_dims}), expected dynamic")
    if batch is not None and batch_dims != (batch, batch):
        problems.append(f"batch axis is {batch_dims}, expected {batch}")
    return problems


def validate(path: Path, reference: torch.nn.Module, *, precision: str, atol: float, batches: Sequence[int],
             resolution: int, num_classes: int, dynamic: bool, real: np.ndarray | None = None) -> dict:
    """ONNX checker (full), graph signature, portability, then ONNX Runtime vs PyTorch at each batch on inputs.

    Portability (:func:`~anas_zoo.export.portable.portability_problems`): canonical ops, default domain,
    strict shape inference, shapes static apart from the batch.

    fp32 passes when every max |diff| ≤ ``atol``; fp16 and int8 report their differences and pass when the
    outputs are finite (their agreement is a measurement, not a pass/fail criterion).
    """
    result = {"checker": None, "structure": [], "portability": [], "parity": [],
              "atol": atol if precision == "fp32" else None}
    try:
        onnx.checker.check_model(str(path), full_check=True)
        result["checker"] = "ok"
    except Exception as e:  # noqa: BLE001  (checker raises ValidationError, InferenceError, ...)
        result["checker"] = first_line(e)
        result["passed"] = False
        return result
    model = onnx.load(str(path))
    result["structure"] = _structure_problems(model, None if dynamic else batches[0], resolution, num_classes)
    result["portability"] = portability_problems(model)
    result["parity"], ran_ok = parity(ort_runner(path), reference,
                                      precision=precision, atol=atol, batches=batches, resolution=resolution,
                                      real=real)
    result["passed"] = ran_ok and not result["structure"] and not result["portability"]
    return result


def failure_summary(validation: dict) -> str:
    """The one line an :class:`ExportCheckError` gives for a failed :func:`validate` result."""
    if validation["checker"] != "ok":
        return f"ONNX checker failed: {validation['checker']}"
    if validation["structure"] or validation["portability"]:
        return "; ".join(validation["structure"] + validation["portability"])
    return parity_failure(validation["parity"], validation["atol"], "ONNX Runtime")


def check_file(staged: Path, net: StaticNet, report: ExportReport, atol: float, real, eval_data, eval_samples,
               fp32_path: Path) -> dict:
    """Validation of the staged file, plus accuracy on labelled data and int8 vs fp32 latency when asked."""
    batches = CHECK_BATCHES if report.dynamic_batch else (report.batch,)
    config = resolve_data_config(net)
    if real is None and eval_data is not None:
        real = load_images(eval_data, config, max(batches), split="test")[0]
    validation = validate(staged, net, precision=report.precision, atol=atol, batches=batches,
                          resolution=net.resolution, num_classes=net.num_classes, dynamic=report.dynamic_batch,
                          real=real)
    if validation.get("checker") != "ok":
        return validation
    if eval_data is not None:
        files = {"fp32": fp32_path, report.precision: staged}
        validation["accuracy"] = {
            label: runtime_accuracy(ort_runner(file), eval_data, config, eval_samples, batch=report.batch)
            for label, file in files.items()
        }
    if report.precision == "int8":
        validation["latency_ms"] = {label: latency_ms(file, net.resolution, batch=report.batch or 1)
                                    for label, file in (("fp32", fp32_path), ("int8", staged))}
    return validation
