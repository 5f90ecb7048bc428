"""``to_openvino``: IR with the export metadata in rt_info, fp32 parity in OpenVINO, fp16 weights, NNCF int8 of a
bundled model through ``anas-export openvino --json`` (one JSON document on stdout), nothing written when the
check fails."""

from __future__ import annotations

import json
import subprocess
import sys
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
def fp32_ir(tmp_path_factory):
    """(report, folder) of one fp32 export of the bundled model, shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("fp32") / "ir"
    return to_openvino(BUNDLED, folder), folder


def _ops(path) -> list:
    return ov.Core().read_model(str(path)).get_ops()


def test_fp32_ir_carries_the_metadata_and_matches_pytorch(fp32_ir):
    report, folder = fp32_ir
    assert report.passed is True and report.format == "openvino" and report.files == ["model.xml", "model.bin"]
    assert sorted(p.name for p in folder.iterdir()) == ["model.bin", "model.json", "model.xml"]
    assert {(r["input"], r["batch"]) for r in report.validation["parity"]} == {("random", 1), ("random", 3)}
    assert all(r["max_abs_diff"] <= 1e-4 for r in report.validation["parity"])

    sidecar = json.loads((folder / "model.json").read_text())
    assert sidecar["format"] == "anas_zoo.openvino/1" and sidecar["file"] == "model.xml"
    assert sidecar["validation"]["compile_config"] == CHECK_CONFIG  # float32, as checked (not the bf16 default)
    metadata = read_metadata(folder / "model.xml")
    assert metadata == sidecar["metadata"] == report.metadata
    assert metadata["model_name"] == BUNDLED and metadata["weights"].startswith("pretrained")
    assert metadata["versions"]["openvino"] == version("openvino")

    model = anas_zoo.load(BUNDLED, pretrained=True)
    compiled = ov.Core().compile_model(str(folder / "model.xml"), "CPU", CHECK_CONFIG)
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


def test_int8_cli_prints_one_json_document_and_keeps_top1(tmp_path):
    """NNCF's progress bars and log lines must not reach stdout, so ``--json`` output parses as it is."""
    cifar = cifar_split_folder(tmp_path / "cifar", train_per_class=7, test_per_class=20)
    result = subprocess.run(
        [sys.executable, "-m", "anas_zoo.cli.export", "openvino", "--model", BUNDLED, "--precision", "int8",
         "--calib-data", str(cifar), "--calib-samples", "64", "--eval-data", str(cifar), "--eval-samples", "200",
         "--json", "--output", str(tmp_path / "ir")],
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["quantization"]["calib_samples"] == 64
    assert any(op.get_type_name() == "FakeQuantize" for op in _ops(report["path"]))
    accuracy = report["validation"]["accuracy"]
    assert {label: a["samples"] for label, a in accuracy.items()} == {"fp32": 200, "int8": 200}
    assert accuracy["fp32"]["top1"] > 50  # the trained weights, not random ones (top-1 in %)
    assert round(accuracy["fp32"]["top1"] - accuracy["int8"]["top1"], 6) <= 2  # at most 4 of the 200 images
    assert read_metadata(report["path"])["precision"] == "int8"


def test_failed_check_writes_nothing(tmp_path):
    with pytest.raises(ExportCheckError, match="OpenVINO differs from PyTorch"):
        to_openvino(BUNDLED, tmp_path / "ir", atol=1e-12)
    assert list((tmp_path / "ir").iterdir()) == []
