"""One measurement in a fresh process: ``python -m anas_zoo.bench.worker JOB.json RESULT.json``.

The parent (:mod:`anas_zoo.bench.runner`) starts one worker per (model, backend, precision, batch,
threads), so thread pools, allocator caches, compiled kernels and ORT sessions never carry over from
one measurement to the next. The worker fixes its threads first, builds the model, prepares the
backend (cold start), collects every sample, and writes one JSON result; failures are written too.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from anas_zoo.bench.backends import UnsupportedConfig, prepare, set_torch_threads
from anas_zoo.bench.environment import thread_settings
from anas_zoo.bench.stats import summarize
from anas_zoo.fileio import atomic_write
from anas_zoo.static import StaticNet
from anas_zoo.timing import collect_samples


def measure(job: dict, workdir: Path) -> dict:
    """Run ``job`` (a :class:`~anas_zoo.bench.runner.Job` as a dict) here and return the result record."""
    set_torch_threads(job["threads"], 1)
    spec = job["model"]
    torch.manual_seed(0)
    model = StaticNet(spec["genome"], spec["space"], spec["num_classes"], resolution=spec["resolution"]).eval()
    prepared = prepare(job["backend"], model, batch=job["batch"], resolution=spec["resolution"],
                       precision=job["precision"], threads=job["threads"], device=job["device"], workdir=workdir,
                       calib_data=job["calib_data"], exporter=job["exporter"])
    samples = collect_samples(prepared.call, warmup=job["warmup"], min_iters=job["min_iters"],
                              min_seconds=job["min_seconds"], max_iters=job["max_iters"])
    timer = "cuda-events" if job["device"] == "cuda" and job["backend"] != "ort" else "perf_counter"
    return {
        "status": "ok",
        "summary": summarize(samples, job["batch"]),
        "samples_ms": samples,
        "cold_start": prepared.cold_start,
        "details": {**prepared.details, "timer": timer},
        "worker": {"pid": os.getpid(), "threads": thread_settings(job["threads"])},
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m anas_zoo.bench.worker JOB.json RESULT.json", file=sys.stderr)
        return 2
    job_path, result_path = map(Path, argv)
    job = json.loads(job_path.read_text())
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="anas_bench_") as workdir:
            result = measure(job, Path(workdir))
    except Exception as e:  # noqa: BLE001 - every failure becomes a recorded result, not a lost run
        status = "unsupported" if isinstance(e, UnsupportedConfig) else "error"
        result = {"status": status, "error": f"{type(e).__name__}: {e}", "worker": {"pid": os.getpid()}}
        if status == "error":
            result["traceback"] = traceback.format_exc()
    result["wall_s"] = time.perf_counter() - start
    atomic_write(result_path, json.dumps(result))
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
