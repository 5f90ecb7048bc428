"""Export a zoo model (or any StaticNet) to a validated ONNX file: fp32, fp16 or static int8.

:func:`to_onnx` runs the steps in order: resolve the model and its weights
(:func:`~anas_zoo.export.resolve.resolve_model`) → fold BatchNorm into the convs (checked in PyTorch)
→ write the graph with the dynamo exporter, falling back to the TorchScript exporter with a logged reason
(:mod:`~anas_zoo.export.onnx_graph`) → convert to fp16 or quantize to int8 → write metadata → check the
file with the ONNX checker and an ONNX Runtime session against the PyTorch model
(:mod:`~anas_zoo.export.onnx_validation`) → move it into place and write ``FILE.json``.
Everything is written to a temp file beside the output first, so a failure leaves nothing behind.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import onnx

from anas_zoo.export.errors import ExportError
from anas_zoo.export.metadata import build_metadata, decode_metadata, metadata_strings
from anas_zoo.export.onnx_graph import DEFAULT_OPSET, EXPORTERS, MAX_OPSET, MIN_OPSET, export_graph, to_fp16
from anas_zoo.export.onnx_validation import check_file, failure_summary
from anas_zoo.export.output import file_and_sidecar, publish, staging
from anas_zoo.export.quantize import quantize_int8
from anas_zoo.export.report import ExportCheckError, ExportReport
from anas_zoo.export.resolve import check_data_options, check_precision, fold_checked, resolve_model
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.static import StaticNet

__all__ = ["ExportCheckError", "ExportError", "ExportReport", "build_metadata", "read_metadata", "to_onnx"]

PRECISIONS = ("fp32", "fp16", "int8")
SIDECAR_FORMAT = "anas_zoo.onnx/1"


# ----- input checks ------------------------------------------------------------------------------
def _check_options(precision: str, opset: int, batch: int, exporter: str, atol: float) -> None:
    check_precision(precision, PRECISIONS, atol)
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter '{exporter}'; choose one of {', '.join(EXPORTERS)}")
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset {opset} is not supported; choose {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET})")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ExportError(f"batch must be a positive integer, got {batch}")


# ----- metadata ----------------------------------------------------------------------------------
def _set_metadata(model: onnx.ModelProto, metadata: dict) -> None:
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, metadata_strings(metadata))
    model.doc_string = f"{metadata['model_name']} ({metadata['precision']}) exported by anas_zoo"


def read_metadata(path: str | Path) -> dict:
    """The ``metadata_props`` of an exported file, JSON values decoded."""
    model = onnx.load(str(path), load_external_data=False)
    return decode_metadata({prop.key: prop.value for prop in model.metadata_props})


# ----- the whole pipeline ------------------------------------------------------------------------
def to_onnx(
    model: str | StaticNet,
    output: str | Path,
    *,
    name: str | None = None,
    pretrained: bool | None = None,
    checkpoint: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    batch: int = 1,
    dynamic_batch: bool = True,
    resolution: int | None = None,
    precision: str = "fp32",
    exporter: str = "auto",
    calib_data: str | Path | None = None,
    calib_samples: int = 256,
    exclude_nodes: Sequence[str] = (),
    eval_data: str | Path | None = None,
    eval_samples: int = 1000,
    check: bool = True,
    atol: float = 1e-4,
    keep_failed: bool = False,
    license: str | None = None,
    progress: bool = False,
) -> ExportReport:
    """Export ``model`` to ``output`` (ONNX, input ``input`` NCHW float32, output ``logits``) and check it.

    ``model`` is a registered name (``attentivenas_a0``, optionally ``.tag``) or a :class:`StaticNet`.
    ``pretrained=None`` loads local pretrained weights when they exist and otherwise exports the random
    initial weights with a warning (``True`` insists on weights, ``False`` never loads them);
    ``checkpoint`` loads a weight set (its ``.json`` record or ``.safetensors``) on top.
    ``dynamic_batch`` exports a free batch axis (checked at batch 1 and 3); otherwise the batch is fixed
    to ``batch``. ``resolution`` overrides the model's input size. ``precision``: ``fp32``, ``fp16``
    (float32 input/output kept) or ``int8`` (static QDQ, per-channel weights, calibrated on
    ``calib_samples`` images of ``calib_data`` — an image folder or the CIFAR-10 archive; nodes named in
    ``exclude_nodes`` stay float). ``eval_data`` (labelled images) adds top-1 accuracy of fp32 and the
    exported precision. ``exporter``: ``auto`` (dynamo, TorchScript fallback), ``dynamo``, ``torchscript``.
    ``check=False`` skips validation (fast path for tools that only need the file). A failed check raises
    :class:`ExportCheckError` and removes the file unless ``keep_failed``. Writes ``output`` with ``.json``
    beside it (the returned report).
    """
    start = time.perf_counter()
    _check_options(precision, opset, batch, exporter, atol)
    path, sidecar = file_and_sidecar(output, ".onnx")
    check_data_options(precision, calib_data, calib_samples, eval_data, eval_samples)
    net, cfg, name, weights = resolve_model(model, name, pretrained, checkpoint, resolution)
    report = ExportReport(path=str(path), sidecar=str(sidecar), model=name, precision=precision, opset=opset,
                          dynamic_batch=dynamic_batch, batch=None if dynamic_batch else batch,
                          resolution=net.resolution)
    metadata = build_metadata(net, cfg, name, weights, precision, opset, license)
    steps = ["fold BN", "export", *([precision] if precision != "fp32" else []), *(["check"] if check else [])]
    with staging(path.parent, path.name, name, steps, progress) as (workdir, step):
        step("fold BN")
        folded = fold_checked(net, report)

        step("export")
        fp32_path = workdir / "fp32.onnx"
        report.exporter, report.fallback_reason = export_graph(
            folded, fp32_path, resolution=net.resolution, batch=batch, dynamic=dynamic_batch, opset=opset,
            exporter=exporter)

        real = None
        if precision == "int8":
            step("int8 calibration")
            final_model, report.quantization, real = quantize_int8(
                fp32_path, workdir / "int8.onnx", calib_data, config=resolve_data_config(net), samples=calib_samples,
                exclude_nodes=exclude_nodes, batch=None if dynamic_batch else batch)
        elif precision == "fp16":
            step("fp16")
            final_model = to_fp16(onnx.load(str(fp32_path)))
        else:
            final_model = onnx.load(str(fp32_path))
        _set_metadata(final_model, metadata)
        report.metadata = metadata
        staged = workdir / "final.onnx"
        onnx.save(final_model, str(staged))

        if check:
            step("check")
            report.validation = check_file(staged, net, report, atol, real, eval_data, eval_samples, fp32_path)
            report.passed = report.validation["passed"]
        return publish(report, {staged: path}, SIDECAR_FORMAT, keep_failed, failure_summary, start)

