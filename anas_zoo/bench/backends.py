"""Inference backends behind one interface: PyTorch eager, ``torch.compile``, ONNX Runtime (CPU or CUDA),
OpenVINO and ExecuTorch with XNNPACK (CPU).

:func:`prepare` turns a model into a :class:`Prepared` callable that runs one inference and returns its
latency in ms, and the same compiled model as a function from images to logits (for its accuracy). Everything slow that happens once (export, quantization, session creation, compilation,
the first call) is done inside :func:`prepare` and reported as cold start, never mixed into the samples.
The files timed are those the exporters ship (:mod:`anas_zoo.export`): int8 is ONNX Runtime's static QDQ,
NNCF's post-training quantization for OpenVINO and the XNNPACK PT2E quantizer for ExecuTorch, each
calibrated on real images. On CUDA, torch backends are timed with CUDA events around a synchronised call;
ONNX Runtime returns host outputs, so its ``run`` already waits for the device.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from anas_zoo.export import executorch as executorch_export
from anas_zoo.export import openvino as openvino_export
from anas_zoo.export import to_onnx
from anas_zoo.export.resolve import check_installed
from anas_zoo.export.session import ProviderUnavailableError, ort_session
from anas_zoo.timing import timed

BACKENDS = ("torch", "torch-compile", "ort", "openvino", "executorch")
PRECISIONS = ("fp32", "fp16", "int8")
DEVICES = ("cpu", "cuda")
#: The optional runtimes: backend -> (modules it imports per precision, the extra that installs them).
OPTIONAL = {"openvino": ({"fp32": ("openvino",), "int8": ("openvino", "nncf")}, "openvino"),
            "executorch": ({"fp32": ("executorch",), "int8": ("executorch",)}, "executorch")}


class UnsupportedConfig(ValueError):
    """A (backend, precision, device) combination this backend cannot run; recorded, not fatal."""


@dataclass
class Prepared:
    """A ready-to-time inference: ``call()`` runs one batch and returns its latency in ms; ``predict(x)`` runs the
    same session, compiled model or program on a float32 NCHW array of the prepared batch size and returns its
    logits, so accuracy is measured on exactly what was timed."""

    call: Callable[[], float]
    predict: Callable[[np.ndarray], np.ndarray]
    cold_start: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)


def set_torch_threads(intra: int, inter: int = 1) -> dict:
    """Fix torch's intra-op and inter-op pools; inter-op can only be set before the first parallel op."""
    torch.set_num_threads(intra)
    try:
        torch.set_num_interop_threads(inter)
    except RuntimeError:
        pass
    return {"torch_intra_op": torch.get_num_threads(), "torch_inter_op": torch.get_num_interop_threads()}


