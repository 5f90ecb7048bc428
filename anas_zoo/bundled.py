"""Registers the weight sets bundled in ``checkpoints/`` (the project's own CIFAR-10 family).

Each ``checkpoints/NAME.TAG.json`` record written by ``anas-zoo extract`` or ``anas-zoo finetune`` is the single
source of truth for its weight set: genome, space, MACs, params, preprocessing, classes, measured metrics, licence
and ``kind``. A name has one weight set per kind: ``.cifar10``, the supernet's own sub-network (no retraining), and
``.cifar10_ft``, the same architecture fine-tuned standalone. The registry test recomputes MACs and params from the
genome, as it does for the paper models.
"""

from __future__ import annotations

import json
from itertools import groupby

from anas_zoo.data_config import DataConfig
from anas_zoo.space import ArchConfig
from anas_zoo.store import BUNDLED_DIR, FORMAT
from anas_zoo.zoo import ModelEntry, WeightSpec, register_model

PROJECT = "anas_zoo"
#: The tag a bare name loads, when present: the kind whose measured front is better (README, "The bundled CIFAR-10
#: family"; tests/test_bundled.py holds it to the records). Other tags follow in this order, then alphabetically.
TAG_PREFERENCE = ("cifar10_ft", "cifar10")
KIND_DESCRIPTIONS = {
    "supernet": "the supernet's own sub-network, no retraining",
    "finetuned": "fine-tuned standalone after extraction",
}


def _weight_spec(record: dict) -> WeightSpec:
    kind = record.get("kind", "supernet")
    return WeightSpec(
        record["tag"], record["license"], tuple(record["metrics"]),
        f"Bundled with anas_zoo in {BUNDLED_DIR}; restore it from the repository, or reinstall anas_zoo, if it is "
        "missing.",
        f"{KIND_DESCRIPTIONS.get(kind, kind)}; trained by {PROJECT} (supernet sha256 "
        f"{record['training']['supernet_sha256'][:12]})",
        kind=kind,
    )


def _tag_order(record: dict) -> tuple:
    tag = record["tag"]
    return (TAG_PREFERENCE.index(tag) if tag in TAG_PREFERENCE else len(TAG_PREFERENCE), tag)


def entries(records: list[dict]) -> list[ModelEntry]:
    """One registry entry per bundled name, its weight sets in :data:`TAG_PREFERENCE` order (the first loads by
    default); the entry's architecture and description come from the default weight set's record."""
    result = []
    for _, group in groupby(sorted(records, key=lambda r: r["name"]), key=lambda r: r["name"]):
        ordered = sorted(group, key=_tag_order)
        record, metric = ordered[0], ordered[0]["metrics"][0]
        result.append(ModelEntry(
            name=record["name"],
            arch=ArchConfig.from_dict(record["genome"]),
            space=record["space"],
            num_classes=record["num_classes"],
            macs=record["macs"],
            params=record["params"],
            preprocessing=DataConfig.from_dict(record["preprocessing"]),
            weights=tuple(_weight_spec(r) for r in ordered),
            classes=tuple(record["classes"]),
            description=(f"AttentiveNAS CIFAR-10 {record['name'].rsplit('_', 1)[1].upper()} ({record['macs'] / 1e6:.1f} "
                         f"MMACs, {metric['top1']:.2f} % top-1 on the CIFAR-10 test split with .{record['tag']}; "
                         f"weights by {PROJECT})"),
            paper="AttentiveNAS: Improving Neural Architecture Search via Attentive Sampling (CVPR 2021)",
        ))
    return result


def bundled_records() -> list[dict]:
    """Every bundled weight record (``checkpoints/*.json`` in the weights format), sorted by name and tag."""
    records = []
    for path in sorted(BUNDLED_DIR.glob("*.json")) if BUNDLED_DIR.is_dir() else ():
        record = json.loads(path.read_text())
        if record.get("format") == FORMAT:
            records.append(record)
    return records


for _entry in entries(bundled_records()):
    register_model(_entry)
