"""``anas-zoo publish --with-onnx|--with-openvino|--with-executorch``: the repo carries validated exports of the
published weights, listed in its card."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnxruntime as ort
import pytest
from test_hub import INPUT, NAME, REPO, front_matter, install_tiny, run_cli, save_set

from anas_zoo import store


@pytest.fixture(autouse=True)
def _tiny_registered(monkeypatch):
    install_tiny(monkeypatch)


def test_publish_with_onnx_exports_the_published_weights(tmp_path):
    expected = save_set(store.store_dir(), seed=3)
    code, out = run_cli("publish", NAME, "--repo-id", REPO, "--with-onnx", "--to-dir", tmp_path / "repo",
                        "--results-dir", tmp_path, "--json")
    assert code == 0
    repo = tmp_path / "repo"
    report = json.loads(out)
    assert report["files"] == ["README.md", "config.json", "model.safetensors", "onnx/model.json", "onnx/model.onnx"]
    sidecar = json.loads((repo / "onnx" / "model.json").read_text())
    config = json.loads((repo / "config.json").read_text())
    assert sidecar["passed"] is True and sidecar["precision"] == "fp32"
    assert sidecar["sha256"] == hashlib.sha256((repo / "onnx" / "model.onnx").read_bytes()).hexdigest()
    assert config["sha256"][:12] in sidecar["metadata"]["weights"]  # exported from the published weight file
    assert sidecar["metadata"]["license"] == "apache-2.0"

    session = ort.InferenceSession(str(repo / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(None, {session.get_inputs()[0].name: INPUT.numpy()})
    np.testing.assert_allclose(onnx_logits, expected.numpy(), atol=1e-4, rtol=0)

    assert "onnx" in front_matter(repo / "README.md")["tags"]
    card = (repo / "README.md").read_text()
    assert f"| `onnx/model.onnx` | onnx | fp32 | {sidecar['opset']} |" in card and sidecar["sha256"] in card
    assert "INFERENCE_PRECISION_HINT" not in card  # the OpenVINO note only where there is an IR


def test_publish_with_openvino_and_executorch_adds_both_checked_artefacts(tmp_path):
    ov = pytest.importorskip("openvino")
    pytest.importorskip("executorch")
    from executorch.runtime import Runtime

    expected = save_set(store.store_dir(), seed=4)
    code, out = run_cli("publish", NAME, "--repo-id", REPO, "--with-openvino", "--with-executorch", "--to-dir",
                        tmp_path / "repo", "--results-dir", tmp_path, "--json")
    assert code == 0
    repo = tmp_path / "repo"
    report = json.loads(out)
    assert report["files"] == ["README.md", "config.json", "executorch/model.json", "executorch/model.pte",
                               "model.safetensors", "openvino/model.bin", "openvino/model.json", "openvino/model.xml"]
    assert [(e["file"], e["format"], e["passed"]) for e in report["exports"]] == [
        ("openvino/model.xml", "openvino", True), ("executorch/model.pte", "executorch", True)]
    config = json.loads((repo / "config.json").read_text())
    for sidecar in ("openvino/model.json", "executorch/model.json"):
        assert config["sha256"][:12] in json.loads((repo / sidecar).read_text())["metadata"]["weights"]

    compiled = ov.Core().compile_model(str(repo / "openvino" / "model.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    np.testing.assert_allclose(compiled(INPUT.numpy())[compiled.output(0)], expected.numpy(), atol=1e-4, rtol=0)
    forward = Runtime.get().load_program(repo / "executorch" / "model.pte").load_method("forward")
    np.testing.assert_allclose(forward.execute([INPUT])[0].numpy(), expected.numpy(), atol=1e-4, rtol=0)

    assert {"openvino", "executorch"} <= set(front_matter(repo / "README.md")["tags"])
    card = (repo / "README.md").read_text()
    for row in report["exports"]:
        assert f"| `{row['file']}` | {row['format']} | fp32 |" in card and row["sha256"] in card
    assert '`{"INFERENCE_PRECISION_HINT": "f32"}`' in card  # how to run the IR as it was checked
