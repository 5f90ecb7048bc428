"""Export zoo models to validated ONNX files (fp32, fp16, static int8): see :func:`to_onnx`."""

from anas_zoo.export.fold import fold_batchnorm, optimize_for_inference
from anas_zoo.export.onnx import (
    PRECISIONS,
    ExportCheckError,
    ExportError,
    ExportReport,
    read_metadata,
    to_onnx,
)
from anas_zoo.export.onnx_graph import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET

__all__ = [
    "DEFAULT_OPSET",
    "MAX_OPSET",
    "MIN_OPSET",
    "PRECISIONS",
    "ExportCheckError",
    "ExportError",
    "ExportReport",
    "fold_batchnorm",
    "optimize_for_inference",
    "read_metadata",
    "to_onnx",
]
