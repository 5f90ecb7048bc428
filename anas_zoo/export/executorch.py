"""Export a zoo model (or any StaticNet) to an ExecuTorch program delegated to XNNPACK: fp32 or int8 (PT2E).

The BN-folded model is captured with ``torch.export`` (free batch axis up to :data:`MAX_BATCH`); int8
inserts the XNNPACK quantizer's observers (PT2E), calibrates them on real images and converts; then
``to_edge_transform_and_lower`` hands every supported subgraph to XNNPACK. The ``.pte`` carries the
export metadata as a constant method (:data:`METADATA_METHOD`, a JSON string), is checked through
ExecuTorch's Python runtime against PyTorch at batch 1 and 3, and gets ``FILE.json`` beside it.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from anas_zoo.data_config import DataConfig
from anas_zoo.export.errors import ExportError
from anas_zoo.export.metadata import build_metadata
from anas_zoo.export.output import file_and_sidecar, publish, staging
from anas_zoo.export.quantize import load_images
from anas_zoo.export.report import ExportReport, first_line
from anas_zoo.export.resolve import check_data_options, check_precision, fold_checked, require, resolve_model
from anas_zoo.export.validation import check_runtime, runtime_failure
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.static import StaticNet

PRECISIONS = ("fp32", "int8")
SIDECAR_FORMAT = "anas_zoo.executorch/1"
METADATA_METHOD = "anas_zoo_metadata"
#: XNNPACK plans memory for the largest batch a program accepts, so the free batch axis is bounded. (A program
#: exported with a bound of 64 rejected batches of 16 and more in ExecuTorch 1.5.1, so the bound stays small.)
MAX_BATCH = 8
EXPORTER = "torch.export + to_edge_transform_and_lower (XNNPACK)"


@contextlib.contextmanager
def _quiet():
    """Silence the deprecation notices torch.export and the lowering passes emit for this graph."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def _capture(net: torch.nn.Module, resolution: int) -> torch.export.ExportedProgram:
    example = torch.randn(2, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    return torch.export.export(net, (example,), dynamic_shapes=({0: batch},))


def _quantize(folded: torch.nn.Module, resolution: int, calib_data, config: DataConfig, samples: int):
    """(int8 exported program, what was done, the calibration images): XNNPACK PT2E static quantization."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    images, _ = load_images(calib_data, config, samples, split="train")
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    observed = prepare_pt2e(_capture(folded, resolution).module(), quantizer)
    with torch.no_grad():
        for start in range(0, len(images), MAX_BATCH):  # the captured module rejects batches above its bound
            observed(torch.from_numpy(images[start : start + MAX_BATCH]))
    quantized = convert_pt2e(observed)
    info = {
        "method": "PT2E static quantization, XNNPACKQuantizer",
        "activations": "int8 asymmetric, per-tensor",
        "weights": "int8 symmetric, per-channel",
        "calib_data": str(calib_data),
        "calib_samples": len(images),
    }
    return _capture(quantized, resolution), info, images[:3]


def _lower(program: torch.export.ExportedProgram, metadata: dict) -> bytes:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                       constant_methods={METADATA_METHOD: json.dumps(metadata, sort_keys=True)})
    return edge.to_executorch().buffer


def _program(path: str | Path):
    from executorch.runtime import Runtime

    return Runtime.get().load_program(Path(path))


def read_metadata(path: str | Path) -> dict:
    """The metadata a ``.pte`` written by :func:`to_executorch` carries (its :data:`METADATA_METHOD`)."""
    require("executorch", "executorch")
    program = _program(path)
    if METADATA_METHOD not in program.method_names:
        return {}
    return json.loads(program.load_method(METADATA_METHOD).execute([])[0])


def forward_method(path: str | Path):
    """The loaded ``forward`` method of the ``.pte`` at ``path``: ``execute([batch])`` returns ``[logits]``."""
    return _program(path).load_method("forward")


def set_threads(threads: int) -> int:
    """Size ExecuTorch's CPU thread pool (XNNPACK runs on it) to ``threads``; returns the size it reports."""
    from executorch.extension.pybindings.portable_lib import _threadpool_get_thread_count, _unsafe_reset_threadpool

    _unsafe_reset_threadpool(threads)
    return _threadpool_get_thread_count()


def runner(path: str | Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a float32 NCHW batch to the logits of the ``.pte`` at ``path`` in ExecuTorch's runtime
    (larger batches run as chunks of :data:`MAX_BATCH`)."""
    method = forward_method(path)

    def run(x: np.ndarray) -> np.ndarray:
        chunks = [x[i : i + MAX_BATCH] for i in range(0, len(x), MAX_BATCH)]
        return np.concatenate([method.execute([torch.from_numpy(c)])[0].numpy() for c in chunks])

    return run


def to_executorch(
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
    """Export ``model`` to the ExecuTorch program ``output`` (``.pte``, XNNPACK-delegated) and check it.

    Same model, weight and data arguments as :func:`anas_zoo.export.to_onnx`; the batch axis is free
    from 1 to :data:`MAX_BATCH`. ``precision``: ``fp32`` or ``int8`` (XNNPACK PT2E quantizer calibrated
    on ``calib_samples`` images of ``calib_data``). ``eval_data`` adds top-1 of fp32 and the exported
    precision, both run in ExecuTorch. A failed check raises :class:`ExportCheckError` and leaves no file
    unless ``keep_failed``. Needs the ``executorch`` extra.
    """
    start = time.perf_counter()
    check_precision(precision, PRECISIONS, atol)
    path, sidecar = file_and_sidecar(output, ".pte")
    check_data_options(precision, calib_data, calib_samples, eval_data, eval_samples)
    require("executorch", "executorch")
    net, cfg, name, weights = resolve_model(model, name, pretrained, checkpoint, resolution)
    report = ExportReport(path=str(path), sidecar=str(sidecar), model=name, precision=precision, opset=None,
                          format="executorch", exporter=EXPORTER, resolution=net.resolution)
    report.metadata = build_metadata(net, cfg, name, weights, precision, None, license, ("executorch",))
    steps = ["fold BN", *(["int8 calibration"] if precision == "int8" else []), "lower", *(["check"] if check else [])]
    with staging(path.parent, path.name, name, steps, progress) as (workdir, step), _quiet():
        step("fold BN")
        folded = fold_checked(net, report)
        real = None
        try:
            if precision == "int8":
                step("int8 calibration")
                program, report.quantization, real = _quantize(folded, net.resolution, calib_data,
                                                               resolve_data_config(net), calib_samples)
            else:
                program = _capture(folded, net.resolution)
            step("lower")
            buffers = {precision: _lower(program, report.metadata)}
            if check and eval_data is not None and precision != "fp32":
                buffers["fp32"] = _lower(_capture(folded, net.resolution), report.metadata)
        except ExportError:
            raise
        except Exception as e:  # torch.export and the lowering raise many types; each means "no program"
            raise ExportError(f"ExecuTorch lowering failed: {first_line(e)}") from e
        files = {label: workdir / f"{label}.pte" for label in buffers}
        for label, buffer in buffers.items():
            files[label].write_bytes(buffer)
        staged = files[precision]
        if check:
            step("check")
            report.validation = check_runtime(
                runner(staged), runner(files.get("fp32", staged)), net, report, atol=atol, real=real,
                eval_data=eval_data, eval_samples=eval_samples, structure=_structure_problems(staged, report.metadata))
            report.passed = report.validation["passed"]
        return publish(report, {staged: path}, SIDECAR_FORMAT, keep_failed, runtime_failure("ExecuTorch"), start)


def _structure_problems(path: Path, metadata: dict) -> list[str]:
    """The program must hold ``forward`` and the export metadata."""
    program = _program(path)
    if "forward" not in program.method_names:
        return [f"the program has no 'forward' method (methods: {sorted(program.method_names)})"]
    if read_metadata(path) != metadata:
        return [f"the program's {METADATA_METHOD} does not hold the export metadata"]
    return []
