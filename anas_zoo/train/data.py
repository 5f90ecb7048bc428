"""Training and evaluation data: CIFAR-10 as cached uint8 tensors, and ImageNet-style image folders.

CIFAR-10 is decoded once (PIL) from the JPEG archive or folder into a safetensors cache outside the
repository; batches are then built on tensors (crop/flip/normalise/resize), which keeps the input
pipeline off the critical path of a CPU training step. Image folders use the published ImageNet
preprocessing through a plain PIL + ``torch.utils.data`` pipeline (torchvision is not a dependency).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import random
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from filelock import FileLock
from PIL import Image
from safetensors.torch import load_file, save_file

from anas_zoo.fileio import atomic_write
from anas_zoo.train.augment import trivial_augment, trivial_draws

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR10_COUNTS = {"train": 50_000, "test": 10_000}
#: The setting that names the CIFAR-10 data when no path is given (``--data``, ``data_path``).
DATA_ENV = "ANAS_ZOO_DATA"
_CACHE_FORMAT = "cifar10-uint8-v1"


class DataError(ValueError):
    """Missing or malformed training data."""


def data_dir() -> Path:
    """Decoded-data cache: ``$ANAS_ZOO_HOME/data`` or ``~/.cache/anas_zoo/data``."""
    home = os.environ.get("ANAS_ZOO_HOME")
    return (Path(home) if home else Path.home() / ".cache" / "anas_zoo") / "data"


def cifar10_source(source: str | Path | None = None) -> Path:
    """The CIFAR-10 archive or folder to read: ``source`` when given, else ``$ANAS_ZOO_DATA``."""
    source = source or os.environ.get(DATA_ENV)
    if not source:
        raise DataError(f"no CIFAR-10 data given: pass --data PATH or set {DATA_ENV}=PATH "
                        "(the cifar10-jpeg .tar.xz archive, or a folder with train/ and test/)")
    return Path(source).expanduser()


# ----- CIFAR-10: decoding and caching ------------------------------------------------------------
def _source_key(source: Path) -> str:
    """Identity of a data source: content hash of an archive, (path, size, mtime) listing of a folder."""
    digest = hashlib.sha256(_CACHE_FORMAT.encode())
    if source.is_file():
        with open(source, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    else:
        for path in sorted(source.glob("*/*/*.jpg")):
            stat = path.stat()
            digest.update(f"{path.relative_to(source)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _split_class(name: str) -> tuple[str, int] | None:
    """('train'|'test', class index) of an archive member like ``[prefix/]train/cat/0001.jpg``."""
    parts = Path(name).parts
    if len(parts) < 3 or not parts[-1].lower().endswith(".jpg"):
        return None
    split, cls = parts[-3], parts[-2]
    if split not in CIFAR10_COUNTS or cls not in CIFAR10_CLASSES:
        return None
    return split, CIFAR10_CLASSES.index(cls)


def _decode(data: bytes, where: str) -> torch.Tensor:
    try:
        image = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as e:  # PIL raises many types for broken files
        raise DataError(f"cannot decode image {where}: {e}") from None
    if image.size != (32, 32):
        raise DataError(f"image {where} is {image.size[0]}x{image.size[1]}, expected 32x32 CIFAR-10")
    return torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(32, 32, 3)


def _read_source(source: Path) -> Iterator[tuple[str, int, str, bytes]]:
    """(split, label, member name, JPEG bytes) for every image of an archive or folder, sorted by name."""
    if source.is_file():
        try:
            with tarfile.open(source, "r:*") as tar:
                for member in tar:
                    found = _split_class(member.name) if member.isfile() else None
                    if found:
                        yield *found, member.name, tar.extractfile(member).read()
        except tarfile.TarError as e:
            raise DataError(f"{source} is not a readable tar archive of CIFAR-10 JPEGs: {e}") from None
    else:
        for path in sorted(source.glob("*/*/*.jpg")):
            found = _split_class(str(path.relative_to(source)))
            if found:
                yield *found, str(path), path.read_bytes()


def _decode_source(source: Path) -> dict[str, torch.Tensor]:
    items: dict[str, list] = {"train": [], "test": []}
    for split, label, name, data in _read_source(source):
        items[split].append((name, label, data))
    tensors = {}
    for split in CIFAR10_COUNTS:
        rows = sorted(items[split])
        missing = sorted(set(CIFAR10_CLASSES) - {CIFAR10_CLASSES[label] for _, label, _ in rows})
        if missing:
            raise DataError(
                f"{source}: no {split} images of classes {missing}; expected {split}/<class>/*.jpg "
                f"for every class of {list(CIFAR10_CLASSES)} (full CIFAR-10: {CIFAR10_COUNTS})"
            )
        images = torch.stack([_decode(data, name) for name, _, data in rows])
        tensors[f"{split}_images"] = images.permute(0, 3, 1, 2).contiguous()
        tensors[f"{split}_labels"] = torch.tensor([label for _, label, _ in rows], dtype=torch.int64)
    return tensors


def load_cifar10(source: str | Path | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """CIFAR-10 as ``{'train': (images, labels), 'test': (images, labels)}``.

    ``images`` are uint8 N×3×32×32 (channels first, RGB), ``labels`` int64 N in
    :data:`CIFAR10_CLASSES` order. ``source`` is the JPEG tar archive or a folder holding
    ``train/<class>/*.jpg`` and ``test/<class>/*.jpg`` (default: ``$ANAS_ZOO_DATA``, see
    :func:`cifar10_source`). Decoded once into a cache under :func:`data_dir`, keyed by the source's identity;
    processes that ask at the same time (DDP ranks, parallel test workers) wait for one decode instead of each
    doing it.
    """
    source = cifar10_source(source)
    if not source.exists():
        raise DataError(
            f"CIFAR-10 source {source} does not exist; expected the cifar10-jpeg .tar.xz archive or a folder "
            "with train/<class>/*.jpg and test/<class>/*.jpg"
        )
    cache = data_dir() / f"cifar10-{_source_key(source)}.safetensors"
    cache.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(cache.with_name(cache.name + ".lock")):
        if cache.exists():
            tensors = load_file(cache)
        else:
            tensors = _decode_source(source)
            header = {"format": _CACHE_FORMAT, "source": str(source)}
            atomic_write(cache, lambda tmp: save_file(tensors, tmp, metadata=header))
    return {split: (tensors[f"{split}_images"], tensors[f"{split}_labels"]) for split in CIFAR10_COUNTS}


def cifar10_split(
    data: dict, holdout_fraction: float = 0.1, seed: int = 0
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Split ``data['train']`` into 'train' and a class-balanced held-out 'val'; 'test' passes through.

    Deterministic for a given ``seed``. 'val' is for search and BN calibration; 'test' only for reports.
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    images, labels = data["train"]
    generator = torch.Generator().manual_seed(seed)
    held, kept = [], []
    for cls in range(int(labels.max()) + 1):
        index = torch.nonzero(labels == cls).flatten()
        index = index[torch.randperm(len(index), generator=generator)]
        n = round(len(index) * holdout_fraction)
        held.append(index[:n])
        kept.append(index[n:])
    held_index, kept_index = torch.cat(held).sort().values, torch.cat(kept).sort().values
    return {
        "train": (images[kept_index], labels[kept_index]),
        "val": (images[held_index], labels[held_index]),
        "test": data["test"],
    }


# ----- tensor batches ----------------------------------------------------------------------------
def resize_to(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Bilinear (antialiased when shrinking) resize of a float NCHW batch; a no-op at the same size."""
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    return F.interpolate(
        x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=resolution < x.shape[-1]
    )


CROP_FLIP_COLUMNS = 3  # crop offset y, crop offset x, flip: the first columns of a loader's augmentation draws


def crop_flip_noise(n: int, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Per-sample augmentation draws, n×3 int64: crop offset y, crop offset x, flip (0/1)."""
    offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)
    return torch.cat([offsets, (torch.rand(n, 1, generator=generator) < 0.5).long()], 1)


def random_crop_flip(images: torch.Tensor, noise: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Standard CIFAR augmentation on a uint8 N×C×H×W batch: zero-pad, crop back, h-flip, per ``noise`` row."""
    n, _, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    dy, dx, flip = noise.unbind(1)
    cols = torch.arange(w).expand(n, w)
    cols = torch.where(flip.bool()[:, None], cols.flip(1), cols) + dx[:, None]
    rows = torch.arange(h).expand(n, h) + dy[:, None]
    batch = torch.arange(n)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def cutmix(images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """CutMix (Yun et al., 2019) on an N×C×H×W batch: one box, its area drawn uniformly, pasted from a permutation of
    the batch. Returns (mixed images, the permutation, the share of each image that is still its own); the labels
    mix by that share."""
    n, _, h, w = images.shape
    keep = torch.rand((), generator=generator).item()
    side = math.sqrt(1.0 - keep)
    box_h, box_w = round(h * side), round(w * side)
    top = int(torch.randint(0, h - box_h + 1, (), generator=generator))
    left = int(torch.randint(0, w - box_w + 1, (), generator=generator))
    order = torch.randperm(n, generator=generator)
    mixed = images.clone()
    mixed[:, :, top:top + box_h, left:left + box_w] = images[order, :, top:top + box_h, left:left + box_w]
    return mixed, order, 1.0 - box_h * box_w / (h * w)


def normalize(images: torch.Tensor, mean=CIFAR10_MEAN, std=CIFAR10_STD) -> torch.Tensor:
    """uint8 N×3×H×W → float32, scaled to [0, 1] then standardised per channel."""
    mean_t = torch.tensor(mean).view(1, -1, 1, 1) * 255.0
    scale = 1.0 / (torch.tensor(std).view(1, -1, 1, 1) * 255.0)
    return (images.float() - mean_t) * scale


class TensorLoader:
    """Batches of an in-memory uint8 image tensor: shuffled per epoch, sharded per rank, resumable.

    Training (``train=True``): epoch ``e`` uses a permutation and per-sample augmentation draws seeded
    by ``(seed, e)``, cut to whole global batches of ``batch_size × world_size``; rank ``r`` takes
    positions ``r, r + world_size, …`` of each global batch (what DistributedSampler provides), so one
    process with the global batch, split the same way, sees exactly the same samples and augmentations.
    ``state_dict()`` (epoch, batch) is all a resumed run needs. Evaluation (``train=False``) keeps every
    sample, does not augment (unless ``augment``, with fixed draws), and always starts from its first batch
    (``shuffle`` uses one fixed order). ``trivial_augment`` adds TrivialAugment (:mod:`anas_zoo.train.augment`)
    after the crop and flip, its draws made the same way.
    Yields (normalised float images, int64 labels).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        train: bool = True,
        resolution: int | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool | None = None,
        augment: bool | None = None,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        channels_last: bool = False,
        trivial_augment: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(images) != len(labels):
            raise DataError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels
        self.batch_size, self.train, self.resolution = batch_size, train, resolution
        self.shuffle = train if shuffle is None else shuffle
        self.augment = train if augment is None else augment
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.mean, self.std, self.channels_last = mean, std, channels_last
        self.trivial_augment = trivial_augment
        self.epoch, self.batch = 0, 0
        if len(self) == 0:
            raise DataError(
                f"{len(images)} samples make no batch of {batch_size} per rank across {world_size} ranks"
            )

    def __len__(self) -> int:
        """Batches per epoch (per rank). Training drops the last partial batch; evaluation keeps it."""
        if self.train:
            return len(self.images) // (self.batch_size * self.world_size)
        return math.ceil(len(self.images[self.rank :: self.world_size]) / self.batch_size)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])

    def _epoch_draws(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(sample order, augmentation draws by position) of the current epoch."""
        n = len(self.images)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + (self.epoch if self.train else 0))
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        if not self.augment:
            return order, None
        noise = crop_flip_noise(n, generator)
        return order, torch.cat([noise, trivial_draws(n, generator)], 1) if self.trivial_augment else noise

    def _prepare(self, index: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        images = self.images[index]
        if noise is not None:
            images = random_crop_flip(images, noise[:, :CROP_FLIP_COLUMNS])
            if noise.shape[1] > CROP_FLIP_COLUMNS:
                images = trivial_augment(images, noise[:, CROP_FLIP_COLUMNS:])
        x = normalize(images, self.mean, self.std)
        if self.resolution:
            x = resize_to(x, self.resolution)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels[index]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch from the current position; afterwards the position moves to the next epoch."""
        if not self.train:
            order, noise = self._epoch_draws()
            mine = torch.arange(self.rank, len(order), self.world_size)
            for start in range(0, len(mine), self.batch_size):
                positions = mine[start : start + self.batch_size]
                yield self._prepare(order[positions], None if noise is None else noise[positions])
            return
        order, noise = self._epoch_draws()
        global_batch = self.batch_size * self.world_size
        lane = self.rank + self.world_size * torch.arange(self.batch_size)
        while self.batch < len(self):
            positions = self.batch * global_batch + lane
            self.batch += 1
            yield self._prepare(order[positions], noise[positions])
        self.epoch, self.batch = self.epoch + 1, 0

    def forever(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless training batches across epochs (the training loop counts steps, not epochs)."""
        while True:
            yield from self


def cifar10_loader(
    split: tuple[torch.Tensor, torch.Tensor], batch_size: int, train: bool, resolution: int | None = None, **kwargs
) -> TensorLoader:
    """A :class:`TensorLoader` over one split of :func:`load_cifar10` / :func:`cifar10_split`."""
    images, labels = split
    return TensorLoader(images, labels, batch_size, train=train, resolution=resolution, **kwargs)


def calibration_loader(
    split: tuple[torch.Tensor, torch.Tensor], batch_size: int, resolution: int | None = None, seed: int = 0, **kwargs
) -> TensorLoader:
    """Every image of a split, in one shuffled order and augmented as training augments them (zero-padded crop,
    flip), for BatchNorm recalibration: the statistics must describe the inputs the weights were trained on.
    Unaugmented images lack the padded borders, shift the stem's statistics and cost the CIFAR-10 family 1.3-2.9
    points of test top-1 (75.92 -> 77.20 % for the smallest sub-network, 83.17 -> 85.24 % for the largest)."""
    return cifar10_loader(split, batch_size, train=False, resolution=resolution, shuffle=True, augment=True,
                          seed=seed, **kwargs)


# ----- ImageNet-style folders --------------------------------------------------------------------
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")


def folder_classes(root: str | Path) -> list[str]:
    """Class names of an ImageNet-style folder: its sub-directories, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist; expected <root>/<class>/*.JPEG")
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def _scan_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    classes = folder_classes(root)
    samples = [
        (path, label)
        for label, cls in enumerate(classes)
        for path in sorted((root / cls).iterdir())
        if path.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not samples:
        raise DataError(f"no images under {root}; expected <root>/<class>/*.JPEG (extensions {IMAGE_EXTENSIONS})")
    return classes, samples


def eval_transform(image: Image.Image, resolution: int, resize: int = 256, crop: int = 224,
                   interpolation: int = Image.BILINEAR, resize_interpolation: int = Image.BICUBIC) -> Image.Image:
    """Shorter side to ``resize`` → centre ``crop`` → ``resolution``; the defaults are the published evaluation
    preprocessing (256 bilinear → 224 → bicubic)."""
    w, h = image.size
    scale = resize / min(w, h)
    image = image.resize((max(resize, round(w * scale)), max(resize, round(h * scale))), interpolation)
    w, h = image.size
    left, top = round((w - crop) / 2), round((h - crop) / 2)
    image = image.crop((left, top, left + crop, top + crop))
    return image if crop == resolution else image.resize((resolution, resolution), resize_interpolation)


def train_transform(
    image: Image.Image, resolution: int, rng: random.Random, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)
) -> Image.Image:
    """RandomResizedCrop to ``resolution`` (bicubic) and a random horizontal flip."""
    w, h = image.size
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
            break
    else:
        cw = ch = min(w, h)
        left, top = (w - cw) // 2, (h - ch) // 2
    image = image.resize((resolution, resolution), Image.BICUBIC, box=(left, top, left + cw, top + ch))
    return image.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else image


def to_tensor(image: Image.Image, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """PIL RGB image → normalised float 3×H×W."""
    x = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(image.size[1], image.size[0], 3)
    return normalize(x.permute(2, 0, 1)[None], mean, std)[0]


class ImageFolder(torch.utils.data.Dataset):
    """``<root>/<class>/*.JPEG`` with the published train or eval preprocessing at ``resolution``; ``transform``
    (an RGB image -> normalised tensor function) replaces the eval one, e.g. a model's own
    (:func:`anas_zoo.data_config.create_transform`)."""

    def __init__(self, root: str | Path, resolution: int, train: bool, limit: int | None = None, seed: int = 0,
                 transform: Callable[[Image.Image], torch.Tensor] | None = None):
        self.root, self.resolution, self.train, self.seed = Path(root), resolution, train, seed
        self.transform = transform
        self.classes, self.samples = _scan_folder(self.root)
        if limit is not None:
            self.samples = self.samples[:: max(1, len(self.samples) // limit)][:limit]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        """Sample ``i`` (or ``(i, epoch)``: training augmentation is seeded by seed, epoch and i)."""
        i, epoch = item if isinstance(item, tuple) else (item, 0)
        path, label = self.samples[i]
        try:
            image = Image.open(path).convert("RGB")
        except Exception as e:
            raise DataError(f"cannot decode image {path}: {e}") from None
        if self.train:
            return to_tensor(train_transform(image, self.resolution, random.Random(f"{self.seed}/{epoch}/{i}"))), label
        if self.transform is not None:
            return self.transform(image), label
        return to_tensor(eval_transform(image, self.resolution)), label


def image_folder_loader(
    root: str | Path,
    resolution: int,
    train: bool,
    batch_size: int,
    num_workers: int = 2,
    limit: int | None = None,
    shuffle: bool | None = None,
    seed: int = 0,
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
) -> torch.utils.data.DataLoader:
    """DataLoader over an ImageNet-style folder (``limit`` keeps an evenly spread subset; ``transform`` as for
    :class:`ImageFolder`)."""
    dataset = ImageFolder(root, resolution, train, limit=limit, seed=seed, transform=transform)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train if shuffle is None else shuffle,
        num_workers=num_workers,
        drop_last=train,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=num_workers > 0,
    )


class FolderLoader:
    """Resumable, rank-sharded training batches of an image folder (the folder twin of TensorLoader)."""

    def __init__(
        self, root: str | Path, resolution: int, batch_size: int, seed: int = 0, rank: int = 0,
        world_size: int = 1, num_workers: int = 2,
    ):
        self.dataset = ImageFolder(root, resolution, train=True, seed=seed)
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.num_workers = num_workers
        self.epoch, self.batch = 0, 0
        if len(self) == 0:
            raise DataError(f"{root}: {len(self.dataset)} images make no batch of {batch_size} x {world_size} ranks")

    def __len__(self) -> int:
        return len(self.dataset) // (self.batch_size * self.world_size)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.dataset), generator=generator)[: len(self) * self.batch_size * self.world_size]
        mine = order[self.rank :: self.world_size][self.batch * self.batch_size :].tolist()
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size, sampler=[(i, self.epoch) for i in mine],
            num_workers=self.num_workers, drop_last=True,
        )
        for batch in loader:
            self.batch += 1
            yield batch
        self.epoch, self.batch = self.epoch + 1, 0

    def forever(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield from self
