"""Model resolution (names, globs, genome files), job validation, and per-job process isolation."""

import json
import os

import pytest
import torch

from anas_zoo.bench.runner import Job, resolve_models, run_job
from anas_zoo.space import get_space
from anas_zoo.zoo import UnknownModelError


@pytest.fixture
def tiny_genome(tmp_path):
    path = tmp_path / "tiny.json"
    genome = get_space("attentivenas").min_arch().to_dict()
    path.write_text(json.dumps({"name": "tiny", "genome": genome, "num_classes": 10, "resolution": 32,
                                "metrics": [{"top1": 61.5, "source": "measured", "dataset": "cifar10"}]}))
    return path


def test_resolve_names_globs_and_genome_files(tiny_genome, tmp_path):
    a0, = resolve_models(["attentivenas_a0"])
    assert a0["resolution"] == 192 and a0["macs"] == 203389568
    assert a0["accuracy"] == 77.3 and a0["accuracy_source"] == "reported"
    paper = resolve_models(["attentivenas_a*"])
    assert [m["name"] for m in paper] == [f"attentivenas_a{i}" for i in range(7)]
    tiny, = resolve_models([str(tiny_genome)])
    assert (tiny["name"], tiny["resolution"], tiny["num_classes"]) == ("tiny", 32, 10)
    assert tiny["accuracy"] == 61.5 and tiny["accuracy_source"] == "measured"
    bare = tmp_path / "bare.json"
    bare.write_text(get_space("attentivenas").max_arch().to_json())
    assert resolve_models([str(bare)])[0]["name"] == "bare"
    # an accuracy figure does not carry over to another resolution
    assert resolve_models(["attentivenas_a0"], resolution=64)[0]["accuracy"] is None


def test_resolve_errors_name_the_bad_input(tmp_path):
    with pytest.raises(UnknownModelError, match="attentivenas_a9"):
        resolve_models(["attentivenas_a9"])
    with pytest.raises(ValueError, match="matches no registered model"):
        resolve_models(["nothing_*"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"genome": {"resolution": 192}}))
    with pytest.raises(ValueError, match="bad.json"):
        resolve_models([str(bad)])


def test_job_validation():
    model = {"name": "x"}
    with pytest.raises(ValueError, match="unknown backend"):
        Job(model, "tflite")
    with pytest.raises(ValueError, match="batch"):
        Job(model, "torch", batch=0)
    assert Job(model, "torch", batch=8).scenario == "throughput"
    assert Job(model, "ort").key == "x__ort__fp32__b1__t1__cpu"


def test_each_job_runs_in_its_own_process_with_its_own_threads(tiny_genome):
    spec, = resolve_models([str(tiny_genome)])
    parent_threads = torch.get_num_threads()
    parent_omp = os.environ.get("OMP_NUM_THREADS")
    results = [run_job(Job(spec, "torch", threads=t, warmup=1, min_iters=3, min_seconds=0.0)) for t in (2, 1)]
    for result, threads in zip(results, (2, 1)):
        assert result["status"] == "ok", result.get("error")
        worker = result["worker"]
        assert worker["pid"] != os.getpid()
        assert worker["threads"]["torch_intra_op"] == threads and worker["threads"]["torch_inter_op"] == 1
        assert worker["threads"]["env"]["OMP_NUM_THREADS"] == str(threads)
        assert len(result["samples_ms"]) == result["summary"]["n"] == 3
    assert results[0]["worker"]["pid"] != results[1]["worker"]["pid"]
    # nothing leaks back into the parent
    assert torch.get_num_threads() == parent_threads and os.environ.get("OMP_NUM_THREADS") == parent_omp


def test_an_unsupported_combination_is_recorded_without_a_worker(tiny_genome):
    spec, = resolve_models([str(tiny_genome)])
    result = run_job(Job(spec, "executorch", batch=16))
    assert result["status"] == "unsupported" and "batch 16" in result["error"] and "worker" not in result


def test_worker_records_failures_instead_of_raising(tiny_genome, tmp_path):
    from anas_zoo.bench.worker import main

    spec, = resolve_models([str(tiny_genome)])
    job, result = tmp_path / "job.json", tmp_path / "result.json"
    job.write_text(json.dumps(Job(spec, "torch", precision="int8", min_iters=1).to_dict()))
    assert main([str(job), str(result)]) == 1
    record = json.loads(result.read_text())
    assert record["status"] == "unsupported" and "int8" in record["error"] and record["worker"]["pid"] == os.getpid()
