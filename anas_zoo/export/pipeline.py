"""What every export format shares: the report, model resolution, metadata, parity checks and atomic output.

An exporter (:mod:`~anas_zoo.export.onnx`, :mod:`~anas_zoo.export.openvino`,
:mod:`~anas_zoo.export.executorch`) resolves the model with :func:`resolve_model`, writes its files
into the :func:`staging` folder, checks them with :func:`parity` against the PyTorch model, and
hands them to :func:`publish`, which moves them into place with the sidecar JSON report, or leaves
nothing behind when the check failed.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.util
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from tqdm import tqdm

from anas_zoo import flops
from anas_zoo.data_config import DataConfig
from anas_zoo.evaluate import accuracy
from anas_zoo.export.errors import ExportError
from anas_zoo.export.fold import fold_batchnorm
from anas_zoo.export.quantize import check_data_source, image_batches, load_images
from anas_zoo.export.session import INPUT_NAME, OUTPUT_NAME
from anas_zoo.fileio import move_into_place, sha256_of, staging_folder
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.provenance import __version__
from anas_zoo.static import StaticNet
from anas_zoo.zoo import find_weights, get_entry, load, load_into, split_name

log = logging.getLogger("anas_zoo.export")

MAX_RESOLUTION = 1024
CHECK_BATCHES = (1, 3)
EVAL_BATCH = 50


class ExportCheckError(ExportError):
    """The exported file failed validation; ``report`` says how."""

    def __init__(self, message: str, report: ExportReport):
        super().__init__(message)
        self.report = report


@dataclass
class ExportReport:
    """What an exporter wrote and how it checked it (also the content of the sidecar JSON).

    ``path`` is the main file (``.onnx``, OpenVINO ``.xml``, ``.pte``); ``files`` lists every file written
    besides the sidecar. ``opset`` is the ONNX opset of the graph (OpenVINO converts from it), or None.
    """

    path: str
    sidecar: str
    model: str
    precision: str
    opset: int | None
    format: str = "onnx"
    files: list = field(default_factory=list)
    exporter: str = ""
    fallback_reason: str | None = None
    dynamic_batch: bool = True
    batch: int | None = None
    resolution: int = 0
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    bn_folded: int = 0
    fold_max_abs_diff: float | None = None
    metadata: dict = field(default_factory=dict)
    quantization: dict | None = None
    validation: dict | None = None
    passed: bool | None = None
    error: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def first_line(error: BaseException) -> str:
    """``Type: first line of the message`` (at most 300 characters), for one-line reports."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def require(module: str, extra: str):
    """Import the optional runtime ``module``, or fail in one line naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(_not_installed(module, extra)) from None


def check_installed(module: str, extra: str) -> None:
    """Fail like :func:`require` when ``module`` is not installed, without importing it (a cheap early check)."""
    if importlib.util.find_spec(module) is None:
        raise ExportError(_not_installed(module, extra))


def _not_installed(module: str, extra: str) -> str:
    return f"{module} is not installed: pip install \"anas_zoo[{extra}]\" adds it"


def check_precision(precision: str, precisions: Sequence[str], atol: float) -> None:
    if precision not in precisions:
        raise ExportError(f"unknown precision '{precision}'; choose one of {', '.join(precisions)}")
    if not atol > 0:
        raise ExportError(f"atol must be positive, got {atol}")


# ----- input checks and model resolution ---------------------------------------------------------
def check_resolution(resolution: int, space) -> None:
    """The input side must leave at least one pixel after the net's total stride, and stay sane in size."""
    stride = space.stem_stride
    for stage in space.stages:
        stride *= stage.stride
    if isinstance(resolution, bool) or not isinstance(resolution, int) or not stride <= resolution <= MAX_RESOLUTION:
        raise ExportError(
            f"resolution {resolution} is not possible for a '{space.name}' model: "
            f"use an integer from {stride} (its total stride) to {MAX_RESOLUTION}"
        )


def check_data_options(precision: str, calib_data, calib_samples: int, eval_data, eval_samples: int) -> None:
    """int8 needs calibration images; every image source given must exist and every sample count be positive."""
    if precision == "int8" and calib_data is None:
        raise ExportError("int8 needs calibration images: pass calib_data (an image folder or the CIFAR-10 archive)")
    for role, source, samples in (("calibration", calib_data if precision == "int8" else None, calib_samples),
                                  ("evaluation", eval_data, eval_samples)):
        if source is not None:
            check_data_source(source, role)
            if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
                raise ExportError(f"{role} samples must be a positive integer, got {samples}")


