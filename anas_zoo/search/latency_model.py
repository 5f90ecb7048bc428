"""A latency predictor for one device: a cost model over per-layer work, fitted to real measurements.

The features of a genome are read from its concrete :class:`~anas_zoo.space.NetPlan`: how many layers
run (fixed per-op overhead), the MACs of dense convolutions, the MACs of depthwise convolutions per
kernel size (they run at very different efficiency), the SE work, and the activation volume every
layer writes (memory traffic and the fused BN/swish work). Latency is modelled as a non-negative
linear combination of those features plus a constant, fitted to minimise the *relative* error on
sub-networks measured on the device. Being linear in physical work, it extrapolates across the
space far better than a regressor on the raw genome numbers.

Contract used by the search: ``LatencyModel.predict_ms(arch)``, ``save(path)`` (JSON),
``LatencyModel.load(path)`` and :func:`build_latency_model`.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from anas_zoo.bench.backends import prepare, set_torch_threads
from anas_zoo.bench.environment import capture_environment
from anas_zoo.bench.stats import kendall_tau, mape
from anas_zoo.fileio import atomic_write
from anas_zoo.space import ArchConfig, NetPlan, SearchSpace, as_arch, get_space
from anas_zoo.static import StaticNet
from anas_zoo.timing import collect_samples, interleaved_samples

FORMAT = "anas_zoo.latency_model/1"


def space_kernels(space: SearchSpace) -> tuple[int, ...]:
    return tuple(sorted({k for stage in space.stages for k in stage.kernels}))


def feature_names(space: SearchSpace) -> list[str]:
    """Names of the features of a genome in ``space`` (MACs and elements in millions)."""
    return ["layers", "dense_mmacs", *(f"dw{k}_mmacs" for k in space_kernels(space)), "se_mmacs", "se_melems",
            "act_melems"]


def plan_features(plan: NetPlan, kernels: Sequence[int]) -> list[float]:
    """Per-image work of one sub-network: layer count, MACs by kind, SE work, activation volume."""
    layers = 0
    dense = se = se_elems = act = 0.0
    dw = dict.fromkeys(kernels, 0.0)

    def conv(c_in: int, c_out: int, size: int, k: int = 1, groups: int = 1) -> float:
        nonlocal layers, act
        layers += 1
        act += c_out * size * size
        return c_out * (c_in // groups) * k * k * size * size

    stem = plan.stem
    dense += conv(stem.c_in, stem.c_out, stem.out_size, stem.kernel)
    for b in plan.blocks:
        if b.expand:
            dense += conv(b.c_in, b.mid, b.in_size)
        dw[b.kernel] += conv(b.mid, b.mid, b.out_size, b.kernel, groups=b.mid)
        if b.se_mid is not None:
            layers += 2
            se += 2 * b.mid * b.se_mid
            se_elems += 2 * b.mid * b.out_size**2
        dense += conv(b.mid, b.c_out, b.out_size)
        if b.shortcut_conv:
            dense += conv(b.c_in, b.c_out, b.out_size)
    head = plan.head_expand
    dense += conv(head.c_in, head.c_out, head.out_size)
    dense += conv(plan.feature_mix.c_in, plan.feature_mix.c_out, 1)
    dense += conv(plan.feature_mix.c_out, plan.num_classes, 1)
    return [float(layers), dense / 1e6, *(dw[k] / 1e6 for k in kernels), se / 1e6, se_elems / 1e6, act / 1e6]


def fit_nonnegative(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Non-negative weights (constant first) minimising the relative squared error, by active-set elimination.

    Rows are divided by their target so every sub-network counts by its relative error (what MAPE and
    a latency budget care about). A feature whose least-squares weight comes out negative is dropped
    and the rest refitted, until all weights are >= 0.
    """
    design = np.hstack([np.ones((len(features), 1)), features]) / target[:, None]
    rhs = np.ones(len(target))
    active = list(range(design.shape[1]))
    while True:
        coef, *_ = np.linalg.lstsq(design[:, active], rhs, rcond=None)
        if np.all(coef >= 0) or len(active) == 1:
            weights = np.zeros(design.shape[1])
            weights[active] = np.maximum(coef, 0.0)
            return weights
        active.pop(int(np.argmin(coef)))


@dataclass
class LatencyModel:
    """Predicts the latency of a genome on the device, backend and settings it was measured with."""

    space: str
    features: list[str]
    weights: list[float]
    setting: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    measurements: list[dict] = field(default_factory=list)

    def _space(self) -> SearchSpace:
        return get_space(self.space)

    def features_of(self, arch: ArchConfig | dict | str) -> list[float]:
        space = self._space()
        plan = space.plan(as_arch(arch), self.setting.get("num_classes"), self.setting.get("resolution"))
        return plan_features(plan, space_kernels(space))

    def predict_ms(self, arch: ArchConfig | dict | str) -> float:
        """Predicted latency in ms of one call at the recorded batch size."""
        feats = self.features_of(arch)
        return float(self.weights[0] + np.dot(self.weights[1:], feats))

    def to_dict(self) -> dict:
        return {"format": FORMAT, "space": self.space, "features": self.features, "weights": self.weights,
                "setting": self.setting, "validation": self.validation, "environment": self.environment,
                "measurements": self.measurements}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model as JSON (atomically: temp file + rename)."""
        path = Path(path)
        atomic_write(path, json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> LatencyModel:
        """Read a model written by :meth:`save`; its space must be registered in this process."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read latency model {path}: {e}") from e
        if data.get("format") != FORMAT:
            raise ValueError(f"{path} is not a latency model (format {data.get('format')!r}, expected {FORMAT!r})")
        model = cls(data["space"], data["features"], data["weights"], data.get("setting", {}),
                    data.get("validation", {}), data.get("environment", {}), data.get("measurements", []))
        expected = feature_names(model._space())
        if model.features != expected or len(model.weights) != len(expected) + 1:
            raise ValueError(f"latency model {path} has features {model.features}; this version computes {expected}")
        return model


