"""``to_openvino``: IR with the export metadata in rt_info, fp32 parity in OpenVINO, fp16 weights, NNCF int8 of a
bundled model within one top-1 point on real CIFAR-10 test images, nothing written when the check fails."""

from __future__ import annotations

import json
from importlib.metadata import version

import numpy as np
import pytest
import torch
from export_fixtures import cifar_split_folder

import anas_zoo
from anas_zoo.export import ExportCheckError
from anas_zoo.export.openvino import CHECK_CONFIG, read_metadata, to_openvino

ov = pytest.importorskip("openvino")

BUNDLED = "attentivenas_cifar10_a0"


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """CIFAR-10 source with 130 training images (calibration) and 500 test images (top-1), 13 and 50 per class."""
    return cifar_split_folder(tmp_path_factory.mktemp("cifar"), train_per_class=13, test_per_class=50)


def _ops(path) -> list:
    return ov.Core().read_model(str(path)).get_ops()


def test_fp32_ir_carries_the_metadata_and_matches_pytorch(tmp_path):
    report = to_openvino(BUNDLED, tmp_path / "ir")
    assert report.passed is True and report.format == "openvino" and report.files == ["model.xml", "model.bin"]
    assert sorted(p.name for p in (tmp_path / "ir").iterdir()) == ["model.bin", "model.json", "model.xml"]
    assert {(r["input"], r["batch"]) for r in report.validation["parity"]} == {("random", 1), ("random", 3)}
    assert all(r["max_abs_diff"] <= 1e-4 for r in report.validation["parity"])

    sidecar = json.loads((tmp_path / "ir" / "model.json").read_text())
    assert sidecar["format"] == "anas_zoo.openvino/1" and sidecar["file"] == "model.xml"
    metadata = read_metadata(tmp_path / "ir" / "model.xml")
    assert metadata == sidecar["metadata"] == report.metadata
    assert metadata["model_name"] == BUNDLED and metadata["weights"].startswith("pretrained")
    assert metadata["versions"]["openvino"] == version("openvino")

    model = anas_zoo.load(BUNDLED, pretrained=True)
    compiled = ov.Core().compile_model(str(tmp_path / "ir" / "model.xml"), "CPU", CHECK_CONFIG)
    x = np.random.default_rng(3).standard_normal((3, 3, model.resolution, model.resolution), dtype=np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy()
    for batch in (1, 3):
        np.testing.assert_allclose(compiled(x[:batch])[compiled.output(0)], expected[:batch], atol=1e-4, rtol=0)


def test_fp16_ir_stores_half_precision_weights(tmp_path):
    report = to_openvino(BUNDLED, tmp_path / "ir", precision="fp16")
    assert report.passed is True
    constants = [op for op in _ops(report.path) if op.get_type_name() == "Constant"]
    assert any(op.get_element_type() == ov.Type.f16 for op in constants)
    assert all(r["mean_abs_diff"] < 0.05 and r["top1_agreement"] >= 2 / 3 for r in report.validation["parity"])


def test_int8_bundled_model_keeps_top1_within_one_point(tmp_path, cifar):
    report = to_openvino(BUNDLED, tmp_path / "ir", precision="int8", calib_data=cifar, calib_samples=128,
                         eval_data=cifar, eval_samples=500)
    assert report.passed is True and report.quantization["calib_samples"] == 128
    assert any(op.get_type_name() == "FakeQuantize" for op in _ops(report.path))
    accuracy = report.validation["accuracy"]
    assert {label: a["samples"] for label, a in accuracy.items()} == {"fp32": 500, "int8": 500}
    assert accuracy["fp32"]["top1"] > 0.5  # the trained weights, not random ones
    assert accuracy["fp32"]["top1"] - accuracy["int8"]["top1"] <= 0.01
    assert read_metadata(report.path)["precision"] == "int8"


def test_failed_check_writes_nothing(tmp_path):
    with pytest.raises(ExportCheckError, match="OpenVINO differs from PyTorch"):
        to_openvino(BUNDLED, tmp_path / "ir", atol=1e-12)
    assert list((tmp_path / "ir").iterdir()) == []
