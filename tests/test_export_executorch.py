"""``to_executorch``: an XNNPACK-delegated program with the export metadata, fp32 parity through ExecuTorch's
runtime at batch 1, 3 and the batch cap, larger batches in chunks, PT2E int8 of a bundled model on real
CIFAR-10 test images, nothing written when the check fails."""

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

from anas_zoo.export.executorch import MAX_BATCH, METADATA_METHOD, read_metadata, runner, to_executorch  # noqa: E402

BUNDLED = "attentivenas_cifar10_a0"


@pytest.fixture(scope="module")
def fp32_program(tmp_path_factory):
    """(report, .pte path) of one fp32 export of the bundled model, shared by the tests that only read it."""
    path = tmp_path_factory.mktemp("fp32") / "m.pte"
    return to_executorch(BUNDLED, path), path


@pytest.fixture(scope="module")
def model_and_inputs():
    """The bundled model and MAX_BATCH + 3 random inputs with its logits (a batch the runner must chunk)."""
    model = anas_zoo.load(BUNDLED, pretrained=True).eval()
    x = torch.from_numpy(np.random.default_rng(3).standard_normal(
        (MAX_BATCH + 3, 3, model.resolution, model.resolution), dtype=np.float32))
    with torch.inference_mode():
        return model, x, model(x)


def test_fp32_program_is_delegated_and_carries_the_metadata(fp32_program):
    report, path = fp32_program
    assert report.passed is True and report.format == "executorch" and report.files == ["m.pte"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.json", "m.pte"]
    assert {(r["input"], r["batch"]) for r in report.validation["parity"]} == {("random", 1), ("random", 3)}
    assert all(r["max_abs_diff"] <= 1e-4 for r in report.validation["parity"])
    assert b"XnnpackBackend" in path.read_bytes()  # the delegate's payload is in the program

    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["format"] == "anas_zoo.executorch/1" and sidecar["file"] == "m.pte"
    assert read_metadata(path) == sidecar["metadata"] == report.metadata
    assert report.metadata["model_name"] == BUNDLED and "executorch" in report.metadata["versions"]
    assert set(Runtime.get().load_program(path).method_names) == {"forward", METADATA_METHOD}


@pytest.mark.parametrize("batch", [1, 3, MAX_BATCH])
def test_program_accepts_every_batch_up_to_the_cap(fp32_program, model_and_inputs, batch):
    _, path = fp32_program
    _, x, expected = model_and_inputs
    forward = Runtime.get().load_program(path).load_method("forward")
    torch.testing.assert_close(forward.execute([x[:batch]])[0], expected[:batch], atol=1e-4, rtol=0)


def test_runner_feeds_batches_above_the_cap_in_chunks(fp32_program, model_and_inputs):
    _, path = fp32_program
    _, x, expected = model_and_inputs
    logits = runner(path)(x.numpy())
    assert logits.shape == tuple(expected.shape)
    np.testing.assert_allclose(logits, expected.numpy(), atol=1e-4, rtol=0)


def test_int8_bundled_model_keeps_top1(tmp_path):
    cifar = cifar_split_folder(tmp_path / "cifar", train_per_class=7, test_per_class=20)
    report = to_executorch(BUNDLED, tmp_path / "m.pte", precision="int8", calib_data=cifar, calib_samples=64,
                           eval_data=cifar, eval_samples=200)
    assert report.passed is True and report.quantization["calib_samples"] == 64
    accuracy = report.validation["accuracy"]
    assert {label: a["samples"] for label, a in accuracy.items()} == {"fp32": 200, "int8": 200}
    assert accuracy["fp32"]["top1"] > 50  # the trained weights, not random ones (top-1 in %)
    assert round(accuracy["fp32"]["top1"] - accuracy["int8"]["top1"], 6) <= 2  # at most 4 of the 200 images
    assert report.size_bytes < 0.5 * (report.metadata["params"] * 4)  # int8 weights, not float32 ones
    assert read_metadata(report.path)["precision"] == "int8"


def test_failed_check_writes_nothing(tmp_path):
    with pytest.raises(ExportCheckError, match="ExecuTorch differs from PyTorch"):
        to_executorch(BUNDLED, tmp_path / "m.pte", atol=1e-12)
    assert list(tmp_path.iterdir()) == []
