import json
import subprocess
import sys

import pytest


def cli(*args):
    return subprocess.run([sys.executable, "-m", "anas_zoo.cli.zoo", *args], capture_output=True, text=True)


def test_info_json_shows_macs_and_genome_of_a0():
    out = cli("info", "attentivenas_a0", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["macs"] / 1e6 == pytest.approx(203.39, abs=0.05)
    assert info["genome"] == {
        "resolution": 192,
        "width": [16, 16, 24, 32, 64, 112, 192, 216, 1792],
        "depth": [1, 3, 3, 3, 3, 3, 1],
        "kernel_size": [3, 3, 3, 3, 3, 3, 3],
        "expand_ratio": [1, 4, 4, 4, 4, 6, 6],
    }
    assert info["weights"][0]["license"] == "cc-by-nc-4.0"
    assert info["weights"][0]["available"] is False


def test_list_json_is_one_document():
    out = cli("list", "attentivenas_a*", "--json")
    assert out.returncode == 0
    assert [m["name"] for m in json.loads(out.stdout)] == [f"attentivenas_a{i}" for i in range(7)]


def test_unknown_model_is_one_line_on_stderr_and_exit_1():
    out = cli("info", "attentivenas_a9")
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1 and "did you mean attentivenas_a6" in out.stderr


def test_bad_usage_exits_2():
    assert cli("frobnicate").returncode == 2


def test_demo_runs_the_main_job_on_the_bundled_family():
    out = cli("demo", "--json", "--samples", "200")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    rows = result["models"]
    assert [r["name"] for r in rows] == [f"attentivenas_cifar10_a{i}" for i in range(7)]
    assert all(r["torch_p50_ms"] > 0 and r["test_samples"] == 10000 for r in rows)
    if result["data"].startswith("200 CIFAR-10"):  # the shared data is there: a real, if small, evaluation
        assert all(r["sample_images"] == 200 and abs(r["sample_top1"] - r["test_top1"]) < 10 for r in rows)
    assert result["onnx"]["model"] == "attentivenas_cifar10_a0" and result["onnx"]["passed"]
    assert any(r["on_front"] for r in rows)
