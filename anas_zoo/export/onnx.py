"""Export a zoo model (or any StaticNet) to a validated ONNX file: fp32, fp16 or static int8.

The pipeline is: resolve the model and its weights → fold BatchNorm into the convs (checked in
PyTorch) → export with the dynamo exporter, falling back to the TorchScript exporter with a logged
reason → convert to fp16 or quantize to int8 → write metadata → check the file with the ONNX checker
and an ONNX Runtime session against the PyTorch model → move it into place and write ``FILE.json``.
Everything is written to a temp file beside the output first, so a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from tqdm import tqdm

from anas_zoo import flops
from anas_zoo.export.errors import ExportError
from anas_zoo.export.fold import fold_batchnorm
from anas_zoo.export.quantize import accuracy, check_data_source, latency_ms, load_images, quantize_int8
from anas_zoo.export.session import INPUT_NAME, OUTPUT_NAME, ort_session
from anas_zoo.fileio import folder_lock, sha256_of
from anas_zoo.static import StaticNet
from anas_zoo.zoo import find_weights, get_entry, imagenet_preprocessing, load, load_into, split_name

log = logging.getLogger("anas_zoo.export")

PRECISIONS = ("fp32", "fp16", "int8")
EXPORTERS = ("auto", "dynamo", "torchscript")
DEFAULT_OPSET = 18
#: Opsets every path supports: per-channel QDQ needs 13; the upper end is what torch.onnx emits.
MIN_OPSET = 13
MAX_OPSET = min(getattr(getattr(torch.onnx, "_constants", None), "ONNX_MAX_OPSET", 20), onnx.defs.onnx_opset_version())
MAX_RESOLUTION = 1024
CHECK_BATCHES = (1, 3)
SIDECAR_FORMAT = "anas_zoo.onnx/1"


class ExportCheckError(ExportError):
    """The exported file failed validation; ``report`` says how."""

    def __init__(self, message: str, report: ExportReport):
        super().__init__(message)
        self.report = report


@dataclass
class ExportReport:
    """What :func:`to_onnx` wrote and how it checked it (also the content of the sidecar ``FILE.json``)."""

    path: str
    sidecar: str
    model: str
    precision: str
    opset: int
    exporter: str = ""
    fallback_reason: str | None = None
    dynamic_batch: bool = True
    batch: int | None = None
    resolution: int = 0
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    bn_folded: int = 0
    fold_max_abs_diff: float | None = None
    metadata: dict = field(default_factory=dict)
    quantization: dict | None = None
    validation: dict | None = None
    passed: bool | None = None
    error: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


# ----- input checks and model resolution ---------------------------------------------------------
def _check_options(precision: str, opset: int, batch: int, exporter: str, atol: float) -> None:
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter '{exporter}'; choose one of {', '.join(EXPORTERS)}")
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset {opset} is not supported; choose {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET})")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ExportError(f"batch must be a positive integer, got {batch}")
    if not atol > 0:
        raise ExportError(f"atol must be positive, got {atol}")


def _check_resolution(resolution: int, space) -> None:
    """The input side must leave at least one pixel after the net's total stride, and stay sane in size."""
    stride = space.stem_stride
    for stage in space.stages:
        stride *= stage.stride
    if isinstance(resolution, bool) or not isinstance(resolution, int) or not stride <= resolution <= MAX_RESOLUTION:
        raise ExportError(
            f"resolution {resolution} is not possible for a '{space.name}' model: "
            f"use an integer from {stride} (its total stride) to {MAX_RESOLUTION}"
        )


def _prepare_output(output: str | Path) -> tuple[Path, Path]:
    """(output path, sidecar path) after checking that the folder exists or can be made and is writable."""
    path = Path(output).expanduser()
    if path.suffix != ".onnx":
        raise ExportError(f"output '{output}' must end in .onnx (the report goes beside it as .json)")
    if path.is_dir():
        raise ExportError(f"output '{output}' is a directory; give a file name ending in .onnx")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create the folder of output '{output}': {e.strerror}") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ExportError(f"output folder '{path.parent}' is not writable")
    _check_targets(path, path.with_suffix(".json"))
    return path, path.with_suffix(".json")


def _check_targets(*targets: Path) -> None:
    """Each target is absent or a writable file, so that renaming the staged files onto them cannot fail half-way."""
    for target in targets:
        if target.is_dir():
            raise ExportError(f"'{target}' is a directory; the export writes a file there (remove or rename it)")
        if target.exists() and not os.access(target, os.W_OK):
            raise ExportError(f"'{target}' exists and is not writable")


