"""Export a zoo model (or any StaticNet) to OpenVINO IR: fp32, fp16 weights, or int8 by NNCF post-training quantization.

The pipeline is the ONNX one up to the portable fp32 graph (BN folded, canonical ops), which OpenVINO
converts; int8 is then calibrated by NNCF on real images. The IR carries the same metadata as an ONNX
export in its ``rt_info`` (under ``anas_zoo``), is checked in OpenVINO's CPU runtime against PyTorch
at batch 1 and 3, and lands in ``DIR/model.xml`` + ``DIR/model.bin`` with the report ``DIR/model.json``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from anas_zoo.data_config import DataConfig
from anas_zoo.export.errors import ExportError
from anas_zoo.export.metadata import build_metadata, decode_metadata, metadata_strings
from anas_zoo.export.onnx_graph import DEFAULT_OPSET, export_graph
from anas_zoo.export.output import check_replaceable, publish, staging, writable_folder
from anas_zoo.export.quantize import load_images
from anas_zoo.export.report import ExportReport
from anas_zoo.export.resolve import check_data_options, check_precision, fold_checked, require, resolve_model
from anas_zoo.export.session import INPUT_NAME, OUTPUT_NAME
from anas_zoo.export.validation import check_runtime, runtime_failure
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.static import StaticNet

PRECISIONS = ("fp32", "fp16", "int8")
SIDECAR_FORMAT = "anas_zoo.openvino/1"
RT_INFO_KEY = "anas_zoo"
STEM = "model"
#: The CPU plugin runs in float32 (it would otherwise pick bf16 on CPUs that have it) on one stream: the checks
#: and the latency harness see the same compiled model.
CHECK_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 2, "NUM_STREAMS": 1}


def _prepare_output(output: str | Path) -> tuple[Path, Path, Path]:
    """(model.xml, model.bin, model.json) in the output folder, after checking it can hold them."""
    folder = Path(output).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"output '{output}' is a file; give a folder for model.xml, model.bin and model.json")
    writable_folder(folder, output)
    files = tuple(folder / f"{STEM}{suffix}" for suffix in (".xml", ".bin", ".json"))
    check_replaceable(files)
    return files


def read_metadata(path: str | Path) -> dict:
    """The ``anas_zoo`` rt_info of an exported IR (``model.xml``), JSON values decoded."""
    ov = require("openvino", "openvino")
    return _metadata_of(ov.Core().read_model(str(path)))


def _metadata_of(ov_model) -> dict:
    info = ov_model.get_rt_info()
    if RT_INFO_KEY not in info:
        return {}
    return decode_metadata({key: value.astype(str) for key, value in info[RT_INFO_KEY].items()})


def compile_cpu(model, threads: int = 2, profile: bool = False):
    """``model`` (an ``ov.Model`` or IR path) compiled for the CPU with :data:`CHECK_CONFIG` and ``threads`` threads;
    ``profile`` turns on per-layer performance counters (``request.get_profiling_info()``)."""
    ov = require("openvino", "openvino")
    return ov.Core().compile_model(model, "CPU", {**CHECK_CONFIG, "INFERENCE_NUM_THREADS": threads,
                                                  "PERF_COUNT": profile})


def runner(model, threads: int = 2) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a float32 NCHW batch to the logits of ``model`` (an ``ov.Model`` or IR path) on the CPU."""
    compiled = compile_cpu(model, threads)
    output = compiled.output(OUTPUT_NAME)
    return lambda x: compiled(x)[output]


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send what NNCF writes to stdout (its progress bars and its log handler) to stderr, so that stdout holds
    only the caller's output (``anas-export openvino --json`` prints one JSON document)."""
    handlers = [h for h in logging.getLogger("nncf").handlers if type(h) is logging.StreamHandler]
    streams = [h.stream for h in handlers]
    for handler in handlers:
        handler.setStream(sys.stderr)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for handler, stream in zip(handlers, streams):
            handler.setStream(stream)


def _quantize(ov_model, calib_data, config: DataConfig, samples: int):
    """(int8 ``ov.Model``, what was done, the calibration images): NNCF post-training quantization."""
    nncf = require("nncf", "openvino")
    images, _ = load_images(calib_data, config, samples, split="train")
    dataset = nncf.Dataset([images[i : i + 1] for i in range(len(images))])
    with _stdout_to_stderr():
        quantized = nncf.quantize(ov_model, dataset, preset=nncf.QuantizationPreset.MIXED, subset_size=len(images))
    info = {
        "method": "NNCF post-training quantization (OpenVINO backend)",
        "preset": "mixed: int8 symmetric per-channel weights, int8 asymmetric per-tensor activations",
        "calib_data": str(calib_data),
        "calib_samples": len(images),
    }
    return quantized, info, images[:3]


