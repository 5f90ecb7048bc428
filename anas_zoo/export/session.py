"""Running an exported file: the graph's input and output names and a CPU ONNX Runtime session."""

from __future__ import annotations

from pathlib import Path

INPUT_NAME, OUTPUT_NAME = "input", "logits"


def ort_session(path: str | Path, threads: int = 2):
    """A CPU ONNX Runtime session with ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