#: (sub-networks) -> their measured latencies in ms; lets tests and callers plug in another method.
Measure = Callable[[Sequence[ArchConfig]], list[float]]


def measure_interleaved(archs: Sequence[ArchConfig], space: SearchSpace, *, backend: str, threads: int,
                        precision: str, batch: int, device: str, num_classes: int | None, resolution: int | None,
                        warmup: int, iters: int, rounds: int, exporter: str, seed: int,
                        progress: bool) -> list[float]:
    """Latency of every sub-network: the minimum over ``rounds`` shuffled rounds of its per-round median.

    Every net is prepared once (export, session, warm-up; not timed), then timed ``iters`` calls at a
    time in rounds that visit all nets in a new random order. Other load on a machine comes and goes
    over minutes; interleaving spreads each net's samples over the whole measuring time and the best
    round is the least disturbed one, so nets measured minutes apart stay comparable.
    """
    set_torch_threads(threads)
    with tempfile.TemporaryDirectory(prefix="anas_latency_") as workdir:
        calls = []
        for i, arch in enumerate(tqdm(archs, desc=f"preparing on {backend}", unit="net", disable=not progress)):
            model = StaticNet(arch, space, num_classes, resolution=resolution).eval()
            prepared = prepare(backend, model, batch=batch, resolution=resolution or arch.resolution,
                               precision=precision, threads=threads, device=device,
                               workdir=Path(workdir) / str(i), exporter=exporter)
            collect_samples(prepared.call, warmup=warmup, min_iters=1, min_seconds=0.0)
            calls.append(prepared.call)
        with tqdm(total=rounds, desc="timing rounds", unit="round", disable=not progress) as bar:
            samples = interleaved_samples(calls, rounds=rounds, iters=iters, shuffle_seed=seed,
                                          progress=lambda done: bar.update(done - bar.n))
    return [min(float(np.median(one_round)) for one_round in per_round) for per_round in samples]


def build_latency_model(
    space: str | SearchSpace = "attentivenas",
    *,
    backend: str = "ort",
    threads: int = 1,
    precision: str = "fp32",
    batch: int = 1,
    device: str = "cpu",
    num_classes: int | None = None,
    resolution: int | None = None,
    num_train: int = 60,
    num_val: int = 30,
    seed: int = 0,
    warmup: int = 3,
    iters: int = 5,
    rounds: int = 5,
    exporter: str = "torchscript",
    measure: Measure | None = None,
    progress: bool = True,
) -> LatencyModel:
    """Measure random sub-networks of ``space`` on this device, fit the cost model, validate on held-out ones.

    The training set is the smallest and largest sub-network plus ``num_train - 2`` uniform samples;
    ``num_val`` further distinct uniform samples are measured and predicted to report Kendall tau and
    MAPE in ``model.validation``. Measurements (:func:`measure_interleaved`) run in this process with
    fixed threads: the builder is meant to run in its own process, as ``anas-bench latency-model``.
    ``resolution`` overrides every genome's input size (e.g. for a cheap build on a tiny space). For ORT,
    ``exporter`` defaults to the TorchScript exporter: the same BN-folded graph, exported several times faster.
    """
    space = get_space(space)
    if num_train < 3 or num_val < 2 or rounds < 1 or iters < 1:
        raise ValueError(f"need num_train >= 3, num_val >= 2, rounds >= 1, iters >= 1; got {num_train}, "
                         f"{num_val}, {rounds}, {iters}")
    rng = random.Random(seed)
    archs = [space.min_arch(), space.max_arch()]
    seen = set(archs)
    while len(archs) < num_train + num_val:
        arch = space.sample(rng)
        if arch not in seen or len(seen) >= space.size():
            seen.add(arch)
            archs.append(arch)
    setting = {"backend": backend, "threads": threads, "precision": precision, "batch": batch, "device": device,
               "num_classes": num_classes, "resolution": resolution, "warmup": warmup, "iters": iters,
               "rounds": rounds, "statistic": "min over rounds of the per-round median", "seed": seed, "exporter": exporter if backend == "ort" else None}
    start = time.perf_counter()
    if measure is None:
        measured = measure_interleaved(archs, space, backend=backend, threads=threads, precision=precision,
                                       batch=batch, device=device, num_classes=num_classes, resolution=resolution,
                                       warmup=warmup, iters=iters, rounds=rounds, exporter=exporter, seed=seed,
                                       progress=progress)
    else:
        measured = list(measure(archs))
    elapsed = time.perf_counter() - start
    model = LatencyModel(space.name, feature_names(space), [], setting)
    feats = np.array([model.features_of(a) for a in archs])
    y = np.array(measured)
    model.weights = [float(w) for w in fit_nonnegative(feats[:num_train], y[:num_train])]
    predicted = [model.predict_ms(a) for a in archs[num_train:]]
    actual = measured[num_train:]
    model.validation = {"num_train": num_train, "num_val": num_val, "kendall_tau": kendall_tau(actual, predicted),
                        "mape_percent": mape(actual, predicted), "measure_seconds": elapsed,
                        "train_mape_percent": mape(measured[:num_train], [model.predict_ms(a)
                                                                           for a in archs[:num_train]])}
    model.environment = capture_environment(threads)
    model.measurements = [{"genome": a.to_dict(), "ms": m, "split": "train" if i < num_train else "val"}
                          for i, (a, m) in enumerate(zip(archs, measured))]
    return model