def _resolve_model(
    model: str | StaticNet, name: str | None, pretrained: bool | None, checkpoint, resolution: int | None
) -> tuple[StaticNet, dict, str, str]:
    """(eval-mode copy of the model at ``resolution``, its metadata record, its name, where its weights came from).

    The caller's model is never modified (weights, mode).
    """
    if isinstance(model, str):
        entry = get_entry(model)
        tag = split_name(model)[1]
        if pretrained is None:
            pretrained = checkpoint is None and bool(entry.weights) and find_weights(model) is not None
            if not pretrained and checkpoint is None:
                log.warning("no local pretrained weights for '%s': exporting random initial weights", model)
        net = load(model, pretrained=pretrained)
        weights = f"pretrained {entry.name}.{entry.weight(tag).tag}" if pretrained else "random-init"
        name = name or model
    elif isinstance(model, StaticNet):
        net = copy.deepcopy(model)
        cfg = getattr(net, "pretrained_cfg", {})
        weights = "loaded" if "sha256" in cfg else "user-supplied"
        name = name or cfg.get("name") or "staticnet"
    else:
        raise ExportError(f"model must be a registered model name or a StaticNet, got {type(model).__name__}")
    if resolution is not None and resolution != net.resolution:
        _check_resolution(resolution, net.space)
        resized = StaticNet(net.arch, net.space, net.num_classes, resolution=resolution)
        resized.load_state_dict(net.state_dict(), strict=True)
        resized.pretrained_cfg = dict(getattr(net, "pretrained_cfg", {}))
        net = resized
    if checkpoint is not None:
        record = load_into(net, _checkpoint_record(checkpoint))
        weights = f"checkpoint {Path(checkpoint).name} (sha256 {record['sha256'][:12]})"
    net.eval()
    return net, dict(getattr(net, "pretrained_cfg", {})), name, weights


def _checkpoint_record(checkpoint) -> Path:
    """The JSON record of a weight set given as its ``.json`` or its ``.safetensors`` file."""
    path = Path(checkpoint).expanduser()
    record = path.with_suffix(".json") if path.suffix == ".safetensors" else path
    if path.is_file() and not record.is_file():
        raise ExportError(f"checkpoint '{checkpoint}' has no metadata record '{record}' beside it; a weight set is "
                          "NAME.safetensors with its NAME.json (written by anas-zoo extract, import-official or publish)")
    if not record.is_file():
        raise ExportError(f"checkpoint '{checkpoint}' not found (give the .json record or .safetensors of a weight set)")
    return record


# ----- metadata ----------------------------------------------------------------------------------
def _versions() -> dict:
    import onnxruntime

    from anas_zoo import __version__

    return {"anas_zoo": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}


