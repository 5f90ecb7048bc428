"""``to_executorch``: an XNNPACK-delegated program with the export metadata, fp32 parity through ExecuTorch's
runtime at batch 1 and 3, PT2E int8 of a bundled model within one top-1 point on real CIFAR-10 test images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from export_fixtures import cifar_split_folder

import anas_zoo
from anas_zoo.export import ExportCheckError

pytest.importorskip("executorch")

from executorch.runtime import Runtime  # noqa: E402  (only with the extra)

from anas_zoo.export.executorch import METADATA_METHOD, read_metadata, to_executorch  # noqa: E402

BUNDLED = "attentivenas_cifar10_a0"


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """CIFAR-10 source with 130 training images (calibration) and 500 test images (top-1), 13 and 50 per class."""
    return cifar_split_folder(tmp_path_factory.mktemp("cifar"), train_per_class=13, test_per_class=50)


def test_fp32_program_is_delegated_carries_the_metadata_and_matches_pytorch(tmp_path):
    report = to_executorch(BUNDLED, tmp_path / "m.pte")
    assert report.passed is True and report.format == "executorch" and report.files == ["m.pte"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.pte"]
    assert {(r["input"], r["batch"]) for r in report.validation["parity"]} == {("random", 1), ("random", 3)}
    assert all(r["max_abs_diff"] <= 1e-4 for r in report.validation["parity"])
    assert b"XnnpackBackend" in (tmp_path / "m.pte").read_bytes()  # the delegate's payload is in the program

    sidecar = json.loads((tmp_path / "m.json").read_text())
    assert sidecar["format"] == "anas_zoo.executorch/1" and sidecar["file"] == "m.pte"
    assert read_metadata(tmp_path / "m.pte") == sidecar["metadata"] == report.metadata
    assert report.metadata["model_name"] == BUNDLED and "executorch" in report.metadata["versions"]

    program = Runtime.get().load_program(tmp_path / "m.pte")
    assert set(program.method_names) == {"forward", METADATA_METHOD}
    forward = program.load_method("forward")
    model = anas_zoo.load(BUNDLED, pretrained=True)
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((3, 3, model.resolution, model.resolution),
                                                                  dtype=np.float32))
    with torch.inference_mode():
        expected = model(x)
    for batch in (1, 3):
        torch.testing.assert_close(forward.execute([x[:batch]])[0], expected[:batch], atol=1e-4, rtol=0)


def test_int8_bundled_model_keeps_top1_within_one_point(tmp_path, cifar):
    report = to_executorch(BUNDLED, tmp_path / "m.pte", precision="int8", calib_data=cifar, calib_samples=128,
                           eval_data=cifar, eval_samples=500)
    assert report.passed is True and report.quantization["calib_samples"] == 128
    accuracy = report.validation["accuracy"]
    assert {label: a["samples"] for label, a in accuracy.items()} == {"fp32": 500, "int8": 500}
    assert accuracy["fp32"]["top1"] > 0.5  # the trained weights, not random ones
    assert accuracy["fp32"]["top1"] - accuracy["int8"]["top1"] <= 0.01
    assert report.size_bytes < 0.5 * (report.metadata["params"] * 4)  # int8 weights, not float32 ones
    assert read_metadata(report.path)["precision"] == "int8"


def test_failed_check_writes_nothing(tmp_path):
    with pytest.raises(ExportCheckError, match="ExecuTorch differs from PyTorch"):
        to_executorch(BUNDLED, tmp_path / "m.pte", atol=1e-12)
    assert list(tmp_path.iterdir()) == []
