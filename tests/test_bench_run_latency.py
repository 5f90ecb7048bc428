"""Smoke run of benchmarks/run_latency.py: one tiny model, two backends, real worker processes."""

import csv
import json
import subprocess
import sys
from pathlib import Path

from anas_zoo.space import get_space

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "run_latency.py"
REQUIRED = ("model", "backend", "precision", "batch", "threads", "device", "p50_ms", "p90_ms", "p99_ms", "mean_ms",
            "cv", "images_per_s", "macs", "params")


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], check=False, capture_output=True, text=True,
                          timeout=600)


def test_smoke_two_backends(tmp_path):
    genome = tmp_path / "tiny.json"
    genome.write_text(json.dumps({"name": "tiny", "genome": get_space("attentivenas").min_arch().to_dict(),
                                  "num_classes": 10, "resolution": 32,
                                  "metrics": [{"top1": 50.0, "source": "measured"}]}))
    out = tmp_path / "out"
    proc = _run("--models", str(genome), "--backends", "torch,ort", "--threads", "1", "--warmup", "1",
                "--min-iters", "4", "--min-seconds", "0", "--exporter", "torchscript", "--no-fvcore",
                "--no-progress", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [r["job"]["backend"] for r in doc["runs"]] == ["torch", "ort"]
    assert all(r["status"] == "ok" for r in doc["runs"])
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["backend"] for r in rows} == {"torch", "ort"}
    for row in rows:
        assert all(row[c] not in ("", None) for c in REQUIRED), row
        assert row["scenario"] == "latency" and row["device"] == "cpu"
        assert float(row["p50_ms"]) <= float(row["p99_ms"])
    records = sorted((out / "runs").glob("*.json"))
    assert len(records) == 2
    for record in map(json.loads, map(Path.read_text, records)):
        assert len(record["samples_ms"]) == record["summary"]["n"] >= 4
        assert record["environment"]["cpu"]["logical_cores"] >= 1
        assert record["worker"]["pid"] != record["parent_pid"]
    ort, = (json.loads(p.read_text()) for p in records if "__ort__" in p.name)
    assert ort["cold_start"]["session_s"] > 0 and ort["cold_start"]["export_s"] > 0
    assert ort["details"]["ort_intra_op"] == 1 and "torchscript" in ort["details"]["exporter"]
    assert (out / "environment.json").is_file()
    for name in ("pareto.md", "pareto.csv", "pareto.png"):
        assert (out / name).stat().st_size > 0
    assert "| **tiny** |" in (out / "pareto.md").read_text()


def test_bad_usage_exits_2_with_a_clear_message(tmp_path):
    proc = _run("--models", "attentivenas_a0", "--backends", "tflite", "--out", str(tmp_path))
    assert proc.returncode == 2 and "allowed values are torch, torch-compile, ort" in proc.stderr
    proc = _run("--models", "attentivenas_a9", "--out", str(tmp_path), "--no-progress")
    assert proc.returncode == 1 and proc.stderr.startswith("error: unknown model 'attentivenas_a9'")
