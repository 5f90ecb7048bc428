"""The training recipe (:class:`TrainConfig`) and its checks.

Every value is checked when the recipe is read (unknown keys, wrong kinds, values out of range), so a
bad recipe fails in one line naming what is allowed before any data is loaded, not mid-run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from anas_zoo.fileio import check_output_dir
from anas_zoo.space import MAX_CLASSES, list_spaces
from anas_zoo.train.losses import DISTILLATION_LOSSES
from anas_zoo.train.sampler import SAMPLERS


@dataclass
class TrainConfig:
    """One training recipe; every field can be set from YAML or ``key=value`` on the command line."""

    space: str = "cifar10"
    num_classes: int | None = None
    data: str = "cifar10"  # 'cifar10' or 'folder'
    data_path: str | None = None  # CIFAR archive/folder (default $ANAS_ZOO_DATA), or the ImageNet-style root of train/, val/
    holdout_fraction: float = 0.1
    input_resolution: int | None = None  # feed every subnet this size instead of its genome's resolution
    batch_size: int = 128  # per rank
    grad_accum: int = 1  # micro-batches per step (a global batch split like ranks split it)
    epochs: float = 1.0
    max_steps: int | None = None  # stop early (the schedule still follows ``epochs``)
    time_budget_minutes: float | None = None  # after the lr warm-up, shorten the cosine so the run ends within this
    # (with largest_only_epochs, the plan times the largest-only steps and probes a few sandwich steps)
    lr: float = 0.1  # per 256 images of the global batch
    warmup_epochs: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-5  # not on BN or biases
    label_smoothing: float = 0.1
    dropout: float = 0.2
    drop_connect: float = 0.2
    zero_init_residual: bool = False  # each block starts as its shortcut (BigNAS); off keeps older recipes exact
    bn_momentum: float = 0.0
    sampler: str = "bestup"
    k: int = 3
    num_sampled: int = 2
    rank_subbatch: int | None = None  # rank candidates on the first N images of each micro-batch
    predictor: str | None = None  # JSON file of an AccuracyPredictor: rank by it instead of the minibatch loss
    distill: str = "kd"  # 'kd' (soft-target CE) or 'alpha' (AlphaNet α-divergence)
    distill_warmup_epochs: float = 0.0  # the other subnets learn from the labels until the largest is worth copying
    largest_only_epochs: float = 0.0  # train the largest subnet alone first (Once-for-All's order), then the sandwich
    alpha_min: float = -1.0
    alpha_max: float = 1.0
    alpha_clip: float = 5.0
    clip_grad: float = 1.0
    prior_samples: int = 2000
    seed: int = 0
    threads: int | None = None
    channels_last: bool = True
    cpu_tuning: bool = True  # keep freed memory mapped and cache more oneDNN kernels (anas_zoo.train.runtime)
    amp: bool = True  # bfloat16 autocast, CUDA only
    out_dir: str = "runs/train"
    resume: str | None = "auto"  # 'auto' (out_dir/last.safetensors if present), a path, or null
    init_from: str | None = None  # supernet checkpoint (full or slimmed) whose weights start a new run: fine-tuning
    checkpoint_every: int = 200
    eval_every: float = 1.0  # epochs between min/max validations (0: only at the end)
    eval_batches: int | None = None  # limit evaluation batches
    calib_batches: int = 20
    eval_batch_size: int = 250
    log_every: int = 10
    max_failures: int = 3
    lr_backoff: float = 0.5
    progress: bool = True

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """A checked recipe from a mapping (YAML or ``key=value`` overrides); unknown keys and wrong kinds are named."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; allowed: {sorted(known)}")
        for key, value in values.items():
            _check_type(key, value, known[key].type)
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        """Reject values that would only fail after the data is loaded, naming what is allowed."""
        choices = {
            "space": list_spaces(),
            "data": ["cifar10", "folder"],
            "sampler": list(SAMPLERS),
            "distill": sorted(DISTILLATION_LOSSES),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key}={getattr(self, key)!r} is not allowed; allowed: {allowed}")
        check_output_dir(self.out_dir, "out_dir")
        if self.num_classes is not None and (isinstance(self.num_classes, bool) or not 1 <= self.num_classes <= MAX_CLASSES):
            raise ValueError(f"num_classes must be an integer from 1 to {MAX_CLASSES} (or null: the data's), "
                             f"got {self.num_classes}")
        if not self.epochs > 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        for key in ("batch_size", "grad_accum", "k", "calib_batches", "log_every", "checkpoint_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        for key in ("lr", "warmup_epochs", "distill_warmup_epochs", "largest_only_epochs", "weight_decay",
                    "label_smoothing"):  # lr 0 is a frozen run: init_from's weights stay as loaded
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
        if self.time_budget_minutes is not None and self.time_budget_minutes <= 0:
            raise ValueError(f"time_budget_minutes must be > 0 (or null for no budget), got {self.time_budget_minutes}")
        if self.time_budget_minutes is not None and 0 < self.largest_only_epochs < self.warmup_epochs:
            raise ValueError(
                f"time_budget_minutes={self.time_budget_minutes} needs warmup_epochs={self.warmup_epochs} <= "
                f"largest_only_epochs={self.largest_only_epochs}: the budget is planned at the end of the lr warm-up "
                "on the timed steps of the largest subnet alone and a few probed sandwich steps, so the warm-up must "
                "not reach into the sandwich"
            )

    def to_dict(self) -> dict:
        return asdict(self)


_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _check_type(key: str, value, annotation: str) -> None:
    """``value`` fits the field's annotation (``int``, ``float``, ``bool``, ``str``, each optionally ``| None``):
    a recipe value of the wrong kind (``lr=fast``, ``epochs=[1]``) is named now, not a traceback mid-run."""
    names = [part.strip() for part in annotation.split("|")]
    if value is None and "None" in names:
        return
    allowed = tuple(t for name in names for t in _TYPES.get(name, ()))
    if not allowed:  # an annotation this check does not know
        return
    if isinstance(value, allowed) and (bool in allowed or not isinstance(value, bool)):
        return
    kinds = " or ".join(name if name != "None" else "null" for name in names)
    raise ValueError(f"{key}={value!r} is not allowed; expected {kinds}")