def writable_folder(folder: Path, what: str) -> None:
    """Create ``folder`` if needed and check that files can be written in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create the folder of output '{what}': {e.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"output folder '{folder}' is not writable")


def check_replaceable(paths: Sequence[Path]) -> None:
    """Each target is absent or a writable file, so that moving the staged files onto them cannot fail half-way."""
    for existing in paths:
        if existing.is_dir():
            raise ExportError(f"'{existing}' is a directory; the export writes a file there (remove or rename it)")
        if existing.exists() and not os.access(existing, os.W_OK):
            raise ExportError(f"'{existing}' exists and is not writable")


def _checkpoint_record(checkpoint) -> Path:
    """The JSON record of a weight set given as its ``.json`` or its ``.safetensors`` file."""
    path = Path(checkpoint).expanduser()
    record = path.with_suffix(".json") if path.suffix == ".safetensors" else path
    if path.is_file() and not record.is_file():
        raise ExportError(f"checkpoint '{checkpoint}' has no metadata record '{record}' beside it; a weight set is "
                          "NAME.safetensors with its NAME.json (written by anas-zoo extract, import-official or publish)")
    if not record.is_file():
        raise ExportError(f"checkpoint '{checkpoint}' not found (give the .json record or .safetensors of a weight set)")
    return record


def resolve_model(
    model: str | StaticNet, name: str | None, pretrained: bool | None, checkpoint, resolution: int | None
) -> tuple[StaticNet, dict, str, str]:
    """(eval-mode copy of the model at ``resolution``, its metadata record, its name, where its weights came from).

    The caller's model is never modified (weights, mode).
    """
    if isinstance(model, str):
        entry = get_entry(model)
        tag = split_name(model)[1]
        if pretrained is None:
            pretrained = checkpoint is None and bool(entry.weights) and find_weights(model) is not None
            if not pretrained and checkpoint is None:
                log.warning("no local pretrained weights for '%s': exporting random initial weights", model)
        net = load(model, pretrained=pretrained)
        weights = f"pretrained {entry.name}.{entry.weight(tag).tag}" if pretrained else "random-init"
        name = name or model
    elif isinstance(model, StaticNet):
        net = copy.deepcopy(model)
        cfg = getattr(net, "pretrained_cfg", None)
        weights = "loaded" if cfg is not None and cfg.sha256 else "user-supplied"
        name = name or (cfg.name if cfg is not None else "staticnet")
    else:
        raise ExportError(f"model must be a registered model name or a StaticNet, got {type(model).__name__}")
    if resolution is not None and resolution != net.resolution:
        check_resolution(resolution, net.space)
        resized = StaticNet(net.arch, net.space, net.num_classes, resolution=resolution)
        resized.load_state_dict(net.state_dict(), strict=True)
        if hasattr(net, "pretrained_cfg"):
            resized.pretrained_cfg = net.pretrained_cfg
        net = resized
    if checkpoint is not None:
        record = load_into(net, _checkpoint_record(checkpoint))
        weights = f"checkpoint {Path(checkpoint).name} (sha256 {record['sha256'][:12]})"
    net.eval()
    return net, dict(getattr(net, "pretrained_cfg", {})), name, weights


def fold_checked(net: StaticNet, report: ExportReport) -> torch.nn.Module:
    """``net`` with BatchNorm folded; records the count and the folded model's max |diff| in ``report``."""
    folded, report.bn_folded = fold_batchnorm(net)
    probe = torch.randn(1, 3, net.resolution, net.resolution, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        report.fold_max_abs_diff = float((folded(probe) - net(probe)).abs().max())
    return folded


# ----- metadata ----------------------------------------------------------------------------------
def _versions(runtimes: Sequence[str]) -> dict:
    versions = {"anas_zoo": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__}
    versions.update({package: version(package) for package in runtimes})
    return versions


def build_metadata(net: StaticNet, cfg: dict, name: str, weights: str, precision: str, opset: int | None,
                   license: str | None = None, runtimes: Sequence[str] = ()) -> dict:
    """The model's description carried in the file's metadata and the sidecar (JSON-able values).

    ``runtimes`` names extra packages (``openvino``, ``executorch``) whose versions made the file.
    """
    macs, params = flops.count(net.arch, net.space, net.num_classes, net.resolution)
    if license is None:
        license = cfg.get("license", "unspecified") if weights != "random-init" else "apache-2.0 (random weights)"
    return {
        "model_name": name,
        "weights": weights,
        "license": license,
        "space": net.space.name,
        "genome": net.arch.to_dict(),
        "resolution": net.resolution,
        "num_classes": net.num_classes,
        "class_labels": list(cfg["classes"]) if cfg.get("classes") else None,
        "preprocessing": resolve_data_config(net).to_dict(),
        "macs": macs,
        "params": params,
        "precision": precision,
        "opset": opset,
        "input": {"name": INPUT_NAME, "layout": "NCHW", "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "dtype": "float32"},
        "versions": _versions(runtimes),
    }


def metadata_strings(metadata: dict) -> dict[str, str]:
    """Metadata as the string key/value pairs files carry: strings as they are, everything else as JSON."""
    return {key: value if isinstance(value, str) else json.dumps(value, sort_keys=True) for key, value in metadata.items()}


def decode_metadata(pairs: dict[str, str]) -> dict:
    """The inverse of :func:`metadata_strings`."""
    out = {}
    for key, value in pairs.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


# ----- checks ------------------------------------------------------------------------------------
def compare(reference: np.ndarray, actual: np.ndarray) -> dict:
    """max/mean |diff| and top-1 agreement of two logit batches."""
    diff = np.abs(reference.astype(np.float64) - actual.astype(np.float64))
    return {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "top1_agreement": float((reference.argmax(1) == actual.argmax(1)).mean()),
        "finite": bool(np.isfinite(actual).all()),
    }


def parity(run: Callable[[np.ndarray], np.ndarray], reference: torch.nn.Module, *, precision: str, atol: float,
           batches: Sequence[int], resolution: int, real: np.ndarray | None = None) -> tuple[list[dict], bool]:
    """(rows, passed): ``run`` (a float32 NCHW batch -> logits) vs PyTorch at each batch on random/real inputs.

    fp32 passes when every max |diff| ≤ ``atol``; other precisions report their differences and pass
    when the outputs are finite and of the right shape (their agreement is a measurement).
    """
    largest = max(batches)
    inputs = {"random": np.random.default_rng(0).standard_normal((largest, 3, resolution, resolution), dtype=np.float32)}
    if real is not None and len(real) >= largest:
        inputs["real"] = np.ascontiguousarray(real[:largest], dtype=np.float32)
    # One PyTorch pass over all inputs gives the reference rows for every batch size.
    with torch.inference_mode():
        expected_all = reference(torch.from_numpy(np.concatenate(list(inputs.values())))).numpy()
    rows, passed = [], True
    for batch in batches:
        for k, (kind, x) in enumerate(inputs.items()):
            expected = expected_all[k * largest : k * largest + batch]
            got = np.asarray(run(np.ascontiguousarray(x[:batch])))
            if got.shape != expected.shape:
                row = {"input": kind, "batch": batch, "max_abs_diff": float("inf"), "mean_abs_diff": float("inf"),
                       "top1_agreement": 0.0, "finite": False, "shape": list(got.shape), "passed": False}
            else:
                row = {"input": kind, "batch": batch, **compare(expected, got)}
                row["passed"] = bool(row["finite"] and (precision != "fp32" or row["max_abs_diff"] <= atol))
            passed = passed and row["passed"]
            rows.append(row)
    return rows, passed


def parity_failure(rows: list[dict], atol: float | None, runtime: str) -> str:
    """One line naming the worst failed parity row."""
    worst = max((r for r in rows if not r["passed"]), key=lambda r: r["max_abs_diff"])
    limit = f" > atol {atol:g}" if atol is not None else " (non-finite or wrong shape)"
    return (f"{runtime} differs from PyTorch: max |diff| {worst['max_abs_diff']:.3g}{limit} "
            f"on {worst['input']} input at batch {worst['batch']}")


def check_runtime(run: Callable[[np.ndarray], np.ndarray], fp32_run: Callable[[np.ndarray], np.ndarray],
                  reference: torch.nn.Module, report: ExportReport, *, atol: float, real: np.ndarray | None,
                  eval_data, eval_samples: int, structure: list[str]) -> dict:
    """Validation of a non-ONNX file: its signature ``structure`` problems, :func:`parity` at batch 1 and 3,
    and, with ``eval_data``, top-1 of the fp32 graph and of the exported precision on its test split."""
    config = resolve_data_config(reference)
    if real is None and eval_data is not None:
        real = load_images(eval_data, config, max(CHECK_BATCHES), split="test")[0]
    rows, ran_ok = parity(run, reference, precision=report.precision, atol=atol, batches=CHECK_BATCHES,
                          resolution=report.resolution, real=real)
    validation = {"structure": structure, "parity": rows, "atol": atol if report.precision == "fp32" else None,
                  "passed": ran_ok and not structure}
    if eval_data is not None:
        runs = {"fp32": fp32_run, report.precision: run}
        validation["accuracy"] = {label: runtime_accuracy(r, eval_data, config, eval_samples)
                                  for label, r in runs.items()}
    return validation


def runtime_accuracy(run: Callable[[np.ndarray], np.ndarray], eval_data, config: DataConfig, samples: int,
                     batch: int | None = None, progress: bool = False) -> dict:
    """:func:`~anas_zoo.evaluate.accuracy` (%) of ``run`` (a float32 NCHW array -> logits, any runtime) on up to
    ``samples`` labelled images of ``eval_data`` (CIFAR-10: its test split), prepared with ``config``.
    ``batch`` is a fixed-batch graph's batch (a smaller last batch is left out), None for a free one;
    ``progress`` shows a bar on stderr."""
    if batch is not None and samples < batch:
        raise ExportError(f"{samples} evaluation images make no batch of {batch} for this fixed-batch graph")
    batches = image_batches(eval_data, config, samples, "test", batch or EVAL_BATCH)
    if batch is not None:
        batches = ((x, y) for x, y in batches if len(y) == batch)
    return accuracy(lambda x: torch.from_numpy(run(x.numpy())), batches, limit=samples, progress=progress)


def runtime_failure(runtime: str) -> Callable[[dict], str]:
    """The ``failure`` summary for :func:`publish` of a file checked by :func:`check_runtime` in ``runtime``."""
    def summary(validation: dict) -> str:
        if validation["structure"]:
            return "; ".join(validation["structure"])
        return parity_failure(validation["parity"], validation["atol"], runtime)

    return summary


# ----- staging and output ------------------------------------------------------------------------
@contextlib.contextmanager
def staging(folder: Path, output: str, name: str, steps: Sequence[str], progress: bool
            ) -> Iterator[tuple[Path, Callable[[str], None]]]:
    """(temp folder beside the output ``folder/output``, ``step(label)`` progress callback) for exporting model
    ``name``; the folder is removed afterwards, and those that killed exports of the same output left are removed
    first (:func:`anas_zoo.fileio.staging_folder`)."""
    bar = tqdm(total=len(steps), desc=f"export {name}", unit="step", disable=None if progress else True)
    done = []

    def step(label: str) -> None:
        if done:
            bar.update()
        done.append(label)
        bar.set_postfix_str(label)

    try:
        with staging_folder(folder, output) as workdir:
            yield workdir, step
        bar.update(len(steps) - bar.n)
    finally:
        bar.close()


def publish(report: ExportReport, staged: dict[Path, Path], sidecar_format: str, keep_failed: bool,
            failure: Callable[[dict], str], start: float) -> ExportReport:
    """Move the ``staged`` files (temp -> final path, main file first) into place and write the sidecar.

    A failed check (``report.passed is False``) raises :class:`ExportCheckError` with ``failure``'s
    summary and writes nothing, unless ``keep_failed``: then the files and sidecar are written first.
    ``start`` is the ``time.perf_counter()`` of the export's start.
    """
    main_staged, main_path = next(iter(staged.items()))
    report.sha256, report.size_bytes = sha256_of(main_staged), sum(p.stat().st_size for p in staged)
    report.files = [p.name for p in staged.values()]
    if report.passed is False:
        report.error = failure(report.validation)
        if not keep_failed:
            report.path = report.sidecar = ""
            report.files = []
            raise ExportCheckError(f"{report.model}: {report.error}; no file written (keep_failed keeps it)", report)
    report.seconds = round(time.perf_counter() - start, 2)
    sidecar_doc = {**report.to_dict(), "format": sidecar_format, "file": main_path.name}  # the document's format
    staged_sidecar = main_staged.parent / "sidecar.json"
    staged_sidecar.write_text(json.dumps(sidecar_doc, indent=2, default=str) + "\n")
    sidecar = Path(report.sidecar)
    check_replaceable([*staged.values(), sidecar])
    # Under a lock on the folder, so a concurrent export to the same output moves its files before or after ours.
    # The main file goes last so a reader never finds it beside stale companions (e.g. an IR's old .bin).
    move_into_place([*reversed(staged.items()), (staged_sidecar, sidecar)])
    if report.passed is False:
        raise ExportCheckError(f"{report.model}: {report.error}; kept {main_path} as asked", report)
    return report
