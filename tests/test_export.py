"""fp32 ONNX export of every registered model: BN folded, dynamic batch, portable op set, metadata, parity in
ONNX Runtime and OpenVINO, failure paths.

Each model is exported once per session (TorchScript exporter; one model of each search space through the
dynamo exporter, so both paths are covered in both). Weights get non-trivial BN statistics so the parity
checks compare O(1) logits.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from export_fixtures import spread_weights
from torch import nn

import anas_zoo
from anas_zoo import flops
from anas_zoo.export import ExportCheckError, ExportError, fold_batchnorm, onnx_graph, read_metadata, to_onnx
from anas_zoo.export.openvino import compile_cpu
from anas_zoo.static import SqueezeExcite, StaticNet
from anas_zoo.zoo import get_entry

DYNAMO_MODEL = "attentivenas_a0"
DYNAMO_MODELS = (DYNAMO_MODEL, "attentivenas_cifar10_a0")
#: The whole op set of a portable StaticNet graph: canonical pooling and flatten, nothing else.
PORTABLE_OPS = {"Conv", "Sigmoid", "Mul", "Add", "Relu", "HardSigmoid", "AveragePool", "GlobalAveragePool",
                "Flatten", "Gemm"}


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """name -> (model, report): each registered model exported once, with realistic BN statistics."""
    folder = tmp_path_factory.mktemp("onnx")
    cache = {}

    def get(name: str):
        if name not in cache:
            model = spread_weights(anas_zoo.load(name))
            exporter = "dynamo" if name in DYNAMO_MODELS else "torchscript"
            cache[name] = model, to_onnx(model, folder / f"{name}.onnx", name=name, exporter=exporter)
        return cache[name]

    return get


def cifar_model(seed: int = 0) -> StaticNet:
    space = anas_zoo.get_space("cifar10")
    return spread_weights(StaticNet(space.min_arch(), space), seed)


def _dims(value) -> list:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


@pytest.mark.parametrize("name", anas_zoo.list_models())
def test_every_model_exports_fp32_with_dynamic_batch_and_matches_pytorch(exported, name):
    model, report = exported(name)
    assert report.passed is True and report.error is None
    assert report.exporter == ("dynamo" if name in DYNAMO_MODELS else "torchscript")
    parity = report.validation["parity"]
    assert {(r["input"], r["batch"]) for r in parity} == {("random", 1), ("random", 3)}
    assert all(r["max_abs_diff"] <= 1e-4 and r["passed"] for r in parity)

    graph = onnx.load(report.path)
    res = get_entry(name).arch.resolution
    assert [i.name for i in graph.graph.input] == ["input"] and [o.name for o in graph.graph.output] == ["logits"]
    assert _dims(graph.graph.input[0])[1:] == [3, res, res] and isinstance(_dims(graph.graph.input[0])[0], str)
    ops = [n.op_type for n in graph.graph.node]
    assert set(ops) == PORTABLE_OPS and {n.domain for n in graph.graph.node} == {""}
    assert ops.count("GlobalAveragePool") == 1 + sum(isinstance(m, SqueezeExcite) for m in model.modules())
    assert report.validation["portability"] == []
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert report.bn_folded == n_bn and report.fold_max_abs_diff < 1e-4

    # The batch axis is free beyond the checked sizes, and rows do not depend on the batch they are in.
    session = ort.InferenceSession(report.path, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((5, 3, res, res), dtype=np.float32)
    five = session.run(None, {"input": x})[0]
    one = session.run(None, {"input": x[:1]})[0]
    assert five.shape == (5, model.num_classes)
    np.testing.assert_allclose(five[:1], one, atol=1e-5, rtol=0)
    assert five.std() > 0.1  # non-trivial logits: the parity check compared real numbers


@pytest.mark.parametrize("name", anas_zoo.list_models())
def test_every_export_reads_in_openvino_and_matches_pytorch(exported, name):
    pytest.importorskip("openvino")
    model, report = exported(name)
    compiled = compile_cpu(report.path)  # float32: OpenVINO's CPU plugin defaults to bf16 where the CPU has it
    x = np.random.default_rng(2).standard_normal((3, 3, model.resolution, model.resolution), dtype=np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy()
    for batch in (1, 3):
        got = compiled(x[:batch])[compiled.output(0)]
        np.testing.assert_allclose(got, expected[:batch], atol=1e-4, rtol=0)


def test_metadata_props_and_sidecar_describe_the_model(exported):
    _, report = exported(DYNAMO_MODEL)
    entry = get_entry(DYNAMO_MODEL)
    meta = read_metadata(report.path)
    assert meta["model_name"] == DYNAMO_MODEL and meta["precision"] == "fp32" and meta["opset"] == 18
    assert anas_zoo.ArchConfig.from_dict(meta["genome"]) == entry.arch
    assert (meta["macs"], meta["params"]) == (entry.macs, entry.params)
    assert meta["preprocessing"]["mean"] == list(entry.preprocessing.mean)
    assert meta["preprocessing"]["resolution"] == entry.arch.resolution
    assert set(meta["versions"]) == {"anas_zoo", "torch", "onnx", "onnxruntime"}
    assert meta["versions"]["torch"] == torch.__version__
    assert meta["input"] == {"name": "input", "layout": "NCHW", "dtype": "float32"}
    assert "license" in meta and "class_labels" in meta

    sidecar = json.loads(Path(report.sidecar).read_text())
    assert sidecar["metadata"] == meta
    assert sidecar["passed"] is True and sidecar["validation"]["checker"] == "ok"
    assert sidecar["sha256"] == report.sha256
    assert hashlib.sha256(Path(report.path).read_bytes()).hexdigest() == report.sha256


def test_fold_batchnorm_matches_and_leaves_the_original_alone():
    model = cifar_model(seed=1)
    folded, count = fold_batchnorm(model)
    assert count == sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    x = torch.randn(2, 3, model.resolution, model.resolution)
    with torch.inference_mode():
        expected, got = model(x), folded(x)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_dynamo_failure_falls_back_to_torchscript_with_a_logged_reason(tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::example\nmore detail")

    monkeypatch.setattr(onnx_graph, "_export_dynamo", broken)
    with caplog.at_level(logging.WARNING, logger="anas_zoo.export"):
        report = to_onnx(cifar_model(), tmp_path / "m.onnx", name="cifar-min")
    assert report.exporter == "torchscript" and report.passed is True
    assert report.fallback_reason == "RuntimeError: unsupported operator aten::example"
    assert "falling back to the TorchScript exporter" in caplog.text and "aten::example" in caplog.text
    assert json.loads((tmp_path / "m.json").read_text())["fallback_reason"] == report.fallback_reason


def test_failed_check_leaves_nothing_unless_keep_failed(tmp_path):
    model = cifar_model(seed=2)
    with pytest.raises(ExportCheckError, match="max \\|diff\\|") as info:
        to_onnx(model, tmp_path / "m.onnx", exporter="torchscript", atol=1e-12)
    assert info.value.report.passed is False
    assert list(tmp_path.iterdir()) == []  # no file, no sidecar, no temp folder

    with pytest.raises(ExportCheckError, match="kept"):
        to_onnx(model, tmp_path / "m.onnx", exporter="torchscript", atol=1e-12, keep_failed=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.onnx"]
    sidecar = json.loads((tmp_path / "m.json").read_text())
    assert sidecar["passed"] is False and "atol 1e-12" in sidecar["error"]


def test_fixed_batch_and_resolution_override(tmp_path):
    model = cifar_model(seed=3)
    report = to_onnx(model, tmp_path / "m.onnx", exporter="torchscript", batch=2, dynamic_batch=False,
                     resolution=32)
    assert report.passed and report.batch == 2 and report.resolution == 32
    graph = onnx.load(report.path)
    assert _dims(graph.graph.input[0]) == [2, 3, 32, 32] and _dims(graph.graph.output[0]) == [2, 10]
    assert [r["batch"] for r in report.validation["parity"]] == [2]
    meta = read_metadata(report.path)
    assert meta["resolution"] == 32 and meta["genome"]["resolution"] == model.arch.resolution != 32
    assert meta["macs"] == flops.count(model.arch, model.space, 10, 32)[0]


def test_unchecked_export_of_a_registered_name_is_quick_and_says_random_weights(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="anas_zoo.export"):
        report = to_onnx("attentivenas_a0", tmp_path / "a0.onnx", exporter="torchscript", check=False)
    assert report.validation is None and report.passed is None
    assert "random initial weights" in caplog.text
    meta = read_metadata(report.path)
    assert meta["weights"] == "random-init" and meta["model_name"] == "attentivenas_a0"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"opset": 12}, "opset 12 is not supported"),
        ({"opset": 99}, "opset 99 is not supported"),
        ({"resolution": 8}, "resolution 8 is not possible"),
        ({"precision": "int4"}, "unknown precision 'int4'"),
        ({"precision": "int8"}, "int8 needs calibration images"),
        ({"precision": "int8", "calib_data": Path(__file__), "calib_samples": 0}, "calibration samples must be"),
        ({"batch": 0}, "batch must be a positive integer"),
    ],
)
def test_bad_arguments_raise_before_writing_anything(tmp_path, kwargs, message):
    with pytest.raises(ExportError, match=message):
        to_onnx("attentivenas_a0", tmp_path / "a0.onnx", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_a_directory_where_the_sidecar_goes_fails_before_anything_is_written(tmp_path):
    (tmp_path / "m.json").mkdir()
    with pytest.raises(ExportError, match="m.json' is a directory"):
        to_onnx(cifar_model(), tmp_path / "m.onnx", exporter="torchscript", check=False)
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no .onnx without its sidecar, no temp folder


def test_an_export_moves_its_file_and_sidecar_into_place_only_under_the_folder_lock(tmp_path):
    """A concurrent export holding the lock delays ours until its own pair is in place: the pair never mixes."""
    import fcntl
    import os
    import threading
    import time

    output, result = tmp_path / "m.onnx", {}
    worker = threading.Thread(target=lambda: result.update(report=to_onnx(
        cifar_model(), output, exporter="torchscript", check=False)))
    fd = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as the other writer would
    try:
        worker.start()
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".m.*/sidecar.json")) and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(tmp_path.glob(".m.*/sidecar.json")), "the export never staged its sidecar"
        time.sleep(0.5)
        assert not output.exists() and not (tmp_path / "m.json").exists()
    finally:
        os.close(fd)
    worker.join(60)
    sidecar = json.loads((tmp_path / "m.json").read_text())
    assert sidecar["sha256"] == hashlib.sha256(output.read_bytes()).hexdigest() == result["report"].sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.onnx"]
