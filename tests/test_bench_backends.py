"""Backends: real torch and ONNX Runtime sessions on a tiny model, refusals of unsupported settings."""

import numpy as np
import pytest
import torch

from anas_zoo.bench.backends import UnsupportedConfig, prepare
from anas_zoo.space import get_space
from anas_zoo.static import StaticNet


@pytest.fixture(scope="module")
def tiny():
    return StaticNet(get_space("attentivenas").min_arch(), num_classes=10, resolution=32).eval()


def test_torch_and_ort_time_real_inference_and_predict_with_what_they_time(tiny, tmp_path):
    torch_run = prepare("torch", tiny, batch=2, resolution=32, threads=1)
    assert torch_run.cold_start["first_call_ms"] > 0 and torch_run.call() > 0
    ort_run = prepare("ort", tiny, batch=2, resolution=32, threads=1, workdir=tmp_path, exporter="torchscript")
    assert ort_run.details["providers"] == ["CPUExecutionProvider"]
    assert ort_run.details["ort_intra_op"] == 1 and ort_run.details["ort_execution_mode"] == "sequential"
    assert ort_run.cold_start["export_s"] > 0 and ort_run.cold_start["session_s"] > 0
    assert ort_run.call() > 0
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = tiny(x).numpy()
    assert np.allclose(torch_run.predict(x.numpy()), expected, atol=1e-6)
    assert np.allclose(ort_run.predict(x.numpy()), expected, atol=1e-4)


def test_unsupported_settings_are_refused(tiny, tmp_path):
    with pytest.raises(UnsupportedConfig, match="int8"):
        prepare("torch", tiny, batch=1, resolution=32, precision="int8")
    with pytest.raises(UnsupportedConfig, match="fp16"):
        prepare("torch", tiny, batch=1, resolution=32, precision="fp16")
    with pytest.raises(UnsupportedConfig, match="calibration"):
        prepare("ort", tiny, batch=1, resolution=32, precision="int8", workdir=tmp_path)
    with pytest.raises(ValueError, match="allowed: torch, torch-compile, ort, openvino, executorch"):
        prepare("tensorrt", tiny, batch=1, resolution=32)


@pytest.mark.parametrize("backend, settings, message", [
    ("openvino", {"precision": "fp16"}, "openvino is measured at fp32 and int8, not fp16"),
    ("executorch", {"precision": "fp16"}, "executorch is measured at fp32 and int8, not fp16"),
    ("executorch", {"batch": 9}, "batch 9 is above the ExecuTorch export's bound"),
    ("openvino", {"precision": "int8"}, "int8 needs calibration images"),
    ("executorch", {"precision": "int8"}, "int8 needs calibration images"),
    ("openvino", {"device": "cuda"}, "CPU only|no CUDA GPU"),
])
def test_unsupported_settings_of_the_new_runtimes_are_refused_before_any_export(tiny, tmp_path, backend, settings,
                                                                                  message):
    with pytest.raises(UnsupportedConfig, match=message):
        prepare(backend, tiny, resolution=32, workdir=tmp_path, **{"batch": 1, **settings})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_cuda_without_gpu_is_refused(tiny):
    with pytest.raises(UnsupportedConfig, match="no CUDA GPU"):
        prepare("torch", tiny, batch=1, resolution=32, device="cuda")
