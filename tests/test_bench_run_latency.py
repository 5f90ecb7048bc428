"""``anas-bench latency`` and its entry point benchmarks/run_latency.py: a tiny model in real worker processes on
every runtime and precision, the fastest runtime in the tables, and a missing runtime named in one line."""

import copy
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from export_fixtures import cifar_folder

from anas_zoo.bench.backends import BACKENDS
from anas_zoo.cli.bench import main as bench_main
from anas_zoo.space import get_space
from anas_zoo.zoo import get_entry

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


@pytest.fixture
def tiny_genome(tmp_path):
    """The smallest genome of the CIFAR-10 space (2.4 M parameters, 24 px): the cheapest model every runtime exports."""
    space = get_space("cifar10")
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"name": "tiny", "space": space.name, "genome": space.min_arch().to_dict(),
                                "metrics": [{"top1": 50.0, "source": "measured", "dataset": "cifar10"}]}))
    return path


def test_every_runtime_in_isolated_workers_and_the_fastest_in_the_tables(tiny_genome, tmp_path, capsys):
    pytest.importorskip("openvino")
    pytest.importorskip("executorch")
    calib = cifar_folder(tmp_path / "calib")
    out = tmp_path / "out"
    common = ["--models", str(tiny_genome), "--calib-data", str(calib), "--threads", "1", "--warmup", "1",
              "--min-iters", "3", "--min-seconds", "0", "--exporter", "torchscript", "--no-fvcore", "--no-progress",
              "--out", str(out), "--json"]
    # every backend at fp32, then the int8 of ORT (QDQ) and OpenVINO (NNCF) into the same folder: records accumulate
    # (ExecuTorch's PT2E int8 export, the slowest, is covered by its exporter's tests)
    assert bench_main(["latency", "--backends", ",".join(BACKENDS), "--precision", "fp32", *common]) == 0
    first = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in first["runs"]] == ["ok"] * len(BACKENDS)
    assert bench_main(["latency", "--backends", "ort,openvino", "--precision", "int8", *common]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in doc["runs"]] == ["ok", "ok"]

    records = {(r["job"]["backend"], r["job"]["precision"]): r
               for r in map(json.loads, map(Path.read_text, (out / "runs").glob("*.json")))}
    assert len(records) == len(BACKENDS) + 2
    for (backend, precision), record in records.items():
        assert len(record["samples_ms"]) == record["summary"]["n"] == 3
        assert record["worker"]["pid"] != record["parent_pid"]
        assert record["environment"]["packages"]["openvino"] and record["environment"]["packages"]["executorch"]
        if not backend.startswith("torch"):
            assert record["cold_start"]["export_s"] > 0
            assert record["details"]["export_report"]["precision"] == precision
    for precision in ("fp32", "int8"):
        assert records[("openvino", precision)]["details"]["openvino_config"] == {
            "INFERENCE_NUM_THREADS": "1", "NUM_STREAMS": "1", "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32"}
        assert records[("ort", precision)]["details"]["ort_intra_op"] == 1
    assert records[("executorch", "fp32")]["details"]["executorch_threads"] == 1
    for backend in ("ort", "openvino"):
        assert records[(backend, "int8")]["details"]["export_report"]["quantization"]["calib_samples"] == 16

    with open(out / "results.csv") as f:
        p50 = {f"{r['backend']} {r['precision']}": float(r["p50_ms"]) for r in csv.DictReader(f)}
    fastest = min(p50, key=p50.get)
    entry, = doc["fastest"]
    assert entry["model"] == "tiny" and entry["runtime"] == fastest and set(entry["p50_ms_by_runtime"]) == set(p50)
    markdown = (out / "pareto.md").read_text()
    assert f"| tiny | **{fastest}** | {p50[fastest]:.2f} |" in markdown
    fronts = [line for line in markdown.splitlines() if line.startswith("## ") and "Fastest" not in line]
    assert len(fronts) == len(p50), "one front per runtime x precision"


@pytest.mark.parametrize("backend", ["openvino", "executorch"])
def test_a_missing_runtime_names_its_extra_before_any_run(backend, tiny_genome, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, backend, None)  # what an environment without the extra looks like to import
    out = tmp_path / "out"
    code = bench_main(["latency", "--models", str(tiny_genome), "--backends", f"torch,{backend}", "--out", str(out),
                       "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and err == f'error: {backend} is not installed: pip install "anas_zoo[{backend}]" adds it\n'
    assert not out.exists()


def test_tables_give_each_registered_model_its_current_top1_and_keep_the_timings(tiny_genome, tmp_path, capsys):
    out = tmp_path / "out"
    common = ["--backends", "torch", "--threads", "1", "--warmup", "1", "--min-iters", "4", "--min-seconds", "0",
              "--no-fvcore", "--no-progress", "--out", str(out)]
    assert bench_main(["latency", "--models", "attentivenas_cifar10_a0", str(tiny_genome), *common]) == 0
    current = get_entry("attentivenas_cifar10_a0").weight(None).metrics[0]["top1"]
    registered, = (p for p in (out / "runs").glob("*.json") if p.name.startswith("attentivenas"))
    genome_file, = (p for p in (out / "runs").glob("*.json") if p.name.startswith("tiny"))
    measured = json.loads(registered.read_text())
    assert measured["job"]["model"]["accuracy"] == current
    stale = copy.deepcopy(measured)
    stale["job"]["model"]["accuracy"] = 12.34  # what the run recorded before the weights were retrained
    registered.write_text(json.dumps(stale))
    tiny_before = genome_file.read_text()
    capsys.readouterr()

    assert bench_main(["tables", str(out), "--no-fvcore", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy_changed"] == ["attentivenas_cifar10_a0"]
    assert json.loads(registered.read_text()) == measured  # the timings untouched, the figure current
    assert genome_file.read_text() == tiny_before  # a genome file's own figure is not the registry's to change
    with open(out / "results.csv") as f:
        accuracy = {r["model"]: float(r["accuracy"]) for r in csv.DictReader(f)}
    assert accuracy == {"attentivenas_cifar10_a0": current, "tiny": 50.0}
    assert f"| **attentivenas_cifar10_a0** | 24 | {current:.2f} | measured |" in (out / "pareto.md").read_text()
    assert bench_main(["tables", str(out), "--no-fvcore", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy_changed"] == []

    other = copy.deepcopy(measured)
    other["job"]["model"]["genome"]["width"][0] += 8  # a run of an architecture the registry no longer holds
    registered.write_text(json.dumps(other))
    stale_tiny = json.loads(tiny_before)
    stale_tiny["job"]["model"]["origin"] = "registry"  # sorted before the refused run: not rewritten either
    stale_tiny["job"]["model"].update(name="attentivenas_cifar10_a0", accuracy=12.34)
    stale_tiny["job"]["model"]["genome"] = measured["job"]["model"]["genome"]
    (out / "runs" / "aa_stale.json").write_text(json.dumps(stale_tiny))
    assert bench_main(["tables", str(out), "--no-fvcore"]) == 1
    assert json.loads((out / "runs" / "aa_stale.json").read_text())["job"]["model"]["accuracy"] == 12.34
    err = capsys.readouterr().err
    assert err.startswith(f"error: {registered.name}: attentivenas_cifar10_a0 is registered with another") and \
        "measure it again" in err
    assert json.loads(registered.read_text()) == other

    assert bench_main(["tables", str(tmp_path / "calib-free")]) == 1
    assert "holds no run records" in capsys.readouterr().err
