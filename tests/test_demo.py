"""The main job (anas_zoo.demo) end to end on a small bundled-style family: load, evaluate, time, export."""

import pytest
from test_train_data import make_cifar_folder
from train_helpers import TINY, tiny_cifar10_checkpoint

from anas_zoo import bundled, store, zoo
from anas_zoo.demo import run_demo
from anas_zoo.extract import extract_weights
from anas_zoo.flops import count

RECIPE = {"config": {"data": "cifar10", "holdout_fraction": 0.5, "seed": 0}}


@pytest.fixture()
def family(tmp_path, monkeypatch):
    checkpoint, _ = tiny_cifar10_checkpoint(tmp_path / "supernet.safetensors", RECIPE)
    data = make_cifar_folder(tmp_path / "cifar", per_class=4)
    genomes = [TINY.min_arch(), TINY.max_arch()]
    weights = tmp_path / "checkpoints"
    extract_weights(checkpoint, genomes, ["demo_tiny_a0", "demo_tiny_a1"], weights, "c10", data, batch_size=10)
    monkeypatch.setattr(store, "BUNDLED_DIR", weights)
    monkeypatch.setattr(bundled, "BUNDLED_DIR", weights)
    for entry in bundled.entries(bundled.bundled_records()):
        monkeypatch.setitem(zoo._REGISTRY, entry.name, entry)
    return data, genomes


def test_demo_evaluates_times_exports_and_tabulates(family, tmp_path):
    data, genomes = family
    result = run_demo(samples=20, threads=1, iters=5, data=data, out_dir=tmp_path / "onnx", pattern="demo_tiny_*")
    rows = result["models"]
    assert [r["name"] for r in rows] == ["demo_tiny_a0", "demo_tiny_a1"]
    assert [r["macs"] for r in rows] == [count(g, TINY, 10)[0] for g in genomes]
    assert all(r["sample_images"] == 20 and 0 <= r["sample_top1"] <= 100 and r["torch_p50_ms"] > 0 for r in rows)
    assert any(r["on_front"] for r in rows) and result["data"] == "20 CIFAR-10 test images"
    onnx = result["onnx"]
    assert onnx["model"] == "demo_tiny_a0" and onnx["passed"] and onnx["max_abs_diff"] <= 1e-4
    assert onnx["ort_p50_ms"] > 0 and (tmp_path / "onnx" / "demo_tiny_a0.onnx").is_file()


def test_demo_without_data_runs_on_a_synthetic_batch(family, monkeypatch):
    from anas_zoo.train.data import DATA_ENV

    monkeypatch.delenv(DATA_ENV, raising=False)  # no shared copy named, and no --data given
    result = run_demo(samples=5, threads=1, iters=3, pattern="demo_tiny_*")
    assert result["data"].startswith("synthetic") and all(r["sample_top1"] is None for r in result["models"])
    assert result["onnx"]["passed"] and result["onnx"]["path"] is None


def test_demo_data_that_was_named_but_is_missing_is_an_error_not_a_fallback(family, tmp_path):
    with pytest.raises((FileNotFoundError, ValueError), match="absent"):
        run_demo(samples=5, threads=1, iters=3, data=tmp_path / "absent", pattern="demo_tiny_*")


def test_demo_needs_a_family():
    with pytest.raises(ValueError, match=r"no registered model matches 'nothing_\*'"):
        run_demo(pattern="nothing_*")
