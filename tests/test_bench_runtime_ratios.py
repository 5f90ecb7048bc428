"""benchmarks/runtime_ratios.py: real torch and ONNX Runtime sessions timed side by side, ratios to ORT fp32 that
agree with the p50s, accuracy of the timed sessions, and an ONNX Runtime profile of the int8 file."""

import json

import pytest
from bench_helpers import load_benchmark
from export_fixtures import cifar_split_folder


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """Two CIFAR-10 training and two test images of each class: calibration and top-1 in seconds."""
    return cifar_split_folder(tmp_path_factory.mktemp("cifar"), train_per_class=2, test_per_class=2)


def test_the_bundled_smallest_model_on_torch_and_ort_at_fp32_and_int8(cifar, tmp_path, capsys):
    out = tmp_path / "ratios.json"
    code = load_benchmark("runtime_ratios").main([
        "--models", "attentivenas_cifar10_a0", "--backends", "torch,ort", "--precision", "fp32,int8",
        "--threads", "2", "--rounds", "2", "--per-round", "2", "--warmup", "1", "--eval-samples", "20",
        "--calib-data", str(cifar), "--profile", "--quiet", "--json", "--out", str(out)])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document == json.loads(out.read_text())
    assert out.with_suffix(".md").read_text().startswith("# Runtime latency ratios to ONNX Runtime fp32")
    assert document["settings"]["batch"] == 1 and document["settings"]["threads"] == 2
    assert document["environment"]["packages"]["onnxruntime"]
    (model,) = document["models"]
    assert model["model"] == "attentivenas_cifar10_a0" and model["trained_weights"] and model["eval_samples"] == 20
    rows = {(r["backend"], r["precision"]): r for r in model["runtimes"]}
    assert set(rows) == {("torch", "fp32"), ("torch", "int8"), ("ort", "fp32"), ("ort", "int8")}
    assert rows[("torch", "int8")]["status"] == "unsupported"
    reference = rows[("ort", "fp32")]
    assert reference["ratio_to_ort_fp32"] == 1.0 and reference["round_ratio_range"] == [1.0, 1.0]
    for key in [("torch", "fp32"), ("ort", "int8")]:
        row = rows[key]
        assert row["status"] == "ok" and row["n"] == 4 and row["p50_ms"] > 0
        assert row["ratio_to_ort_fp32"] == pytest.approx(row["p50_ms"] / reference["p50_ms"])
        assert row["accuracy"]["samples"] == 20
    assert rows[("torch", "fp32")]["accuracy"]["top1"] == reference["accuracy"]["top1"]
    int8 = rows[("ort", "int8")]
    assert int8["drop_points"] == pytest.approx(reference["accuracy"]["top1"] - int8["accuracy"]["top1"])
    assert model["best_int8"]["backend"] == "ort" and model["best_int8"]["ratio_to_ort_fp32"] == int8["ratio_to_ort_fp32"]
    profile = model["profile"]
    assert set(profile["isa"]) == {"avx512_vnni", "avx_vnni", "amx_int8"}
    assert set(profile["ort"]) == {"fp32", "int8"}
    assert sum(profile["ort"]["int8"]["share_by_kind"].values()) == pytest.approx(1.0)
    assert profile["ort"]["fp32"]["share_by_kind"]["int8"] == 0
    assert any(r["op"] == "QLinearConv" and r["kind"] == "int8" and r["conv_kernel"] == "depthwise"
               for r in profile["ort"]["int8"]["ops"])


def test_ratios_need_onnx_runtime_fp32(capsys):
    with pytest.raises(SystemExit) as exit_:
        load_benchmark("runtime_ratios").main(["--backends", "torch,openvino"])
    assert exit_.value.code == 2 and "--backends needs ort" in capsys.readouterr().err