def build_metadata(net: StaticNet, cfg: dict, name: str, weights: str, precision: str, opset: int,
                   license: str | None = None) -> dict:
    """The model's description carried in ``metadata_props`` and the sidecar (JSON-able values)."""
    macs, params = flops.count(net.arch, net.space, net.num_classes, net.resolution)
    preprocessing = dict(cfg.get("preprocessing") or imagenet_preprocessing(net.resolution))
    preprocessing["resolution"] = net.resolution
    if license is None:
        license = cfg.get("license", "unspecified") if weights != "random-init" else "apache-2.0 (random weights)"
    return {
        "model_name": name,
        "weights": weights,
        "license": license,
        "space": net.space.name,
        "genome": net.arch.to_dict(),
        "resolution": net.resolution,
        "num_classes": net.num_classes,
        "class_labels": list(cfg["classes"]) if cfg.get("classes") else None,
        "preprocessing": preprocessing,
        "macs": macs,
        "params": params,
        "precision": precision,
        "opset": opset,
        "input": {"name": INPUT_NAME, "layout": "NCHW", "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "dtype": "float32"},
        "versions": _versions(),
    }


def _set_metadata(model: onnx.ModelProto, metadata: dict) -> None:
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    model.doc_string = f"{metadata['model_name']} ({metadata['precision']}) exported by anas_zoo"


def read_metadata(path: str | Path) -> dict:
    """The ``metadata_props`` of an exported file, JSON values decoded."""
    model = onnx.load(str(path), load_external_data=False)
    out = {}
    for prop in model.metadata_props:
        try:
            out[prop.key] = json.loads(prop.value)
        except json.JSONDecodeError:
            out[prop.key] = prop.value
    return out


# ----- graph export ------------------------------------------------------------------------------
def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


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
    specialise the batch dimension to 1.
    """
    example = torch.randn(max(batch, 2) if dynamic else batch, 3, resolution, resolution,
                          generator=torch.Generator().manual_seed(0))
    reason = None
    if exporter in ("auto", "dynamo"):
        try:
            _export_dynamo(net, example, path, opset, dynamic)
            return "dynamo", None
        except Exception as e:  # the dynamo exporter raises many types; each one means "use the fallback"
            if exporter == "dynamo":
                raise ExportError(f"the dynamo exporter failed: {_first_line(e)}") from e
            reason = _first_line(e)
            log.warning("dynamo exporter failed (%s); falling back to the TorchScript exporter", reason)
    try:
        _export_torchscript(net, example, path, opset, dynamic)
    except Exception as e:
        raise ExportError(f"the TorchScript exporter failed: {_first_line(e)}") from e
    model = onnx.load(str(path))
    if inline_initializer_identities(model):
        onnx.save(model, str(path))
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


def compare(reference: np.ndarray, actual: np.ndarray) -> dict:
    """max/mean |diff| and top-1 agreement of two logit batches."""
    diff = np.abs(reference.astype(np.float64) - actual.astype(np.float64))
    return {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "top1_agreement": float((reference.argmax(1) == actual.argmax(1)).mean()),
        "finite": bool(np.isfinite(actual).all()),
    }


def validate(path: Path, reference: torch.nn.Module, *, precision: str, atol: float, batches: Sequence[int],
             resolution: int, num_classes: int, dynamic: bool, real: np.ndarray | None = None) -> dict:
    """ONNX checker (full), graph signature, then ONNX Runtime vs PyTorch at each batch on random/real inputs.

    fp32 passes when every max |diff| ≤ ``atol``; fp16 and int8 report their differences and pass when the
    outputs are finite (their agreement is a measurement, not a pass/fail criterion).
    """
    result = {"checker": None, "structure": [], "parity": [], "atol": atol if precision == "fp32" else None}
    try:
        onnx.checker.check_model(str(path), full_check=True)
        result["checker"] = "ok"
    except Exception as e:  # noqa: BLE001  (checker raises ValidationError, InferenceError, ...)
        result["checker"] = _first_line(e)
        result["passed"] = False
        return result
    model = onnx.load(str(path))
    result["structure"] = _structure_problems(model, None if dynamic else batches[0], resolution, num_classes)
    session = ort_session(path)
    largest = max(batches)
    inputs = {"random": np.random.default_rng(0).standard_normal((largest, 3, resolution, resolution), dtype=np.float32)}
    if real is not None and len(real) >= largest:
        inputs["real"] = np.ascontiguousarray(real[:largest], dtype=np.float32)
    # One PyTorch pass over all inputs gives the reference rows for every batch size.
    with torch.inference_mode():
        expected_all = reference(torch.from_numpy(np.concatenate(list(inputs.values())))).numpy()
    passed = not result["structure"]
    for batch in batches:
        for k, (kind, x) in enumerate(inputs.items()):
            expected = expected_all[k * largest : k * largest + batch]
            got = session.run([OUTPUT_NAME], {INPUT_NAME: x[:batch]})[0]
            if got.shape != expected.shape:
                row = {"input": kind, "batch": batch, "max_abs_diff": float("inf"), "mean_abs_diff": float("inf"),
                       "top1_agreement": 0.0, "finite": False, "shape": list(got.shape), "passed": False}
                passed = False
                result["parity"].append(row)
                continue
            row = {"input": kind, "batch": batch, **compare(expected, got)}
            ok = row["finite"]
            if precision == "fp32":
                ok = ok and row["max_abs_diff"] <= atol
            row["passed"] = bool(ok)
            passed = passed and ok
            result["parity"].append(row)
    result["passed"] = passed
    return result


def _failure_summary(validation: dict) -> str:
    if validation["checker"] != "ok":
        return f"ONNX checker failed: {validation['checker']}"
    if validation["structure"]:
        return "; ".join(validation["structure"])
    bad = [r for r in validation["parity"] if not r["passed"]]
    worst = max(bad, key=lambda r: r["max_abs_diff"])
    limit = f" > atol {validation['atol']:g}" if validation["atol"] is not None else " (non-finite or wrong shape)"
    return (f"ONNX Runtime differs from PyTorch: max |diff| {worst['max_abs_diff']:.3g}{limit} "
            f"on {worst['input']} input at batch {worst['batch']}")


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
    if precision == "int8" and calib_data is None:
        raise ExportError("int8 needs calibration images: pass calib_data (an image folder or the CIFAR-10 archive)")
    for role, source, samples in (("calibration", calib_data if precision == "int8" else None, calib_samples),
                                  ("evaluation", eval_data, eval_samples)):
        if source is not None:

            check_data_source(source, role)
            if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
                raise ExportError(f"{role} samples must be a positive integer, got {samples}")
    net, cfg, name, weights = _resolve_model(model, name, pretrained, checkpoint, resolution)
    report = ExportReport(path=str(path), sidecar=str(sidecar), model=name, precision=precision, opset=opset,
                          dynamic_batch=dynamic_batch, batch=None if dynamic_batch else batch,
                          resolution=net.resolution)
    metadata = build_metadata(net, cfg, name, weights, precision, opset, license)
    steps = ["fold BN", "export", *([precision] if precision != "fp32" else []), *(["check"] if check else [])]
    bar = tqdm(total=len(steps), desc=f"export {name}", unit="step", disable=None if progress else True)
    workdir = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.stem}."))
    try:
        bar.set_postfix_str("fold BN")
        folded, report.bn_folded = fold_batchnorm(net)
        probe = torch.randn(1, 3, net.resolution, net.resolution, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            report.fold_max_abs_diff = float((folded(probe) - net(probe)).abs().max())
        bar.update()

        bar.set_postfix_str("export")
        fp32_path = workdir / "fp32.onnx"
        report.exporter, report.fallback_reason = export_graph(
            folded, fp32_path, resolution=net.resolution, batch=batch, dynamic=dynamic_batch, opset=opset,
            exporter=exporter)
        bar.update()

        real = None
        if precision == "int8":

            bar.set_postfix_str("int8 calibration")
            final_model, report.quantization, real = quantize_int8(
                fp32_path, workdir / "int8.onnx", calib_data, cfg=metadata, samples=calib_samples,
                exclude_nodes=exclude_nodes, batch=None if dynamic_batch else batch)
            bar.update()
        elif precision == "fp16":
            bar.set_postfix_str("fp16")
            final_model = to_fp16(onnx.load(str(fp32_path)))
            bar.update()
        else:
            final_model = onnx.load(str(fp32_path))
        _set_metadata(final_model, metadata)
        report.metadata = metadata
        staged = workdir / "final.onnx"
        onnx.save(final_model, str(staged))

        if check:
            bar.set_postfix_str("check")
            report.validation = _check_file(staged, net, report, atol, real, eval_data, eval_samples, fp32_path,
                                            metadata)
            report.passed = report.validation["passed"]
            bar.update()
        report.sha256, report.size_bytes = sha256_of(staged), staged.stat().st_size
        if report.passed is False:
            report.error = _failure_summary(report.validation)
            if not keep_failed:
                report.path = report.sidecar = ""
                raise ExportCheckError(f"{name}: {report.error}; no file written (keep_failed keeps it)", report)
        report.seconds = round(time.perf_counter() - start, 2)
        sidecar_doc = {"format": SIDECAR_FORMAT, "file": path.name, **report.to_dict()}
        staged_sidecar = workdir / "sidecar.json"
        staged_sidecar.write_text(json.dumps(sidecar_doc, indent=2, default=str) + "\n")
        with folder_lock(path.parent):  # a concurrent export to the same output moves its pair before or after ours
            _check_targets(path, sidecar)
            os.replace(staged, path)
            os.replace(staged_sidecar, sidecar)
        if report.passed is False:
            raise ExportCheckError(f"{name}: {report.error}; kept {path} as asked", report)
        return report
    finally:
        bar.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _check_file(staged: Path, net: StaticNet, report: ExportReport, atol: float, real, eval_data, eval_samples,
                fp32_path: Path, metadata: dict) -> dict:
    """Validation of the staged file, plus accuracy on labelled data and int8 vs fp32 latency when asked."""
    batches = CHECK_BATCHES if report.dynamic_batch else (report.batch,)
    if real is None and eval_data is not None:

        real = load_images(eval_data, metadata, max(batches), split="test")[0]
    validation = validate(staged, net, precision=report.precision, atol=atol, batches=batches,
                          resolution=net.resolution, num_classes=net.num_classes, dynamic=report.dynamic_batch,
                          real=real)
    if validation.get("checker") != "ok":
        return validation
    if eval_data is not None:

        files = {"fp32": fp32_path, report.precision: staged}
        validation["accuracy"] = {
            label: accuracy(file, eval_data, metadata, eval_samples, batch=report.batch) for label, file in files.items()
        }
    if report.precision == "int8":

        validation["latency_ms"] = {label: latency_ms(file, net.resolution, batch=report.batch or 1)
                                    for label, file in (("fp32", fp32_path), ("int8", staged))}
    return validation