def check_supported(backend: str, precision: str, device: str, batch: int = 1, calib_data: str | None = None) -> None:
    """Raise ValueError for an unknown name, :class:`UnsupportedConfig` for a combination that is not measured."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}'; allowed: {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}'; allowed: {', '.join(PRECISIONS)}")
    if device not in DEVICES:
        raise ValueError(f"unknown device '{device}'; allowed: {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UnsupportedConfig("device 'cuda' requested but torch sees no CUDA GPU")
    if backend in ("torch", "torch-compile"):
        if precision == "int8":
            raise UnsupportedConfig("int8 is measured with the ort, openvino and executorch backends, not torch")
        if precision == "fp16" and device == "cpu":
            raise UnsupportedConfig("fp16 torch inference is only measured on CUDA (CPU fp16 kernels are reference code)")
    elif backend == "ort":
        if precision == "int8" and device == "cuda":
            raise UnsupportedConfig("int8 ONNX Runtime is measured on CPU only")
    else:
        if device == "cuda":
            raise UnsupportedConfig(f"the {backend} backend is measured on the CPU only")
        if precision not in OPTIONAL[backend][0]:
            raise UnsupportedConfig(f"{backend} is measured at {' and '.join(OPTIONAL[backend][0])}, not {precision}")
        if backend == "executorch" and batch > executorch_export.MAX_BATCH:
            raise UnsupportedConfig(f"batch {batch} is above the ExecuTorch export's bound "
                                    f"({executorch_export.MAX_BATCH})")
    if precision == "int8" and calib_data is None:
        raise UnsupportedConfig("int8 needs calibration images (--calib-data: an image folder or the CIFAR-10 archive)")


def require_runtime(backend: str, precision: str) -> None:
    """Fail in one line naming the extra to install when ``backend`` at ``precision`` needs a runtime that is not
    installed (checked without importing it, so a command can check every run before starting the first)."""
    if backend in OPTIONAL:
        modules, extra = OPTIONAL[backend]
        for module in modules.get(precision, ()):
            check_installed(module, extra)


def _timed_torch(model: nn.Module, x: torch.Tensor, device: str) -> Callable[[], float]:
    """One forward pass timed with perf_counter (CPU) or CUDA events after a synchronize (GPU)."""
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def call() -> float:
            with torch.inference_mode():
                torch.cuda.synchronize()
                start.record()
                model(x)
                end.record()
                end.synchronize()
            return start.elapsed_time(end)

        return call

    forward = timed(lambda: model(x))

    def call() -> float:
        with torch.inference_mode():
            return forward()

    return call


def _prepare_torch(model: nn.Module, x: torch.Tensor, precision: str, device: str, compile_: bool) -> Prepared:
    dtype = torch.float16 if precision == "fp16" else torch.float32
    model = model.to(device=device, dtype=dtype).eval()
    x = x.to(device=device, dtype=dtype)
    t0 = time.perf_counter()
    if compile_:
        model = torch.compile(model)
    call = _timed_torch(model, x, device)
    first_ms = call()
    cold = {"compile_and_first_call_s" if compile_ else "first_call_s": time.perf_counter() - t0,
            "first_call_ms": first_ms}

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(batch).to(device=device, dtype=dtype)).float().cpu().numpy()

    return Prepared(call, predict, cold, {"dtype": str(dtype).removeprefix("torch.")})


def export_onnx(model: nn.Module, path: Path, *, batch: int, resolution: int, precision: str,
                calib_data: str | None = None, exporter: str = "auto") -> dict:
    """Export ``model`` to ONNX for ONNX Runtime with a static batch (the fastest graph for one batch size).

    ``exporter`` is passed to :func:`anas_zoo.export.to_onnx`: ``auto`` is what users ship (dynamo with
    TorchScript fallback); ``torchscript`` gives the same folded graph several times faster to export.
    """
    report = to_onnx(model, path, pretrained=False, batch=batch, resolution=resolution, dynamic_batch=False,
                     precision=precision, calib_data=calib_data, exporter=exporter, check=False)
    return _export_details(report)


def _export_details(report) -> dict:
    """What a backend's ``details`` record of the file it timed: the exporter and the export report."""
    return {"exporter": f"anas_zoo.export ({report.format}: {report.exporter})",
            "export_report": _jsonable(report.to_dict())}


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def timed_session(path: Path, x: torch.Tensor, threads: int = 1, device: str = "cpu"):
    """(call, session): ``call()`` runs the ONNX file at ``path`` on ``x`` once and returns its latency in ms."""
    try:
        session = ort_session(path, threads, device)
    except ProviderUnavailableError as e:
        raise UnsupportedConfig(str(e)) from None
    feed = {session.get_inputs()[0].name: _ort_input(session, x.numpy())}

    def call() -> float:
        t = time.perf_counter_ns()
        session.run(None, feed)
        return (time.perf_counter_ns() - t) / 1e6

    return call, session


def _ort_input(session, x: np.ndarray) -> np.ndarray:
    """``x`` in the element type of the session's input (float16 for a graph converted with float16 inputs)."""
    return x.astype(_ORT_DTYPES.get(session.get_inputs()[0].type, np.float32), copy=False)


