"""Write a PyTorch net's ONNX graph: the dynamo exporter with a TorchScript fallback, made portable; fp16.

Shared by :func:`~anas_zoo.export.onnx.to_onnx` and the OpenVINO exporter (which converts from this
graph), so neither depends on the other. The example batch, the exporter's chatter and the fallback
reason are handled here; the file written is the plain fp32 graph, without metadata.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from pathlib import Path

import onnx
import torch

from anas_zoo.export.errors import ExportError
from anas_zoo.export.portable import canonicalize
from anas_zoo.export.report import first_line
from anas_zoo.export.session import INPUT_NAME, OUTPUT_NAME
from anas_zoo.fileio import is_disk_full

log = logging.getLogger("anas_zoo.export")

EXPORTERS = ("auto", "dynamo", "torchscript")
DEFAULT_OPSET = 18
#: Opsets every path supports: per-channel QDQ needs 13; the upper end is what torch.onnx emits.
MIN_OPSET = 13
MAX_OPSET = min(getattr(getattr(torch.onnx, "_constants", None), "ONNX_MAX_OPSET", 20), onnx.defs.onnx_opset_version())


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
        except Exception as e:  # the dynamo exporter raises many types; each, but a full disk, means "use the fallback"
            if is_disk_full(e):  # the other exporter would fail the same way
                raise
            if exporter == "dynamo":
                raise ExportError(f"the dynamo exporter failed: {first_line(e)}") from e
            reason = first_line(e)
            log.warning("dynamo exporter failed (%s); falling back to the TorchScript exporter", reason)
    try:
        _export_torchscript(net, example, path, opset, dynamic)
    except Exception as e:
        if is_disk_full(e):  # the CLI names the file and the reason
            raise
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
