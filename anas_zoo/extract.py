"""Turn genomes of a trained CIFAR-10 supernet into standalone weight sets that ``anas_zoo.load`` serves.

Per genome: slice it out of the supernet (:meth:`SuperNet.extract`), recalibrate its BN statistics on
the held-out split the supernet never trained on (augmented as training augments, so the statistics match what
the weights were trained under), round it to its storage dtype, measure top-1/top-5 on
the CIFAR-10 test split with the model's own preprocessing, and save safetensors + the JSON metadata
record (genome, space, MACs, params, preprocessing, classes, metrics with split and sample count, recipe,
commit, calibration, licence, dtype, sha256) via :func:`anas_zoo.store.save_weights`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from anas_zoo.data_config import DataConfig
from anas_zoo.evaluate import evaluate
from anas_zoo.fileio import check_output_dir, sha256_of
from anas_zoo.flops import count
from anas_zoo.space import ArchConfig
from anas_zoo.store import check_name_part, read_record, save_weights, stored_tensors
from anas_zoo.train.calibrate import calibrate_bn
from anas_zoo.train.checkpoint import load_supernet, read_checkpoint
from anas_zoo.train.data import CIFAR10_CLASSES, calibration_loader, cifar10_loader, cifar10_split, load_cifar10

OWN_WEIGHTS_LICENSE = "apache-2.0"
#: What a record's weights are (its ``kind``): sliced out of the supernet as trained (the paper's claim: no
#: retraining), or fine-tuned standalone afterwards (``anas-zoo finetune``).
SUPERNET_KIND, FINETUNED_KIND = "supernet", "finetuned"


def _batches(split: tuple[torch.Tensor, torch.Tensor], resolution: int, batch_size: int):
    """Unaugmented batches of a split, in order, preprocessed for a model at ``resolution``."""
    return cifar10_loader(split, batch_size, train=False, resolution=resolution)


def extract_weights(
    supernet_path: str | Path,
    genomes: Sequence[ArchConfig],
    names: Sequence[str],
    out_dir: str | Path,
    tag: str = "cifar10",
    data: str | Path | None = None,
    batch_size: int = 250,
    extra: Sequence[dict] | None = None,
    progress: bool = False,
    dtype: str = "float32",
) -> list[dict]:
    """Extract, calibrate, evaluate and save ``genomes`` as ``out_dir/<name>.<tag>.{safetensors,json}``.

    Calibration uses the whole held-out split the checkpoint's recipe recorded (fraction and seed);
    ``extra[i]`` is merged into model ``i``'s record (e.g. its search score). The weights are stored in
    ``dtype`` and measured as stored, so the recorded accuracy is what loading them gives. Returns the
    records as written.
    """
    if len(genomes) != len(names):
        raise ValueError(f"{len(genomes)} genomes but {len(names)} names")
    if not genomes:
        raise ValueError("no genomes to extract")
    for name in names:
        check_name_part(name, "model name")
    check_name_part(tag, "weight tag")
    check_output_dir(out_dir, "output folder")
    supernet = load_supernet(supernet_path)
    _, meta = read_checkpoint(supernet_path)
    state = meta.get("state", {})
    recipe = state.get("config", {})
    if recipe.get("data", "cifar10") != "cifar10":
        raise ValueError(f"{supernet_path} was trained on data={recipe['data']!r}; extraction evaluates CIFAR-10 only")
    fraction, seed = recipe.get("holdout_fraction", 0.1), recipe.get("seed", 0)
    splits = cifar10_split(load_cifar10(data), fraction, seed=seed)
    training = {
        "supernet_sha256": sha256_of(supernet_path),
        "steps": state.get("step"),
        "train_seconds": state.get("train_seconds"),
        "recipe": recipe,
        "source": state.get("source"),
        "lineage": state.get("lineage", []),
    }
    records = []
    for i, (arch, name) in enumerate(zip(genomes, names)):
        model = supernet.extract(arch)
        metric, calibration = calibrate_and_measure(model, arch.resolution, splits, batch_size, dtype, progress)
        calibration.update(fraction=fraction, seed=seed)
        macs, params = count(arch, supernet.space, supernet.num_classes)
        record = {
            "name": name,
            "tag": tag,
            "kind": SUPERNET_KIND,
            "space": supernet.space.name,
            "genome": arch.to_dict(),
            "resolution": arch.resolution,
            "num_classes": supernet.num_classes,
            "classes": list(CIFAR10_CLASSES),
            "macs": macs,
            "params": params,
            "preprocessing": DataConfig.cifar10(arch.resolution).to_dict(),
            "metrics": [metric],
            "calibration": calibration,
            "training": training,
            "license": OWN_WEIGHTS_LICENSE,
            **(extra[i] if extra else {}),
        }
        records.append(read_record(save_weights(model, record, out_dir, f"{name}.{tag}", dtype)))
    return records


def calibrate_and_measure(model: torch.nn.Module, resolution: int, splits: dict, batch_size: int = 250,
                          dtype: str = "float32", progress: bool = False) -> tuple[dict, dict]:
    """Recalibrate ``model``'s BN on the whole held-out split, round it to its storage ``dtype`` (in place) and
    measure it on the CIFAR-10 test split: (the record's test metric, its calibration entry). Extraction and
    fine-tuning both end here, so every shipped figure is measured the same way on the weights as stored."""
    held_out = len(splits["val"][1])
    calibrate_bn(model, calibration_loader(splits["val"], batch_size, resolution), num_batches=-(-held_out // batch_size))
    model.load_state_dict(stored_tensors(model.state_dict(), dtype))
    result = evaluate(model, _batches(splits["test"], resolution, batch_size), progress=progress)
    metric = {"dataset": "cifar10", "split": "test", "top1": round(result["top1"], 2),
              "top5": round(result["top5"], 2), "samples": result["samples"], "source": "measured"}
    calibration = {"split": "held-out part of CIFAR-10 train", "images": held_out, "batch_size": batch_size,
                   "shuffled": True, "augmented": True}
    return metric, calibration
