"""Registers the weight sets bundled in ``checkpoints/`` (the project's own CIFAR-10 family).

Each ``checkpoints/NAME.TAG.json`` record written by ``anas-zoo extract`` is the single source of truth
for its entry: genome, space, MACs, params, preprocessing, classes, measured metrics and licence. The
registry test recomputes MACs and params from the genome, as it does for the paper models.
"""

from __future__ import annotations

import json

from anas_zoo.space import ArchConfig
from anas_zoo.store import BUNDLED_DIR, FORMAT
from anas_zoo.zoo import ModelEntry, WeightSpec, register_model

PROJECT = "anas_zoo"


def _entry(record: dict) -> ModelEntry:
    metric = record["metrics"][0]
    weights = WeightSpec(
        record["tag"], record["license"], tuple(record["metrics"]),
        f"Bundled with anas_zoo in {BUNDLED_DIR}; restore it from the repository, or reinstall anas_zoo, if it is missing.",
        f"trained by {PROJECT} (supernet sha256 {record['training']['supernet_sha256'][:12]})",
    )
    return ModelEntry(
        name=record["name"],
        arch=ArchConfig.from_dict(record["genome"]),
        space=record["space"],
        num_classes=record["num_classes"],
        macs=record["macs"],
        params=record["params"],
        preprocessing=record["preprocessing"],
        weights=(weights,),
        classes=tuple(record["classes"]),
        description=(f"AttentiveNAS CIFAR-10 {record['name'].rsplit('_', 1)[1].upper()} ({record['macs'] / 1e6:.1f} "
                     f"MMACs, {metric['top1']:.2f} % top-1 on the CIFAR-10 test split; weights by {PROJECT})"),
        paper="AttentiveNAS: Improving Neural Architecture Search via Attentive Sampling (CVPR 2021)",
    )


def bundled_records() -> list[dict]:
    """Every bundled weight record (``checkpoints/*.json`` in the weights format), sorted by name."""
    records = []
    for path in sorted(BUNDLED_DIR.glob("*.json")) if BUNDLED_DIR.is_dir() else ():
        record = json.loads(path.read_text())
        if record.get("format") == FORMAT:
            records.append(record)
    return records


for _record in bundled_records():
    register_model(_entry(_record))
