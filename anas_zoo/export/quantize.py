"""Static int8 quantization (ONNX Runtime, QDQ, per-channel weights) calibrated on real images.

Images come from an ImageNet-style folder (``<root>/<class>/*.jpg``) or from CIFAR-10 (the JPEG
archive, or a folder with ``train/`` and ``test/``), read through :mod:`anas_zoo.train.data` and
preprocessed with the model's data config (:func:`~anas_zoo.pretrained_cfg.resolve_data_config`). The same
readers give the labelled batches that measure fp32 vs int8 accuracy, and :func:`latency_ms` times a file
on ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import torch

from anas_zoo.data_config import DataConfig, create_transform
from anas_zoo.export.errors import ExportError
from anas_zoo.export.session import INPUT_NAME, OUTPUT_NAME, ort_session
from anas_zoo.timing import collect_samples, timed
from anas_zoo.train.data import IMAGE_EXTENSIONS, cifar10_loader, image_folder_loader, load_cifar10

CALIB_BATCH = 16


def _is_cifar(source: Path) -> bool:
    """The CIFAR-10 archive, or a folder laid out as ``train/<class>`` and ``test/<class>`` of CIFAR-10."""
    return source.is_file() or ((source / "train" / "airplane").is_dir() and (source / "test" / "airplane").is_dir())


def check_data_source(source: str | Path, role: str) -> Path:
    """``source`` as a Path, after checking that it is a readable archive or a folder holding images."""
    path = Path(source).expanduser()
    if not path.exists():
        raise ExportError(
            f"{role} data '{source}' does not exist; give an image folder (<root>/<class>/*.jpg) "
            "or the CIFAR-10 archive (cifar10-jpeg.tar.xz)"
        )
    if path.is_dir() and not _is_cifar(path) and not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.glob("*/*")):
        raise ExportError(f"{role} data folder '{source}' has no <class>/*.jpg|png images")
    return path


def image_batches(source: str | Path, config: DataConfig, samples: int, split: str, batch_size: int
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(float NCHW images, int64 labels) batches of up to ``samples`` images, preprocessed with ``config``.

    CIFAR-10 takes ``split`` ('train' for calibration, 'test' for accuracy) and an evenly spread,
    class-balanced subset; folder images go through ``config``'s transform.
    """
    path = check_data_source(source, "image")
    if _is_cifar(path):
        images, labels = load_cifar10(path)[split]
        index = torch.linspace(0, len(images) - 1, min(samples, len(images))).round().long()
        return iter(cifar10_loader((images[index], labels[index]), batch_size, train=False,
                                   resolution=config.resolution, mean=config.mean, std=config.std))
    return iter(image_folder_loader(path, config.resolution, train=False, batch_size=batch_size, num_workers=0,
                                    limit=samples, shuffle=False, transform=create_transform(config)))


def load_images(source, config: DataConfig, samples: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    """All of :func:`image_batches` as two arrays (float32 images, int64 labels)."""
    batches = list(image_batches(source, config, samples, split, CALIB_BATCH))
    if not batches:
        raise ExportError(f"no images could be read from '{source}'")
    return (torch.cat([x for x, _ in batches]).numpy().astype(np.float32),
            torch.cat([y for _, y in batches]).numpy().astype(np.int64))


def _chunks(x: np.ndarray, size: int) -> list[np.ndarray]:
    """``x`` cut into batches of exactly ``size`` (a fixed-batch graph accepts nothing else)."""
    return [x[i : i + size] for i in range(0, len(x) - size + 1, size)]


class _Reader:
    """The CalibrationDataReader protocol over a list of input batches."""

    def __init__(self, batches: Sequence[np.ndarray]):
        self._batches = iter(batches)

    def get_next(self) -> dict | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def quantize_int8(fp32_path: Path, out_path: Path, calib_data, *, config: DataConfig, samples: int,
                  exclude_nodes: Sequence[str] = (), batch: int | None = None
                  ) -> tuple[onnx.ModelProto, dict, np.ndarray]:
    """(int8 model, what was done, the calibration images) for the fp32 file ``fp32_path``.

    QDQ format, uint8 activations (asymmetric, MinMax calibration), int8 per-channel weights in the 7-bit
    range; nodes named in ``exclude_nodes`` (names of the fp32 graph) stay in float. ``batch`` is the graph's
    fixed batch, None for a dynamic one.

    7-bit weights because the file must work on every x86 CPU: without VNNI (AVX2, AVX-512 before Cascade
    Lake) ONNX Runtime's u8 x s8 kernels add pairs of products in 16 bits, which full-range weights overflow.
    On a 2-core AMD EPYC (AVX2) full-range weights cost attentivenas_cifar10_a0 9.4 points of top-1 (79.20 ->
    69.82 % on 5,000 test images) and a6 1.4; 7-bit ones 0.16 and 0.02, no slower (benchmarks/runtime_ratios.py
    before and after this choice).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    graph_nodes = [n.name for n in onnx.load(str(fp32_path)).graph.node]
    unknown = sorted(set(exclude_nodes) - set(graph_nodes))
    if unknown:
        examples = ", ".join(graph_nodes[:4])
        raise ExportError(f"exclude_nodes names not in the graph: {', '.join(unknown)}; node names look like {examples}")
    images, _ = load_images(calib_data, config, samples, split="train")
    batches = _chunks(images, batch) if batch else np.array_split(images, -(-len(images) // CALIB_BATCH))
    if not batches:
        raise ExportError(f"{len(images)} calibration images make no batch of {batch} for this fixed-batch graph")
    prepared = out_path.with_name("prepared.onnx")
    quant_pre_process(str(fp32_path), str(prepared))
    quantize_static(
        str(prepared), str(out_path), _Reader(batches), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude_nodes),
        calibrate_method=CalibrationMethod.MinMax, reduce_range=True,
    )
    info = {
        "method": "onnxruntime static quantization, QDQ",
        "activations": "uint8 asymmetric, per-tensor",
        "weights": "int8 symmetric, per-channel, 7-bit range (no u8 x s8 overflow on CPUs without VNNI)",
        "calibration": "minmax",
        "calib_data": str(calib_data),
        "calib_samples": int(sum(len(b) for b in batches)),
        "excluded_nodes": list(exclude_nodes),
    }
    return onnx.load(str(out_path)), info, images[:3]


def latency_ms(path: Path, resolution: int, batch: int = 1, threads: int = 2, warmup: int = 5, runs: int = 30) -> dict:
    """Median and minimum wall time of one ONNX Runtime CPU call at ``batch`` with ``threads`` threads."""
    session = ort_session(path, threads)
    x = np.random.default_rng(0).standard_normal((batch, 3, resolution, resolution), dtype=np.float32)
    call = timed(lambda: session.run([OUTPUT_NAME], {INPUT_NAME: x}))
    times = collect_samples(call, warmup=warmup, min_iters=runs, max_iters=runs)
    return {"median": float(np.median(times)), "min": float(np.min(times)), "runs": runs, "threads": threads,
            "batch": batch}
