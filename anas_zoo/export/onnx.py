"""Export a zoo model (or any StaticNet) to a validated ONNX file: fp32, fp16 or static int8.

The pipeline is: resolve the model and its weights → fold BatchNorm into the convs (checked in
PyTorch) → export with the dynamo exporter, falling back to the TorchScript exporter with a logged
reason → convert to fp16 or quantize to int8 → write metadata → check the file with the ONNX checker
and an ONNX Runtime session against the PyTorch model → move it into place and write ``FILE.json``.
Everything is written to a temp file beside the output first, so a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import torch

from anas_zoo.export.errors import ExportError
from anas_zoo.export.pipeline import (
    CHECK_BATCHES,
    ExportCheckError,
    ExportReport,
    build_metadata,
    check_data_options,
    check_precision,
    check_replaceable,
    decode_metadata,
    first_line,
    fold_checked,
    metadata_strings,
    parity,
    parity_failure,
    publish,
    resolve_model,
    runtime_accuracy,
    staging,
    writable_folder,
)
from anas_zoo.export.portable import canonicalize, portability_problems
from anas_zoo.export.quantize import latency_ms, load_images, quantize_int8
from anas_zoo.export.session import INPUT_NAME, OUTPUT_NAME, ort_session
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.static import StaticNet

log = logging.getLogger("anas_zoo.export")

__all__ = ["ExportCheckError", "ExportError", "ExportReport", "build_metadata", "read_metadata", "to_onnx"]

PRECISIONS = ("fp32", "fp16", "int8")
EXPORTERS = ("auto", "dynamo", "torchscript")
DEFAULT_OPSET = 18
#: Opsets every path supports: per-channel QDQ needs 13; the upper end is what torch.onnx emits.
MIN_OPSET = 13
MAX_OPSET = min(getattr(getattr(torch.onnx, "_constants", None), "ONNX_MAX_OPSET", 20), onnx.defs.onnx_opset_version())
SIDECAR_FORMAT = "anas_zoo.onnx/1"


# ----- input checks and model resolution ---------------------------------------------------------
def _check_options(precision: str, opset: int, batch: int, exporter: str, atol: float) -> None:
    check_precision(precision, PRECISIONS, atol)
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter '{exporter}'; choose one of {', '.join(EXPORTERS)}")
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset {opset} is not supported; choose {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET})")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ExportError(f"batch must be a positive integer, got {batch}")


def _prepare_output(output: str | Path) -> tuple[Path, Path]:
    """(output path, sidecar path) after checking that the folder exists or can be made and is writable."""
    path = Path(output).expanduser()
    if path.suffix != ".onnx":
        raise ExportError(f"output '{output}' must end in .onnx (the report goes beside it as .json)")
    if path.is_dir():
        raise ExportError(f"output '{output}' is a directory; give a file name ending in .onnx")
    writable_folder(path.parent, output)
    check_replaceable((path, path.with_suffix(".json")))
    return path, path.with_suffix(".json")


# ----- metadata ----------------------------------------------------------------------------------
def _set_metadata(model: onnx.ModelProto, metadata: dict) -> None:
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, metadata_strings(metadata))
    model.doc_string = f"{metadata['model_name']} ({metadata['precision']}) exported by anas_zoo"


def read_metadata(path: str | Path) -> dict:
    """The ``metadata_props`` of an exported file, JSON values decoded."""
    model = onnx.load(str(path), load_external_data=False)
    return decode_metadata({prop.key: prop.value for prop in model.metadata_props})


# ----- graph export ------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet_exporter():
    """Keep exporter chatter off stdout (``--json`` owns it) and silence its deprecation notices."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)  # "torchvision is not installed" notices
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        registration.setLevel(level)


def _export_dynamo(net, example, path: Path, opset: int, dynamic: bool) -> None:
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic else None
    with _quiet_exporter():
        program = torch.onnx.export(
            net, (example,), None, dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME], dynamic_shapes=dynamic_shapes, verbose=False, optimize=True,
        )
    program.save(str(path))


def _export_torchscript(net, example, path: Path, opset: int, dynamic: bool) -> None:
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic else None
    with _quiet_exporter():
        torch.onnx.export(
            net, (example,), str(path), dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME], dynamic_axes=axes, do_constant_folding=True,
        )


