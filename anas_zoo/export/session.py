"""Running an exported file: the graph's input and output names and the one ONNX Runtime session factory.

Export validation, int8 calibration checks and the latency harness all open sessions here, so a file is
always run with the same options.
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

INPUT_NAME, OUTPUT_NAME = "input", "logits"
#: The execution providers a session on each device asks for, in order of preference.
DEVICE_PROVIDERS = {"cpu": ("CPUExecutionProvider",), "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider")}


class ProviderUnavailableError(RuntimeError):
    """A device whose execution provider this onnxruntime build lacks."""


def ort_session(path: str | Path, threads: int = 2, device: str = "cpu", profile: str | Path | None = None):
    """An ONNX Runtime session on ``device`` with ``threads`` intra-op threads, one inter-op thread,
    sequential execution and every graph optimisation (ONNX Runtime's defaults, fixed so results compare).
    ``profile`` turns on ONNX Runtime's profiler, writing to a JSON file whose name starts with it
    (``session.end_profiling()`` closes it and returns its path)."""
    if device not in DEVICE_PROVIDERS:
        raise ValueError(f"unknown device '{device}'; allowed: {', '.join(DEVICE_PROVIDERS)}")
    providers = list(DEVICE_PROVIDERS[device])
    if providers[0] not in ort.get_available_providers():
        raise ProviderUnavailableError(f"device '{device}' requested but this onnxruntime has no {providers[0]}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile)
    return ort.InferenceSession(str(path), options, providers=providers)
