"""The typed metadata of one weight tag (timm's ``pretrained_cfg``) and the data config a model resolves to.

``model.pretrained_cfg`` is a :class:`PretrainedCfg`: typed fields for what callers use (the input pipeline,
classes, licence, hub id, file, sha256, metrics), and read-only item access to the whole record it was made
from (``cfg["macs"]``, ``cfg["training"]``, ``dict(cfg)``), so the JSON records keep their format.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from torch import nn

from anas_zoo.data_config import DataConfig


@dataclass(frozen=True)
class PretrainedCfg(Mapping):
    """One weight tag's metadata; ``tag`` and everything about weights is None for an architecture without them."""

    name: str
    num_classes: int
    preprocessing: DataConfig
    classes: tuple[str, ...] | None = None
    tag: str | None = None
    kind: str | None = None
    license: str | None = None
    hub_id: str | None = None  # "ORG/REPO[@revision]" on the Hugging Face Hub
    file: str | None = None
    sha256: str | None = None
    metrics: tuple[dict, ...] = ()
    record: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_record(cls, record: Mapping, hub_id: str | None = None) -> PretrainedCfg:
        """The config of a metadata record (a registry entry's, or a weight set's JSON); a record without
        ``name``, ``num_classes`` or ``preprocessing`` is a ValueError naming what is missing."""
        missing = [key for key in ("name", "num_classes", "preprocessing") if key not in record]
        if missing:
            raise ValueError(f"metadata record has no {', '.join(missing)}")
        classes = record.get("classes")
        return cls(
            name=record["name"], num_classes=int(record["num_classes"]),
            preprocessing=DataConfig.from_dict(record["preprocessing"]),
            classes=tuple(classes) if classes else None, tag=record.get("tag"), kind=record.get("kind") or None,
            license=record.get("license"), hub_id=hub_id, file=record.get("file"), sha256=record.get("sha256"),
            metrics=tuple(record.get("metrics") or ()), record=dict(record),
        )

    def __getitem__(self, key: str):
        return self.record[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.record)

    def __len__(self) -> int:
        return len(self.record)


def default_data_config(model: nn.Module) -> DataConfig:
    """The preprocessing of ``model``'s search space when nothing records one: CIFAR-10's for the ``cifar10``
    space, the published ImageNet pipeline otherwise."""
    space = getattr(getattr(model, "space", None), "name", None)
    return DataConfig.cifar10(model.resolution) if space == "cifar10" else DataConfig.imagenet(model.resolution)


def resolve_data_config(model: nn.Module) -> DataConfig:
    """The preprocessing ``model`` needs: its pretrained config's, at the model's own resolution (a model may be
    built or exported at another input size); its space's default (:func:`default_data_config`) without one."""
    cfg = getattr(model, "pretrained_cfg", None)
    if cfg is None:
        return default_data_config(model)
    return cfg.preprocessing.at_resolution(model.resolution)
