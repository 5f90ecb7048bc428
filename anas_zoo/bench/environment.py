"""What a latency figure was measured on: hardware, software versions, thread settings, env vars.

Latency numbers are meaningless without this record, so every run JSON embeds it. Everything is read
from the OS or the installed packages; anything that cannot be read is ``None`` (never guessed),
except :func:`fp32_peak_estimate`, which is an explicit estimate that lists its assumptions.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import onnxruntime
import torch

from anas_zoo.provenance import __version__, source_commit

#: Environment variables that change how many threads a math library uses, or which kernels it picks.
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "OMP_PROC_BIND",
    "OMP_PLACES",
    "KMP_AFFINITY",
    "KMP_BLOCKTIME",
    "MKL_DEBUG_CPU_TYPE",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "ORT_DISABLE_ALL_OPTIMIZATIONS",
    "CUDA_VISIBLE_DEVICES",
    "TORCHINDUCTOR_FREEZING",
    "ONEDNN_PRIMITIVE_CACHE_CAPACITY",
)

#: The /proc/cpuinfo flags recorded: fp32 SIMD width, and the int8 dot-product instructions (VNNI, AMX) that decide
#: whether int8 kernels can outrun fp32 ones.
ISA_FLAGS = ("avx512f", "avx512bw", "avx512_bf16", "avx512_vnni", "avx512_fp16", "amx_tile", "amx_int8", "avx2", "fma",
             "avx_vnni", "neon", "asimd", "asimddp", "i8mm")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _cpuinfo() -> dict:
    """CPU model, flags and clock from /proc/cpuinfo (Linux) or platform (elsewhere)."""
    text = _read("/proc/cpuinfo") or ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    mhz = fields.get("cpu MHz")
    return {
        "model": fields.get("model name") or platform.processor() or None,
        "flags": fields.get("flags", "").split(),
        "mhz": float(mhz) if mhz else None,
    }


def _physical_cores() -> int | None:
    """Distinct (package, core) pairs from sysfs topology; None when not readable."""
    cores = set()
    for cpu in Path("/sys/devices/system/cpu").glob("cpu[0-9]*"):
        package = _read(f"{cpu}/topology/physical_package_id")
        core = _read(f"{cpu}/topology/core_id")
        if package is not None and core is not None:
            cores.add((package, core))
    return len(cores) or None


def _max_mhz() -> float | None:
    khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    return int(khz) / 1000.0 if khz and khz.isdigit() else None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _gpus() -> list[dict]:
    """Name, memory and driver of each visible CUDA GPU (empty without CUDA)."""
    if not torch.cuda.is_available():
        return []
    driver = None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            check=False, capture_output=True, text=True, timeout=10,
        )
        driver = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        gpus.append({
            "index": i,
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 2),
            "capability": f"{props.major}.{props.minor}",
            "driver": driver,
            "cuda_runtime": torch.version.cuda,
        })
    return gpus


def thread_settings(threads: int | None = None) -> dict:
    """Thread settings as this process sees them now (torch pools + env vars)."""
    return {"requested_intra_op": threads, "torch_intra_op": torch.get_num_threads(),
            "torch_inter_op": torch.get_num_interop_threads(),
            "env": {k: os.environ[k] for k in THREAD_ENV_VARS if k in os.environ}}


def capture_environment(threads: int | None = None) -> dict:
    """The full environment record attached to every result."""
    cpu = _cpuinfo()
    logical = os.cpu_count()
    physical = _physical_cores()
    return {
        "cpu": {
            "model": cpu["model"],
            "logical_cores": logical,
            "physical_cores": physical,
            "smt": (logical // physical > 1) if logical and physical else None,
            "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "mhz_now": cpu["mhz"],
            "mhz_max": _max_mhz(),
            "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            "isa": [f for f in ISA_FLAGS if f in cpu["flags"]],
            "virtualized": "hypervisor" in cpu["flags"],
        },
        "gpus": _gpus(),
        "os": {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
               "libc": "-".join(platform.libc_ver()) or None},
        "python": sys.version.split()[0],
        "packages": {p: _version(p) for p in ("torch", "onnxruntime", "onnxruntime-gpu", "onnx", "numpy", "openvino",
                                              "nncf", "executorch", "torchao")},
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "anas_zoo": {"version": __version__, **source_commit()},
        "threads": thread_settings(threads),
    }


def fp32_peak_estimate(env: dict, cores: int | None = None) -> dict:
    """Theoretical fp32 multiply-accumulate peak of the CPU: cores × FMA units × SIMD lanes × clock.

    Returns the figure with every assumption spelled out; ``cores`` defaults to the physical cores.
    The FMA-unit count is not readable from the OS: 2 per core is assumed for AVX-512/AVX2 server
    cores (1 for CPUs without FMA), which is the upper end for most x86 parts.
    """
    cpu = env["cpu"]
    isa = set(cpu["isa"])
    if "avx512f" in isa:
        lanes, simd = 16, "AVX-512 (16 fp32 lanes)"
    elif "avx2" in isa or "fma" in isa:
        lanes, simd = 8, "AVX2/FMA (8 fp32 lanes)"
    elif "neon" in isa or "asimd" in isa:
        lanes, simd = 4, "NEON (4 fp32 lanes)"
    else:
        lanes, simd = 4, "SSE (4 fp32 lanes, no FMA)"
    fma_units = 2 if "fma" in isa or "avx512f" in isa else 1
    mhz = cpu["mhz_max"] or cpu["mhz_now"]
    clock_source = "cpuinfo_max_freq" if cpu["mhz_max"] else "/proc/cpuinfo 'cpu MHz' (current, not turbo)"
    if mhz is None and cpu["model"]:
        match = re.search(r"@\s*([\d.]+)\s*GHz", cpu["model"])
        mhz = float(match.group(1)) * 1000 if match else None
        clock_source = "model name"
    n = cores or cpu["physical_cores"] or cpu["logical_cores"]
    gmacs = n * fma_units * lanes * mhz / 1000.0 if mhz else None
    return {
        "peak_gmacs_per_s": gmacs,
        "cores": n,
        "fma_units_per_core": fma_units,
        "fp32_lanes": lanes,
        "clock_mhz": mhz,
        "assumptions": [
            f"{n} core(s) used (the physical cores unless a thread count is given)",
            f"SIMD: {simd}, from the CPU flags",
            f"{fma_units} FMA unit(s) per core (assumed, not readable from the OS)",
            f"clock {mhz} MHz from {clock_source}; AVX-512 code often runs below this clock",
            "one FMA = one multiply-accumulate (MAC), the unit of the MACs column",
        ],
    }