def _prepare_ort(model: nn.Module, x: torch.Tensor, precision: str, device: str, threads: int,
                 workdir: Path, calib_data: str | None, exporter: str) -> Prepared:
    path = Path(workdir) / f"model_{precision}.onnx"
    t0 = time.perf_counter()
    export = export_onnx(model, path, batch=x.shape[0], resolution=x.shape[-1], precision=precision,
                         calib_data=calib_data, exporter=exporter)
    export_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    call, session = timed_session(path, x, threads, device)
    session_s = time.perf_counter() - t0
    inp = session.get_inputs()[0]
    first_ms = call()
    details = {"providers": session.get_providers(), "input_type": inp.type, "onnx_bytes": path.stat().st_size,
               "ort_intra_op": threads, "ort_inter_op": 1, "ort_execution_mode": "sequential",
               "ort_graph_optimization": "all", **export}
    return Prepared(call, lambda batch: session.run(None, {inp.name: _ort_input(session, batch)})[0],
                    {"export_s": export_s, "session_s": session_s, "first_call_ms": first_ms}, details)


def _property_text(value) -> str:
    """An OpenVINO property as text: an element type by its short name (``f32``), anything else by ``str``."""
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


def _prepare_openvino(model: nn.Module, x: torch.Tensor, precision: str, threads: int, workdir: Path,
                      calib_data: str | None) -> Prepared:
    """The IR ``anas-export openvino`` writes, compiled for the CPU in float32 on one stream; int8 by NNCF."""
    t0 = time.perf_counter()
    report = openvino_export.to_openvino(model, Path(workdir) / "openvino", pretrained=False, resolution=x.shape[-1],
                                         precision=precision, calib_data=calib_data, check=False)
    export_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    compiled = openvino_export.compile_cpu(report.path, threads)
    request = compiled.create_infer_request()
    compile_s = time.perf_counter() - t0
    feed = {0: x.numpy()}
    call = timed(lambda: request.infer(feed))
    first_ms = call()
    output = compiled.output(0)
    config = {key: _property_text(compiled.get_property(key)) for key in
              ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT", "INFERENCE_PRECISION_HINT")}
    details = {"openvino_config": config, "ir_bytes": Path(report.path).with_suffix(".bin").stat().st_size,
               **_export_details(report)}
    return Prepared(call, lambda batch: request.infer({0: batch})[output],
                    {"export_s": export_s, "compile_s": compile_s, "first_call_ms": first_ms}, details)


def _prepare_executorch(model: nn.Module, x: torch.Tensor, precision: str, threads: int, workdir: Path,
                        calib_data: str | None) -> Prepared:
    """The XNNPACK-delegated program ``anas-export executorch`` writes, run by ExecuTorch's runtime; int8 by PT2E."""
    t0 = time.perf_counter()
    report = executorch_export.to_executorch(model, Path(workdir) / "model.pte", pretrained=False,
                                             resolution=x.shape[-1], precision=precision, calib_data=calib_data,
                                             check=False)
    export_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pool = executorch_export.set_threads(threads)
    method = executorch_export.forward_method(report.path)
    load_s = time.perf_counter() - t0
    call = timed(lambda: method.execute([x]))
    first_ms = call()
    details = {"executorch_threads": pool, "pte_bytes": Path(report.path).stat().st_size, **_export_details(report)}
    return Prepared(call, lambda batch: method.execute([torch.from_numpy(batch)])[0].numpy(),
                    {"export_s": export_s, "load_s": load_s, "first_call_ms": first_ms}, details)


def prepare(backend: str, model: nn.Module, *, batch: int, resolution: int, precision: str = "fp32",
            threads: int = 1, device: str = "cpu", workdir: Path | None = None,
            calib_data: str | None = None, exporter: str = "auto") -> Prepared:
    """Make ``model`` ready to time on ``backend``. ``workdir`` holds exported files (every backend but torch's),
    ``calib_data`` the int8 calibration images, ``exporter`` the ONNX exporter of the ort backend."""
    check_supported(backend, precision, device, batch, calib_data)
    require_runtime(backend, precision)
    model = model.eval()
    x = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    if backend in ("torch", "torch-compile"):
        return _prepare_torch(model, x, precision, device, compile_=backend == "torch-compile")
    if workdir is None:
        raise ValueError(f"the '{backend}' backend needs a workdir for its exported file")
    if backend == "ort":
        return _prepare_ort(model, x, precision, device, threads, workdir, calib_data, exporter)
    if backend == "openvino":
        return _prepare_openvino(model, x, precision, threads, workdir, calib_data)
    return _prepare_executorch(model, x, precision, threads, workdir, calib_data)
