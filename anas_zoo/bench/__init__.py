"""Latency measurement (isolated worker processes, every sample kept) and hardware-aware Pareto tables.

    >>> from anas_zoo.bench import Job, resolve_models, run_benchmark
    >>> jobs = [Job(m, "ort", threads=2) for m in resolve_models(["attentivenas_a*"])]
    >>> runs = run_benchmark(jobs, "latency_out")        # runs/*.json, results.csv, environment.json

``anas-bench latency`` (or ``benchmarks/run_latency.py``) is the command-line front end.
"""

from anas_zoo.bench.backends import BACKENDS, DEVICES, PRECISIONS, UnsupportedConfig, prepare
from anas_zoo.bench.environment import capture_environment, fp32_peak_estimate
from anas_zoo.bench.runner import Job, load_runs, refresh_accuracy, resolve_models, run_benchmark, write_results_csv
from anas_zoo.bench.stats import NOISY_CV, kendall_tau, mape, summarize
from anas_zoo.bench.tables import pareto_table, write_pareto
from anas_zoo.pareto import pareto_front

__all__ = [
    "BACKENDS",
    "DEVICES",
    "NOISY_CV",
    "PRECISIONS",
    "Job",
    "UnsupportedConfig",
    "capture_environment",
    "fp32_peak_estimate",
    "kendall_tau",
    "load_runs",
    "mape",
    "pareto_front",
    "pareto_table",
    "prepare",
    "refresh_accuracy",
    "resolve_models",
    "run_benchmark",
    "summarize",
    "write_pareto",
    "write_results_csv",
]
