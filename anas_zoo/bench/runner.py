"""Plan latency jobs, run each in its own worker process, and keep every result on disk.

Layout of an output folder::

    OUT/environment.json          the machine and software record of the last run
    OUT/runs/<job key>.json       one per (model, backend, precision, batch, threads, device): job, raw
                                  samples, summary, cold start, worker thread settings, environment
    OUT/results.csv               one row per run JSON in OUT/runs (re-aggregated after every run)

Batch 1 is the *latency* scenario, larger batches the *throughput* scenario; every row says which,
and no aggregate ever mixes two batch sizes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from anas_zoo.bench.backends import BACKENDS, DEVICES, PRECISIONS, UnsupportedConfig, check_supported
from anas_zoo.bench.environment import capture_environment
from anas_zoo.fileio import atomic_write
from anas_zoo.flops import count
from anas_zoo.space import ArchConfig, InvalidArchError, get_space
from anas_zoo.zoo import UnknownModelError, get_entry, list_models, split_name

RESULT_COLUMNS = (
    "model", "backend", "precision", "batch", "threads", "device", "device_name", "scenario", "status",
    "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "cv", "noisy", "images_per_s", "n", "cold_start_s",
    "macs", "params", "resolution", "accuracy", "accuracy_source", "accuracy_dataset", "error",
)
#: Env vars set in every worker so OpenMP/MKL/OpenBLAS pools match the requested intra-op threads.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _accuracy(metrics) -> dict:
    """First top-1 figure of a metrics list: value, 'reported'/'measured', dataset."""
    for metric in metrics or ():
        if metric.get("top1") is not None:
            return {"accuracy": float(metric["top1"]), "accuracy_source": metric.get("source", "measured"),
                    "accuracy_dataset": metric.get("dataset")}
    return {"accuracy": None, "accuracy_source": None, "accuracy_dataset": None}


def _spec(name: str, genome: dict, space: str, num_classes: int, resolution: int | None, metrics, origin: str) -> dict:
    arch = get_space(space).validate(ArchConfig.from_dict(genome))
    res = resolution or arch.resolution
    macs, params = count(arch, space, num_classes, res)
    return {"name": name, "genome": arch.to_dict(), "space": space, "num_classes": num_classes, "resolution": res,
            "macs": macs, "params": params, "origin": origin, **_accuracy(metrics)}


def _registered(name: str, resolution: int | None) -> dict:
    entry = get_entry(name)
    tag = split_name(name)[1]
    # An accuracy figure holds at the model's own resolution only; under an override it is unknown.
    native = resolution in (None, entry.arch.resolution)
    metrics = entry.weight(tag).metrics if entry.weights and native else ()
    return _spec(name, entry.arch.to_dict(), entry.space, entry.num_classes, resolution, metrics, "registry")


def _genome_file(path: Path, resolution: int | None, space: str) -> dict:
    """A bare genome, or a record with ``genome`` (+ optional space, num_classes, name, metrics, resolution)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read genome file {path}: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"genome file {path} must hold a JSON object")
    record = data if "genome" in data else {"genome": data}
    space = record.get("space", space)
    try:
        num_classes = int(record.get("num_classes") or get_space(space).num_classes)
        own = record.get("resolution") or record["genome"]["resolution"]
        metrics = record.get("metrics") if resolution in (None, own) else ()
        return _spec(record.get("name") or path.stem, record["genome"], space, num_classes, resolution or own,
                     metrics, str(path))
    except (InvalidArchError, KeyError, TypeError) as e:
        raise ValueError(f"genome file {path}: {str(e).strip(chr(39))}") from None


def resolve_models(specs: Sequence[str], resolution: int | None = None, space: str = "attentivenas") -> list[dict]:
    """Model specs from registered names (``arch`` or ``arch.tag``), globs over them, or genome JSON files.

    ``resolution`` overrides every model's input size; ``space`` is the space of bare genome files.
    """
    models: list[dict] = []
    for spec in specs:
        if spec.endswith(".json") or Path(spec).is_file():
            models.append(_genome_file(Path(spec), resolution, space))
        elif any(c in spec for c in "*?["):
            names = list_models(spec, pretrained="." in spec)
            if not names:
                raise ValueError(f"pattern '{spec}' matches no registered model (anas-zoo list shows them)")
            models += [_registered(n, resolution) for n in names]
        else:
            models.append(_registered(spec, resolution))
    if not models:
        raise ValueError("no models given")
    return models


