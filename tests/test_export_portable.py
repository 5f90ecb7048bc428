"""The portability pass: ReduceMean/Reshape become GlobalAveragePool/Flatten without changing the outputs, and
the portability check names what a graph does outside the contract (the export then fails)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_export import cifar_model

from anas_zoo.export import ExportCheckError, onnx_graph, to_onnx
from anas_zoo.export.portable import canonicalize, portability_problems


def _pooling_graph(mean_axes=(2, 3), batch="batch", width=8) -> onnx.ModelProto:
    """x[N,8,4,4] -> SE-like gate (x * mean(x)) -> global mean -> reshape to [N, 8], as the dynamo exporter writes it."""
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x", "axes"], ["se_mean"], keepdims=1),
            helper.make_node("Mul", ["x", "se_mean"], ["gated"]),
            helper.make_node("ReduceMean", ["gated", "axes"], ["pooled"], keepdims=1),
            helper.make_node("Reshape", ["pooled", "shape"], ["y"]),
        ],
        "pooling",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 8, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, width])],
        [numpy_helper.from_array(np.array(mean_axes, dtype=np.int64), "axes"),
         numpy_helper.from_array(np.array([-1, width], dtype=np.int64), "shape")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_canonicalize_rewrites_pooling_and_flatten_and_keeps_the_outputs():
    model = _pooling_graph()
    x = np.random.default_rng(0).standard_normal((3, 8, 4, 4), dtype=np.float32)
    before = _run(model, x)
    assert portability_problems(model) == ["non-canonical ops ReduceMean, Reshape (expected GlobalAveragePool and Flatten)"]

    assert canonicalize(model) == {"GlobalAveragePool": 2, "Flatten": 1}
    assert [n.op_type for n in model.graph.node] == ["GlobalAveragePool", "Mul", "GlobalAveragePool", "Flatten"]
    assert [n.output[0] for n in model.graph.node] == ["se_mean", "gated", "pooled", "y"]
    assert len(model.graph.initializer) == 0  # the axes and the target shape are no longer read
    onnx.checker.check_model(model, full_check=True)
    assert portability_problems(model) == []
    np.testing.assert_allclose(_run(model, x), before, atol=1e-6, rtol=0)  # summation order may differ


def test_a_mean_over_other_axes_is_not_global_pooling():
    model = _pooling_graph(mean_axes=(1,))
    canonicalize(model)
    assert [n.op_type for n in model.graph.node].count("ReduceMean") == 2


def test_portability_names_ops_outside_the_default_domain():
    model = _pooling_graph()
    canonicalize(model)
    model.graph.node[1].domain = "com.microsoft"
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    problems = portability_problems(model)
    assert problems[0] == "ops outside the default domain: com.microsoft"
    assert "shape of 'gated' is unknown" in problems


def test_portability_names_symbolic_dims_beyond_the_batch():
    model = _pooling_graph()
    canonicalize(model)
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    assert portability_problems(model) == ["'gated' has shape ['batch', 8, 'height', 4]: only the batch axis may be symbolic"]


def test_an_export_that_is_not_portable_fails_its_check(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_graph, "canonicalize", lambda model: {})
    with pytest.raises(ExportCheckError, match="non-canonical ops ReduceMean, Reshape"):
        to_onnx(cifar_model(), tmp_path / "m.onnx", exporter="dynamo")
    assert list(tmp_path.iterdir()) == []
