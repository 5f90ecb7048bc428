"""The environment record: hardware, versions, commit, threads and env vars, and the fp32 peak estimate."""

import importlib.metadata
import os
import platform
import sys

import pytest
import torch
from bench_helpers import load_benchmark

from anas_zoo.bench.environment import capture_environment, fp32_peak_estimate, thread_settings


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


def test_achieved_gmacs_against_the_peak():
    peak_gmacs = load_benchmark("peak_gmacs")
    rows = [
        {"model": "m", "backend": "ort", "precision": "fp32", "status": "ok", "threads": "2", "batch": "4",
         "macs": "500000000", "p50_ms": "100", "cv": "0.02"},
        {"model": "m", "backend": "torch", "precision": "fp32", "status": "ok", "threads": "2", "batch": "1",
         "macs": "500000000", "p50_ms": "100", "cv": "0.02"},
    ]
    row, = peak_gmacs.achieved(rows, _env(["avx2", "fma"], mhz_max=2500.0))
    assert row["achieved_gmacs_per_s"] == pytest.approx(0.5 * 4 / 0.1)
    assert row["peak_gmacs_per_s"] == pytest.approx(2 * 2 * 8 * 2.5)
    assert row["percent_of_peak"] == pytest.approx(100 * 20 / 80)
