"""The environment record: hardware, versions, commit, threads and env vars, and the fp32 peak estimate
(achieved GMAC/s against it: ``anas-bench peak``)."""

import csv
import importlib.metadata
import json
import os
import platform
import sys

import pytest
import torch

from anas_zoo.bench.environment import capture_environment, fp32_peak_estimate, thread_settings
from anas_zoo.bench.peak import achieved
from anas_zoo.cli.bench import main as bench_main


def test_capture_environment_records_what_this_process_runs_on(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("MKL_NUM_THREADS", "5")
    env = capture_environment(threads=2)
    assert env["cpu"]["logical_cores"] == os.cpu_count()
    assert env["cpu"]["model"]
    assert env["os"]["system"] == platform.system()
    assert env["python"] == platform.python_version()
    assert env["packages"]["torch"] == importlib.metadata.version("torch")
    assert env["packages"]["onnxruntime"] == importlib.metadata.version("onnxruntime")
    assert env["packages"]["onnx"] == importlib.metadata.version("onnx")
    assert env["anas_zoo"]["version"]
    assert env["anas_zoo"]["commit"] is None or len(env["anas_zoo"]["commit"]) == 40
    assert "CPUExecutionProvider" in env["onnxruntime_providers"]
    assert env["gpus"] == [] if not torch.cuda.is_available() else env["gpus"][0]["name"]
    threads = env["threads"]
    assert threads["requested_intra_op"] == 2
    assert threads["torch_intra_op"] == torch.get_num_threads()
    assert threads["env"]["OMP_NUM_THREADS"] == "3" and threads["env"]["MKL_NUM_THREADS"] == "5"


def test_thread_settings_omit_unset_variables(monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    assert "OPENBLAS_NUM_THREADS" not in thread_settings()["env"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and /sys")
def test_linux_topology_is_read():
    env = capture_environment()
    assert env["cpu"]["physical_cores"] >= 1
    assert env["cpu"]["smt"] == (env["cpu"]["logical_cores"] > env["cpu"]["physical_cores"])


def _env(isa, mhz_max=None, mhz_now=2000.0, cores=4):
    return {"cpu": {"isa": isa, "mhz_max": mhz_max, "mhz_now": mhz_now, "model": "x", "physical_cores": cores,
                    "logical_cores": cores}}


def test_peak_estimate_spells_out_its_assumptions():
    avx512 = fp32_peak_estimate(_env(["avx512f", "avx2", "fma"], mhz_max=3000.0))
    assert avx512["peak_gmacs_per_s"] == pytest.approx(4 * 2 * 16 * 3.0)
    assert avx512["clock_mhz"] == 3000.0 and any("cpuinfo_max_freq" in a for a in avx512["assumptions"])
    avx2 = fp32_peak_estimate(_env(["avx2", "fma"]), cores=2)
    assert avx2["peak_gmacs_per_s"] == pytest.approx(2 * 2 * 8 * 2.0)
    assert any("not turbo" in a for a in avx2["assumptions"])
    assert fp32_peak_estimate(_env([]))["fma_units_per_core"] == 1


PEAK_ROWS = [
    {"model": "m", "backend": "ort", "precision": "fp32", "status": "ok", "threads": "2", "batch": "4",
     "macs": "500000000", "p50_ms": "100", "cv": "0.02"},
    {"model": "m", "backend": "torch", "precision": "fp32", "status": "ok", "threads": "2", "batch": "1",
     "macs": "500000000", "p50_ms": "100", "cv": "0.02"},
]


def test_achieved_gmacs_against_the_peak():
    row, = achieved(PEAK_ROWS, _env(["avx2", "fma"], mhz_max=2500.0))
    assert row["achieved_gmacs_per_s"] == pytest.approx(0.5 * 4 / 0.1)
    assert row["peak_gmacs_per_s"] == pytest.approx(2 * 2 * 8 * 2.5)
    assert row["percent_of_peak"] == pytest.approx(100 * 20 / 80)


def test_anas_bench_peak_reads_a_latency_folder(tmp_path, capsys):
    with open(tmp_path / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(PEAK_ROWS[0]))
        writer.writeheader()
        writer.writerows(PEAK_ROWS)
    env = _env(["avx2", "fma"], mhz_max=2500.0) | {"packages": {"onnxruntime": "1.20", "openvino": None}}
    (tmp_path / "environment.json").write_text(json.dumps(env))
    assert bench_main(["peak", str(tmp_path), "--backend", "torch", "--json"]) == 0
    row, = json.loads(capsys.readouterr().out)["rows"]
    assert row["batch"] == 1 and row["percent_of_peak"] == pytest.approx(100 * 5 / 80)
    assert bench_main(["peak", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime 1.20" in out and "openvino" not in out and "25.0" in out.splitlines()[-1]
    assert bench_main(["peak", str(tmp_path), "--backend", "openvino"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "has no successful openvino fp32 rows" in err and err.count("\n") == 1