def export_graph(net, path: Path, *, resolution: int, batch: int, dynamic: bool, opset: int,
                 exporter: str = "auto") -> tuple[str, str | None]:
    """Write the fp32 graph of ``net`` to ``path``; returns (exporter used, reason the dynamo path was left).

    A dynamic batch axis is exported from an example batch of at least 2, so no exporter can
    specialise the batch dimension to 1. Either exporter's graph is then made portable the same way
    (:func:`anas_zoo.export.portable.canonicalize`).
    """
    example = torch.randn(max(batch, 2) if dynamic else batch, 3, resolution, resolution,
                          generator=torch.Generator().manual_seed(0))
    used, reason = _run_exporter(net, example, path, opset, dynamic, exporter)
    model = onnx.load(str(path))
    inline_initializer_identities(model)
    canonicalize(model)
    onnx.save(model, str(path))
    return used, reason


def _run_exporter(net, example, path: Path, opset: int, dynamic: bool, exporter: str) -> tuple[str, str | None]:
    """The dynamo exporter, or the TorchScript one when asked or when dynamo fails under ``auto``."""
    reason = None
    if exporter in ("auto", "dynamo"):
        try:
            _export_dynamo(net, example, path, opset, dynamic)
            return "dynamo", None
        except Exception as e:  # the dynamo exporter raises many types; each one means "use the fallback"
            if exporter == "dynamo":
                raise ExportError(f"the dynamo exporter failed: {first_line(e)}") from e
            reason = first_line(e)
            log.warning("dynamo exporter failed (%s); falling back to the TorchScript exporter", reason)
    try:
        _export_torchscript(net, example, path, opset, dynamic)
    except Exception as e:
        raise ExportError(f"the TorchScript exporter failed: {first_line(e)}") from e
    return "torchscript", reason


def inline_initializer_identities(model: onnx.ModelProto) -> int:
    """Replace ``Identity(initializer)`` nodes by a copy of the initializer; returns how many were replaced.

    The TorchScript exporter deduplicates equal weights (e.g. the zero biases of freshly folded
    convs) through Identity nodes; quantizers then no longer see those biases as constants.
    """
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    replaced = [n for n in graph.node
                if n.op_type == "Identity" and n.input[0] in initializers and n.output[0] not in outputs]
    for node in replaced:
        copy = onnx.TensorProto()
        copy.CopyFrom(initializers[node.input[0]])
        copy.name = node.output[0]
        graph.initializer.append(copy)
        graph.node.remove(node)
    return len(replaced)


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Weights and activations in float16; the graph input and output stay float32 (casts at the edges).

    The converter appends its edge casts at the end of the node list, so the graph is re-sorted.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    converted = OnnxModel(convert_float_to_float16(model, keep_io_types=True))
    converted.topological_sort()
    return converted.model


# ----- validation --------------------------------------------------------------------------------
def ort_runner(path: str | Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a float32 NCHW batch to the logits of the file at ``path`` on ONNX Runtime."""
    session = ort_session(path)
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


def _failure_summary(validation: dict) -> str:
    if validation["checker"] != "ok":
        return f"ONNX checker failed: {validation['checker']}"
    if validation["structure"] or validation["portability"]:
        return "; ".join(validation["structure"] + validation["portability"])
    return parity_failure(validation["parity"], validation["atol"], "ONNX Runtime")


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
    path, sidecar = _prepare_output(output)
    check_data_options(precision, calib_data, calib_samples, eval_data, eval_samples)
    net, cfg, name, weights = resolve_model(model, name, pretrained, checkpoint, resolution)
    report = ExportReport(path=str(path), sidecar=str(sidecar), model=name, precision=precision, opset=opset,
                          dynamic_batch=dynamic_batch, batch=None if dynamic_batch else batch,
                          resolution=net.resolution)
    metadata = build_metadata(net, cfg, name, weights, precision, opset, license)
    steps = ["fold BN", "export", *([precision] if precision != "fp32" else []), *(["check"] if check else [])]
    with staging(path.parent, path.stem, name, steps, progress) as (workdir, step):
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
            report.validation = _check_file(staged, net, report, atol, real, eval_data, eval_samples, fp32_path)
            report.passed = report.validation["passed"]
        return publish(report, {staged: path}, SIDECAR_FORMAT, keep_failed, _failure_summary, start)


def _check_file(staged: Path, net: StaticNet, report: ExportReport, atol: float, real, eval_data, eval_samples,
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
