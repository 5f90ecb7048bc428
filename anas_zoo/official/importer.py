"""The import pipeline: from an official supernet checkpoint to the paper's A-models in the weight store.

:func:`load_official_supernet` reads the file (:mod:`~anas_zoo.official.reader`) and maps it onto our
supernet (:mod:`~anas_zoo.official.keymap`); :func:`import_official` extracts each A-model, recalibrates its
BatchNorm statistics on training batches (:func:`imagenet_calibration`) and stores it with the provenance
of its source file (:func:`check_source`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from tqdm import tqdm

from anas_zoo.fileio import file_digest
from anas_zoo.flops import count
from anas_zoo.official.keymap import to_ours
from anas_zoo.official.reader import official_state_dict, read_official_checkpoint
from anas_zoo.paper_models import ALPHANET_TAG, ATTENTIVENAS_TAG, OFFICIAL_LICENSE
from anas_zoo.store import save_weights, store_dir
from anas_zoo.supernet import SuperNet
from anas_zoo.train.calibrate import calibrate_bn
from anas_zoo.train.data import image_folder_loader
from anas_zoo.zoo import get_entry

KINDS = ("attentivenas", "alphanet")
MODELS = ("a0", "a1", "a2", "a3", "a4", "a5", "a6")
#: MD5 of the released files; none is recorded for the AlphaNet file.
RELEASE_MD5 = {"attentivenas": "52741b01f92e680254bfa55c29ebdb71"}
RELEASE_FILES = {"attentivenas": "attentive_nas_pretrained.pth.tar", "alphanet": "alphanet_pretrained.pth.tar"}


def load_official_supernet(path: str | Path, space: str = "attentivenas") -> SuperNet:
    """A :class:`SuperNet` holding the weights of an official checkpoint file (eval mode)."""
    supernet = SuperNet(space)
    state = official_state_dict(read_official_checkpoint(path), where=str(path))
    supernet.load_state_dict(to_ours(state, supernet), strict=True, assign=True)
    return supernet.eval()


def target_name(kind: str, model: str) -> tuple[str, str]:
    """(registered model name, weight tag) that an A-model of a ``kind`` checkpoint is stored under."""
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind '{kind}'; allowed: {', '.join(KINDS)}")
    if model not in MODELS:
        raise ValueError(f"unknown model '{model}'; allowed: {', '.join(MODELS)}")
    if kind == "alphanet":
        return ("alphanet_a5" if model == "a5" else f"attentivenas_{model}"), ALPHANET_TAG
    return f"attentivenas_{model}", ATTENTIVENAS_TAG


def imagenet_calibration(root: str | Path, batch_size: int = 64, num_workers: int = 2) -> tuple[Callable, dict]:
    """(``calib_batches`` for :func:`import_official`, its metadata) over an ImageNet-style training folder,
    with the published training preprocessing at each model's resolution."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"calibration data {root} is not a folder; expected an ImageNet-style train/<class>/ tree")

    def batches(resolution: int) -> Iterable:
        return image_folder_loader(root, resolution, train=True, batch_size=batch_size, num_workers=num_workers)

    info = {
        "data": str(root),
        "batch_size": batch_size,
        "preprocessing": "RandomResizedCrop (bicubic) to the model resolution + horizontal flip, ImageNet mean/std",
        "method": "running statistics reset, cumulative average over forward-only training batches",
    }
    return batches, info


def md5_of(path: str | Path) -> str:
    """The MD5 of a file, the digest the authors published for their release."""
    return file_digest(path, "md5")


def check_source(path: str | Path, kind: str) -> dict:
    """Provenance of a checkpoint file: name, kind, MD5 and whether it is the released file's (None: unknown)."""
    path = Path(path)
    md5 = md5_of(path)
    known = RELEASE_MD5.get(kind)
    if known is None:
        warnings.warn(f"no release MD5 is recorded for {kind} checkpoints; {path.name} has MD5 {md5}", stacklevel=2)
    elif md5 != known:
        warnings.warn(
            f"{path.name} has MD5 {md5}, not the released {RELEASE_FILES[kind]}'s {known}; importing anyway",
            stacklevel=2,
        )
    return {"file": path.name, "kind": kind, "md5": md5, "md5_matches_release": None if known is None else md5 == known}


def import_official(
    path: str | Path,
    kind: str = "attentivenas",
    models: Iterable[str] = MODELS,
    calib_batches: Callable[[int], Iterable] | None = None,
    num_calib_batches: int = 64,
    calibration_info: dict | None = None,
    store: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict:
    """Map an official checkpoint onto our supernet, extract each A-model and write it to the weight store.

    ``calib_batches(resolution)`` yields preprocessed training batches for BN recalibration (run on
    ``device``, described by ``calibration_info`` in the metadata); without it the stored statistics
    are kept and the weights are marked ``uncalibrated``. Returns the source's provenance
    (:func:`check_source`) and one summary per written weight set under ``weights``.
    """
    targets = [(model, *target_name(kind, model)) for model in models]
    supernet = load_official_supernet(path)
    source = check_source(path, kind)
    if calib_batches is None:
        warnings.warn(
            "NO BN RECALIBRATION (--calib-data not given): the released supernet's BN statistics are not those "
            "of its sub-networks, so accuracy will be far below the paper's; weights are marked 'uncalibrated'",
            stacklevel=2,
        )
    store = Path(store) if store else store_dir()
    written = []
    for model, name, tag in tqdm(targets, desc="import", unit="model", disable=not progress):
        entry = get_entry(name)
        static = supernet.extract(entry.arch)
        if calib_batches is not None:
            used = calibrate_bn(static.to(device), calib_batches(entry.arch.resolution), num_calib_batches, device)
            calibration = {"status": "calibrated", "batches": used, **(calibration_info or {})}
        else:
            calibration = {"status": "uncalibrated", "note": "BN statistics as stored in the supernet checkpoint"}
        static.cpu().eval()
        macs, params = count(entry.arch, entry.space, entry.num_classes)
        record = {
            **entry.metadata(tag),
            "macs": macs,
            "params": params,
            "license": OFFICIAL_LICENSE,
            "source": source,
            "calibration": calibration,
        }
        json_path = save_weights(static, record, store, f"{name}.{tag}")
        written.append({"model": model, "name": f"{name}.{tag}", "path": str(json_path), "calibration": calibration["status"]})
    return {**source, "weights": written}
