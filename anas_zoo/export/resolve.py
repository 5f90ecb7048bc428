"""An export's inputs, checked before any work: the model (name, StaticNet or checkpoint) resolved to an eval-mode
copy, its optional runtime, precision, resolution and data options, and the BN folding checked in PyTorch."""

from __future__ import annotations

import copy
import importlib
import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from anas_zoo.export.errors import ExportError
from anas_zoo.export.fold import fold_batchnorm
from anas_zoo.export.quantize import check_data_source
from anas_zoo.export.report import ExportReport
from anas_zoo.static import StaticNet
from anas_zoo.zoo import find_weights, get_entry, load, load_into, split_name

log = logging.getLogger("anas_zoo.export")

MAX_RESOLUTION = 1024


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
