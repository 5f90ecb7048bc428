"""How a model's input is prepared: the typed ``preprocessing`` record and the image transform it makes.

A :class:`DataConfig` is the ``preprocessing`` object of a weight record, typed, with the same keys on disk.
Two pipelines exist. The published ImageNet one has a ``crop``: the shorter side is resized to ``resize``
(``interpolation``), the centre ``crop`` cut out, then resized to ``resolution`` (``resize_interpolation``).
The CIFAR-10 one has none: the ``source_size`` image is resized straight to ``resolution`` (bilinear,
antialiased when shrinking). Both end scaled to [0, 1] and standardised with ``mean`` and ``std``.
:func:`create_transform` turns a config into a PIL image -> tensor function (timm's pair is
``resolve_data_config`` / ``create_transform``; the first is :func:`anas_zoo.pretrained_cfg.resolve_data_config`).
CIFAR-10 decoded in bulk takes the same steps on whole batches in :class:`~anas_zoo.train.data.TensorLoader`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from PIL import Image

from anas_zoo.train.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    eval_transform,
    resize_to,
    to_tensor,
)

#: The interpolations a pipeline may name, as PIL filters.
INTERPOLATIONS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


@dataclass(frozen=True)
class DataConfig:
    """The evaluation preprocessing of a model: see the module docstring for the two pipelines."""

    resolution: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"
    resize: int | None = None
    crop: int | None = None
    resize_interpolation: str | None = None
    source_size: int | None = None
    antialias: bool | None = None

    def __post_init__(self):
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if not isinstance(self.resolution, int) or self.resolution < 1:
            raise ValueError(f"preprocessing resolution {self.resolution!r} must be a positive integer")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"preprocessing mean {list(self.mean)} and std {list(self.std)} must be 3 values each, "
                             "std positive")
        cropped = (self.resize, self.crop, self.resize_interpolation)
        if len({value is None for value in cropped}) > 1:
            raise ValueError(f"preprocessing resize {self.resize}, crop {self.crop} and resize_interpolation "
                             f"{self.resize_interpolation!r}: give all three (the ImageNet pipeline) or none")
        allowed = tuple(INTERPOLATIONS) if self.crop is not None else ("bilinear",)
        for key in ("interpolation", "resize_interpolation"):
            value = getattr(self, key)
            if value is not None and value not in allowed:
                raise ValueError(f"preprocessing {key} {value!r} is not one of {', '.join(allowed)}")

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(channels, height, width) of the tensor the model takes."""
        return 3, self.resolution, self.resolution

    @classmethod
    def imagenet(cls, resolution: int) -> DataConfig:
        """The published evaluation pipeline: resize 256 -> centre crop 224 -> bicubic resize to ``resolution``."""
        return cls(resolution, IMAGENET_MEAN, IMAGENET_STD, interpolation="bilinear", resize=256, crop=224,
                   resize_interpolation="bicubic")

    @classmethod
    def cifar10(cls, resolution: int) -> DataConfig:
        """The CIFAR-10 pipeline: 32x32 RGB standardised, bilinear (antialiased) resize to ``resolution``."""
        return cls(resolution, CIFAR10_MEAN, CIFAR10_STD, interpolation="bilinear", source_size=32,
                   antialias=resolution < 32)

    @classmethod
    def from_dict(cls, record: dict) -> DataConfig:
        """The config of a ``preprocessing`` record; an unknown or missing key is a ValueError naming it."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(record) - set(names))
        if unknown:
            raise ValueError(f"unknown preprocessing key(s) {', '.join(unknown)}; allowed: {', '.join(names)}")
        missing = [key for key in ("resolution", "mean", "std") if key not in record]
        if missing:
            raise ValueError(f"preprocessing record has no {', '.join(missing)}; resolution, mean and std are needed")
        return cls(**record)

    def to_dict(self) -> dict:
        """The ``preprocessing`` record as stored: the keys that are set, mean and std as lists."""
        record = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        return {**record, "mean": list(self.mean), "std": list(self.std)}

    def at_resolution(self, resolution: int) -> DataConfig:
        """The same pipeline ending at ``resolution`` (a model exported or run at another input size)."""
        return dataclasses.replace(self, resolution=resolution)


@dataclass(frozen=True)
class ImageTransform:
    """A :class:`DataConfig`'s evaluation transform: an RGB PIL image -> a normalised float 3xRxR tensor."""

    config: DataConfig

    def __call__(self, image: Image.Image) -> torch.Tensor:
        c = self.config
        if c.crop is not None:
            image = eval_transform(image, c.resolution, c.resize, c.crop, INTERPOLATIONS[c.interpolation],
                                   INTERPOLATIONS[c.resize_interpolation])
            return to_tensor(image, c.mean, c.std)
        return resize_to(to_tensor(image, c.mean, c.std)[None], c.resolution)[0]


def create_transform(config: DataConfig) -> ImageTransform:
    """The function that prepares one image for a model with ``config`` (a picklable object, so DataLoader
    workers can take it)."""
    return ImageTransform(config)