@dataclass(frozen=True)
class Job:
    """One isolated measurement."""

    model: dict
    backend: str
    precision: str = "fp32"
    batch: int = 1
    threads: int = 1
    device: str = "cpu"
    warmup: int = 10
    min_iters: int = 50
    min_seconds: float = 2.0
    max_iters: int = 10_000
    calib_data: str | None = None
    exporter: str = "auto"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend '{self.backend}'; allowed: {', '.join(BACKENDS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision '{self.precision}'; allowed: {', '.join(PRECISIONS)}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device '{self.device}'; allowed: {', '.join(DEVICES)}")
        for name in ("batch", "threads", "min_iters", "max_iters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def scenario(self) -> str:
        return "latency" if self.batch == 1 else "throughput"

    @property
    def key(self) -> str:
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.model["name"])
        return f"{name}__{self.backend}__{self.precision}__b{self.batch}__t{self.threads}__{self.device}"

    def to_dict(self) -> dict:
        return asdict(self)


def worker_env(threads: int) -> dict:
    """The environment of a worker: the parent's, with the math-library thread variables fixed."""
    env = dict(os.environ)
    env.update({var: str(threads) for var in THREAD_VARS})
    return env


def run_job(job: Job, timeout: float = 1800.0) -> dict:
    """Run ``job`` in a fresh ``python -m anas_zoo.bench.worker`` process; returns its result record.

    A combination its backend does not measure is recorded as ``unsupported`` without starting a worker.
    """
    try:
        check_supported(job.backend, job.precision, job.device, job.batch, job.calib_data)
    except UnsupportedConfig as e:
        return {"status": "unsupported", "error": f"UnsupportedConfig: {e}"}
    with tempfile.TemporaryDirectory(prefix="anas_job_") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(json.dumps(job.to_dict()))
        try:
            proc = subprocess.run([sys.executable, "-m", "anas_zoo.bench.worker", str(job_path), str(result_path)],
                                  env=worker_env(job.threads), check=False, capture_output=True, text=True,
                                  timeout=timeout)
            stderr = proc.stderr
        except subprocess.TimeoutExpired:
            return {"status": "error", "error": f"worker timed out after {timeout:.0f} s"}
        if not result_path.is_file():
            tail = " | ".join(stderr.strip().splitlines()[-3:])
            return {"status": "error", "error": f"worker exited {proc.returncode} without a result: {tail}"}
        return json.loads(result_path.read_text())


def device_name(device: str, env: dict) -> str:
    """A human name of the hardware behind ``device`` (CPU model or GPU name)."""
    if device == "cuda" and env["gpus"]:
        return env["gpus"][0]["name"]
    return env["cpu"]["model"] or "unknown cpu"


def result_row(run: dict) -> dict:
    """The results.csv row of one run record."""
    job, model, summary = run["job"], run["job"]["model"], run.get("summary") or {}
    cold = run.get("cold_start") or {}
    row = {
        "model": model["name"], "backend": job["backend"], "precision": job["precision"], "batch": job["batch"],
        "threads": job["threads"], "device": job["device"], "device_name": run["device_name"],
        "scenario": run["scenario"], "status": run["status"],
        **{k: summary.get(k) for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "cv", "noisy",
                                       "images_per_s", "n")},
        "cold_start_s": sum(v for k, v in cold.items() if k.endswith("_s")) if cold else None,
        "macs": model["macs"], "params": model["params"], "resolution": model["resolution"],
        "accuracy": model.get("accuracy"), "accuracy_source": model.get("accuracy_source"),
        "accuracy_dataset": model.get("accuracy_dataset"), "error": run.get("error"),
    }
    return row


def load_runs(out: str | Path) -> list[dict]:
    """Every run record in ``out/runs``, sorted by job key."""
    return [json.loads(p.read_text()) for p in sorted((Path(out) / "runs").glob("*.json"))]


def write_results_csv(out: str | Path) -> Path:
    """Re-aggregate ``out/results.csv`` from all run records in ``out/runs``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for run in load_runs(out):
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in result_row(run).items()})
    path = Path(out) / "results.csv"
    atomic_write(path, buffer.getvalue())
    return path


def refresh_accuracy(out: str | Path) -> list[str]:
    """Give every run in ``out/runs`` of a registered model the top-1 its registered weights carry now, rewrite the
    changed run records and ``out/results.csv``; returns the names whose figure changed.

    Latency does not depend on the weight values, so a run measured before a model was retrained keeps its timing
    and takes the new accuracy. A run whose registered architecture has changed since is refused: its timing
    belongs to another network, and nothing is rewritten.
    """
    updates, current = {}, {}
    for path in sorted((Path(out) / "runs").glob("*.json")):
        run = json.loads(path.read_text())
        model = run["job"]["model"]
        if model["origin"] != "registry":
            continue
        key = (model["name"], model["resolution"])
        if key not in current:
            try:
                current[key] = _registered(*key)
            except UnknownModelError as e:
                raise ValueError(f"{path.name}: {e}") from None
        now = current[key]
        if (now["genome"], now["space"], now["num_classes"]) != (model["genome"], model["space"], model["num_classes"]):
            raise ValueError(f"{path.name}: {model['name']} is registered with another architecture than the one "
                             "this run measured; measure it again instead")
        accuracy = {k: now[k] for k in ("accuracy", "accuracy_source", "accuracy_dataset")}
        if any(model.get(k) != v for k, v in accuracy.items()):
            model.update(accuracy)
            updates[path] = run
    for path, run in updates.items():
        atomic_write(path, json.dumps(run) + "\n")
    write_results_csv(out)
    return sorted({run["job"]["model"]["name"] for run in updates.values()})


def run_benchmark(jobs: Sequence[Job], out: str | Path, *, timeout: float = 1800.0, progress: bool = True,
                  on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Run every job in its own process, writing its run record and the aggregated CSV as soon as it ends."""
    out = Path(out)
    env = capture_environment(jobs[0].threads if jobs else None)
    atomic_write(out / "environment.json", json.dumps(env, indent=2) + "\n")
    runs = []
    bar = tqdm(jobs, desc="latency", unit="run", disable=not progress)
    for job in bar:
        bar.set_postfix_str(job.key)
        result = run_job(job, timeout)
        run = {"job": job.to_dict(), "scenario": job.scenario, "device_name": device_name(job.device, env),
               "parent_pid": os.getpid(), **result, "environment": env}
        atomic_write(out / "runs" / f"{job.key}.json", json.dumps(run) + "\n")
        write_results_csv(out)
        runs.append(run)
        if on_result:
            on_result(run)
    return runs
