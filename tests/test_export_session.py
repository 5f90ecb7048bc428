"""The one ONNX Runtime session factory that export validation and the latency harness share."""

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from anas_zoo.export.session import ProviderUnavailableError, ort_session


@pytest.fixture()
def relu_file(tmp_path):
    """A one-node ONNX graph (Relu) whose output is known for any input."""
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["logits"])], "relu",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 4])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 4])])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def test_a_cpu_session_runs_with_the_fixed_options(relu_file):
    session = ort_session(relu_file, threads=1)
    options = session.get_session_options()
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    x = np.array([[-1.0, 0.0, 2.0, -3.0]], dtype=np.float32)
    assert session.run(None, {"input": x})[0].tolist() == [[0.0, 0.0, 2.0, 0.0]]


def test_a_device_without_its_provider_is_refused(relu_file):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(ProviderUnavailableError, match="no CUDAExecutionProvider"):
        ort_session(relu_file, device="cuda")


def test_an_unknown_device_is_refused(relu_file):
    with pytest.raises(ValueError, match="unknown device 'tpu'; allowed: cpu, cuda"):
        ort_session(relu_file, device="tpu")


def test_a_profiled_session_writes_its_node_timings(relu_file, tmp_path):
    session = ort_session(relu_file, threads=1, profile=tmp_path / "relu")
    assert session.get_session_options().enable_profiling
    session.run(None, {"input": np.zeros((1, 4), dtype=np.float32)})
    path = Path(session.end_profiling())
    assert path.parent == tmp_path and path.name.startswith("relu")
    events = json.loads(path.read_text())
    assert any(e.get("cat") == "Node" and e["args"].get("op_name") == "Relu" for e in events)