def _structure_problems(ov_model, metadata: dict, resolution: int, num_classes: int) -> list[str]:
    """Differences between the IR and the contract: one ``input`` [?,3,R,R] -> ``logits`` [?,C], ``metadata`` in rt_info."""
    if _metadata_of(ov_model) != metadata:
        return [f"the IR's rt_info['{RT_INFO_KEY}'] does not hold the export metadata"]
    inputs, outputs = ov_model.inputs, ov_model.outputs
    names = [sorted(i.get_names()) for i in inputs], [sorted(o.get_names()) for o in outputs]
    if names != ([[INPUT_NAME]], [[OUTPUT_NAME]]):
        return [f"IR signature is {names[0]} -> {names[1]}, expected ['{INPUT_NAME}'] -> ['{OUTPUT_NAME}']"]
    problems = []
    shapes = {"input": (inputs[0].get_partial_shape(), [3, resolution, resolution]),
              "output": (outputs[0].get_partial_shape(), [num_classes])}
    for label, (shape, expected) in shapes.items():
        if shape[0].is_static or [d.get_length() if d.is_static else None for d in list(shape)[1:]] != expected:
            problems.append(f"{label} shape {shape} is not [?, {', '.join(map(str, expected))}]")
    return problems


def to_openvino(
    model: str | StaticNet,
    output: str | Path,
    *,
    name: str | None = None,
    pretrained: bool | None = None,
    checkpoint: str | Path | None = None,
    resolution: int | None = None,
    precision: str = "fp32",
    calib_data: str | Path | None = None,
    calib_samples: int = 256,
    eval_data: str | Path | None = None,
    eval_samples: int = 1000,
    check: bool = True,
    atol: float = 1e-4,
    keep_failed: bool = False,
    license: str | None = None,
    progress: bool = False,
) -> ExportReport:
    """Export ``model`` to OpenVINO IR in the folder ``output`` (``model.xml``, ``model.bin``, ``model.json``).

    Same model, weight and data arguments as :func:`anas_zoo.export.to_onnx`; the batch axis is free.
    ``precision``: ``fp32``, ``fp16`` (weights stored as float16) or ``int8`` (NNCF post-training
    quantization calibrated on ``calib_samples`` images of ``calib_data``). ``eval_data`` adds top-1 of
    fp32 and the exported precision. A failed check raises :class:`ExportCheckError` and leaves no file
    unless ``keep_failed``. Needs the ``openvino`` extra.
    """
    start = time.perf_counter()
    check_precision(precision, PRECISIONS, atol)
    xml, bin_, sidecar = _prepare_output(output)
    check_data_options(precision, calib_data, calib_samples, eval_data, eval_samples)
    ov = require("openvino", "openvino")
    if precision == "int8":
        require("nncf", "openvino")
    net, cfg, name, weights = resolve_model(model, name, pretrained, checkpoint, resolution)
    report = ExportReport(path=str(xml), sidecar=str(sidecar), model=name, precision=precision, opset=DEFAULT_OPSET,
                          format="openvino", resolution=net.resolution)
    runtimes = ("openvino", "nncf") if precision == "int8" else ("openvino",)
    report.metadata = build_metadata(net, cfg, name, weights, precision, DEFAULT_OPSET, license, runtimes)
    steps = ["fold BN", "export", "convert", *(["int8 calibration"] if precision == "int8" else []),
             *(["check"] if check else [])]
    with staging(xml.parent, STEM, name, steps, progress) as (workdir, step):
        step("fold BN")
        folded = fold_checked(net, report)
        step("export")
        onnx_path = workdir / "fp32.onnx"
        report.exporter, report.fallback_reason = export_graph(
            folded, onnx_path, resolution=net.resolution, batch=1, dynamic=True, opset=DEFAULT_OPSET)
        step("convert")
        fp32_model = ov.convert_model(str(onnx_path))
        final_model, real = fp32_model, None
        if precision == "int8":
            step("int8 calibration")
            final_model, report.quantization, real = _quantize(fp32_model.clone(), calib_data,
                                                               resolve_data_config(net), calib_samples)
        for key, value in metadata_strings(report.metadata).items():
            final_model.set_rt_info(value, [RT_INFO_KEY, key])
        staged_xml = workdir / xml.name
        ov.save_model(final_model, str(staged_xml), compress_to_fp16=precision == "fp16")
        if check:
            step("check")
            saved = ov.Core().read_model(str(staged_xml))
            report.validation = check_runtime(
                runner(saved), runner(fp32_model), net, report, atol=atol, real=real, eval_data=eval_data,
                eval_samples=eval_samples, structure=_structure_problems(saved, report.metadata, net.resolution, net.num_classes))
            report.validation["compile_config"] = dict(CHECK_CONFIG)  # how to compile it to get these numbers
            report.passed = report.validation["passed"]
        staged = {staged_xml: xml, staged_xml.with_suffix(".bin"): bin_}
        return publish(report, staged, SIDECAR_FORMAT, keep_failed, runtime_failure("OpenVINO"), start)
