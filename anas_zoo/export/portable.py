"""Keep exported ONNX graphs portable: canonical pooling/flatten ops, default domain, static shapes but the batch.

The dynamo exporter writes global average pooling as ``ReduceMean`` over H and W and the flatten in
front of the classifier as ``Reshape``; the TorchScript exporter writes ``GlobalAveragePool`` and
``Flatten``. Readers other than ONNX Runtime handle the canonical pair best, so :func:`canonicalize`
rewrites the first form into the second after either exporter, and :func:`portability_problems`
states what a graph still does outside that contract.
"""

from __future__ import annotations

import onnx
from onnx import numpy_helper

#: Ops the dynamo exporter uses where the canonical ops say more (and every reader knows them).
NON_CANONICAL_OPS = ("ReduceMean", "Reshape")
SPATIAL_AXES = ({2, 3}, {-2, -1})


def _shapes(model: onnx.ModelProto) -> dict[str, list]:
    """Tensor name -> dims (int, or the symbol's name) from ONNX shape inference; unknown dims are None."""
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    shapes = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        if tensor.HasField("shape"):
            shapes[value.name] = [d.dim_value if d.HasField("dim_value") else d.dim_param or None
                                  for d in tensor.shape.dim]
    return shapes


def _constants(graph: onnx.GraphProto) -> dict[str, list[int]]:
    """Integer constants by name: initializers and ``Constant`` nodes (where axes and shapes live)."""
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return {name: value.reshape(-1).tolist() for name, value in values.items() if value.dtype.kind in "iu"}


def _attribute(node: onnx.NodeProto, name: str, default):
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _is_global_mean(node: onnx.NodeProto, shapes: dict, constants: dict) -> bool:
    """ReduceMean of a 4-D tensor over its two spatial axes, keeping them as size 1."""
    if node.op_type != "ReduceMean" or len(shapes.get(node.input[0], ())) != 4:
        return False
    axes = constants.get(node.input[1]) if len(node.input) > 1 else _attribute(node, "axes", None)
    return axes is not None and set(axes) in SPATIAL_AXES and _attribute(node, "keepdims", 1) == 1


def _is_flatten(node: onnx.NodeProto, shapes: dict) -> bool:
    """Reshape of an [N, C, 1, 1] tensor to [N, C]."""
    if node.op_type != "Reshape":
        return False
    before, after = shapes.get(node.input[0]), shapes.get(node.output[0])
    return before is not None and after is not None and len(before) == 4 and before[2:] == [1, 1] \
        and len(after) == 2 and after[1] == before[1]


def _drop_unused(graph: onnx.GraphProto, names: set[str]) -> None:
    """Remove the initializers and Constant nodes among ``names`` that no node reads any more."""
    read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    unused = names - read
    for tensor in [t for t in graph.initializer if t.name in unused]:
        graph.initializer.remove(tensor)
    for node in [n for n in graph.node if n.op_type == "Constant" and n.output[0] in unused]:
        graph.node.remove(node)


def canonicalize(model: onnx.ModelProto) -> dict[str, int]:
    """Rewrite global-mean ReduceMean into GlobalAveragePool and [N,C,1,1]→[N,C] Reshape into Flatten, in place.

    Nodes keep their names and outputs, so the rest of the graph is untouched. Returns how many
    nodes of each kind were rewritten.
    """
    graph = model.graph
    shapes, constants = _shapes(model), _constants(graph)
    rewritten = {"GlobalAveragePool": 0, "Flatten": 0}
    freed = set()
    for node in graph.node:
        if _is_global_mean(node, shapes, constants):
            op, attributes = "GlobalAveragePool", []
        elif _is_flatten(node, shapes):
            op, attributes = "Flatten", [onnx.helper.make_attribute("axis", 1)]
        else:
            continue
        freed.update(node.input[1:])
        node.op_type = op
        del node.input[1:]
        del node.attribute[:]
        node.attribute.extend(attributes)
        rewritten[op] += 1
    _drop_unused(graph, freed)
    return rewritten


def portability_problems(model: onnx.ModelProto) -> list[str]:
    """What keeps ``model`` from the portable contract (empty when it holds).

    The contract: only default-domain ops, none of :data:`NON_CANONICAL_OPS`, strict shape inference
    succeeds, and every tensor's shape is fully known with only the leading (batch) dim possibly symbolic.
    """
    problems = []
    domains = sorted({n.domain for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if domains:
        problems.append(f"ops outside the default domain: {', '.join(domains)}")
    non_canonical = sorted({n.op_type for n in model.graph.node if n.op_type in NON_CANONICAL_OPS})
    if non_canonical:
        problems.append(f"non-canonical ops {', '.join(non_canonical)} (expected GlobalAveragePool and Flatten)")
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(bare, check_type=True, strict_mode=True, data_prop=True)
    except Exception as e:  # noqa: BLE001  (InferenceError, ValidationError, ...)
        return [*problems, f"strict shape inference failed: {str(e).strip().splitlines()[0]}"]
    batch = [d.dim_param or d.dim_value for d in inferred.graph.input[0].type.tensor_type.shape.dim][:1]
    known = {v.name: v.type.tensor_type for v in [*inferred.graph.value_info, *inferred.graph.output]}
    for name in (name for node in inferred.graph.node for name in node.output):
        if name not in known or not known[name].HasField("shape"):
            problems.append(f"shape of '{name}' is unknown")
            continue
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in known[name].shape.dim]
        leading_ok = not dims or isinstance(dims[0], int) or dims[0] in batch
        if not leading_ok or not all(isinstance(d, int) for d in dims[1:]):
            problems.append(f"'{name}' has shape {dims}: only the batch axis may be symbolic")
    return problems[:10]
