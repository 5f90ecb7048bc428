"""A model soup (Wortsman et al., 2022): the uniform average of several fine-tuned weight sets of one member.

Runs fine-tuned from the same weights with different recipes stay in one basin of the loss, and their average
is often more accurate than any of them at no cost at inference: the soup is one model of the same architecture.
BN statistics do not average, so the soup's are recalibrated on the held-out split; then it is rounded to its
storage dtype and measured on the test split like every fine-tuned weight set
(:func:`anas_zoo.extract.calibrate_and_measure`). Its record keeps every ingredient's own record of how it was
made (``finetune.ingredients``), so the whole recipe chains as for a single fine-tuning run.
"""

from __future__ import annotations

from pathlib import Path

import torch

from anas_zoo.extract import FINETUNED_KIND, calibrate_and_measure
from anas_zoo.fileio import check_output_dir
from anas_zoo.provenance import source_commit
from anas_zoo.store import STORAGE_DTYPES, check_name_part, read_record, save_weights
from anas_zoo.train.data import CIFAR10_CLASSES
from anas_zoo.train.finetune import FinetuneError, held_out_splits
from anas_zoo.zoo import find_weights, get_entry, load_record, split_name

METHOD = "uniform average of the weights, BN recalibrated on the held-out split"


def _record_path(weights: str) -> Path:
    """The ``.json`` record of an ingredient given as a registered ``NAME.TAG`` or as the path of a record."""
    if weights.endswith(".json"):
        return Path(weights)
    if split_name(weights)[1] is None:
        raise FinetuneError(f"give each ingredient as NAME.TAG or the path of a weight set's .json record, not {weights!r}")
    path = find_weights(weights)
    if path is None:
        raise FinetuneError(f"no local weights for {weights!r}")
    return Path(path)


def soup(ingredients: list[str], out: str | Path = "checkpoints", tag: str = "cifar10_ft", data_path=None,
         dtype: str = "float16", progress: bool = True) -> dict:
    """Average the weight sets ``ingredients`` (``NAME.TAG`` or record paths, at least two different ones of
    one architecture), recalibrate and measure the result, write it as ``NAME.<tag>`` into ``out`` and return its
    record."""
    if dtype not in STORAGE_DTYPES:
        raise FinetuneError(f"dtype {dtype!r} is not allowed; allowed: {', '.join(STORAGE_DTYPES)}")
    try:
        check_name_part(tag, "tag")
    except ValueError as e:
        raise FinetuneError(str(e)) from None
    paths = [_record_path(weights) for weights in ingredients]
    records = [read_record(path) for path in paths]
    if len({r["sha256"] for r in records}) < 2:
        raise FinetuneError(f"a soup averages at least two different weight sets; {', '.join(ingredients)} "
                            f"hold{'s' if len(ingredients) == 1 else ''} one")
    first = records[0]
    for weights, record in zip(ingredients, records):
        classes = record.get("num_classes") if weights.endswith(".json") else get_entry(weights).num_classes
        if classes != len(CIFAR10_CLASSES):
            raise FinetuneError(f"{weights} has {classes} classes; a soup is calibrated and measured on CIFAR-10's "
                                f"{len(CIFAR10_CLASSES)}")
        if (record["name"], record["genome"]) != (first["name"], first["genome"]):
            raise FinetuneError(f"{weights} is {record['name']} with another genome than {ingredients[0]} "
                                f"({first['name']}); a soup averages weight sets of one architecture")
    target = Path(out) / f"{first['name']}.{tag}.json"
    if any(target.resolve() == path.resolve() for path in paths):
        raise FinetuneError(f"--tag {tag} with --out {out} would overwrite an ingredient; choose another tag or "
                            "output folder")
    check_output_dir(out, "output folder")
    models = [load_record(path) for path in paths]  # hash-checked before the data is read
    splits, holdout = held_out_splits(first, data_path)

    model = models[0]
    states = [m.state_dict() for m in models]
    model.load_state_dict({key: torch.stack([s[key].float() for s in states]).mean(0) if value.is_floating_point()
                           else value for key, value in states[0].items()})
    metric, calibration = calibrate_and_measure(model, model.resolution, splits, dtype=dtype, progress=progress)
    calibration.update(holdout)
    run = {"kind": FINETUNED_KIND, "method": METHOD, "source": source_commit(),
           "ingredients": [{"weights": weights, "sha256": r["sha256"], "top1": r["metrics"][0]["top1"],
                            "finetune": r.get("finetune")} for weights, r in zip(ingredients, records)]}
    record = {k: v for k, v in first.items() if k not in ("file", "sha256", "format", "dtype")}
    record.update(tag=tag, kind=FINETUNED_KIND, metrics=[metric], calibration=calibration, finetune=run)
    return read_record(save_weights(model, record, out, f"{first['name']}.{tag}", dtype))
