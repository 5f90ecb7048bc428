"""Standalone fine-tuning of one extracted family member, distilled from a teacher (Once-for-All's specialisation).

The member starts from its supernet weights (a registered ``NAME.TAG`` weight set) and trains alone on the
CIFAR-10 training part its supernet trained on, with label-smoothed cross-entropy plus ``kd_weight`` times the
soft-target cross-entropy against a frozen teacher (the largest sub-network; without a teacher, a frozen copy
of the starting weights; with ``kd_weight`` 0, the labels alone, as for the largest member itself). The teacher sees the images at its own resolution, the student at its own.
``cutmix`` CutMixes that share of the steps (teacher and student see the mixed batch; the label loss mixes by area):
the regulariser for a member that already fits its training images; ``trivial_augment`` adds TrivialAugment to
every training image (:mod:`anas_zoo.train.augment`).
The run checkpoints (weights, optimizer, schedule position, data order, RNG) to ``state_dir`` and resumes
from there exactly, as ``anas-train`` does, on the CPU or on ``device`` (a GPU: not part of the recipe, so a
state resumes on any device). At the end BN is recalibrated on the held-out split, the weights
are rounded to their storage dtype and measured on the test split (:func:`anas_zoo.extract.calibrate_and_measure`),
and the weight set is written as ``NAME.<tag>`` with ``kind: finetuned``: its record keeps the supernet run it was
extracted from (``training``, with that run's own ``lineage``) and adds this run (``finetune``; a run that continues
a fine-tuned set keeps that earlier stage under ``finetune.after``), so the whole recipe chains: earlier supernet
runs → the supernet run → each fine-tuning stage.
"""

from __future__ import annotations

import copy
import json
import math
import signal
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from tqdm import tqdm

from anas_zoo.evaluate import evaluate
from anas_zoo.extract import FINETUNED_KIND, calibrate_and_measure
from anas_zoo.fileio import check_output_dir
from anas_zoo.provenance import source_commit
from anas_zoo.static import StaticNet
from anas_zoo.store import STORAGE_DTYPES, check_name_part, read_record, save_weights
from anas_zoo.train.checkpoint import (
    FINETUNE_FORMAT,
    previous_path,
    read_checkpoint,
    restore_state,
    save_state,
    with_fallback,
)
from anas_zoo.train.data import CIFAR10_CLASSES, cifar10_loader, cifar10_split, cutmix, load_cifar10, resize_to
from anas_zoo.train.losses import label_smoothing_ce, soft_target_ce
from anas_zoo.train.optim import sgd, warmup_cosine
from anas_zoo.train.runtime import parse_device, tune_cpu_training, use_fast_depthwise_gradients
from anas_zoo.zoo import find_weights, get_entry, load, split_name


class FinetuneError(ValueError):
    """A fine-tuning run that cannot start or resume as asked."""


#: Numeric fields of :class:`FinetuneConfig`: those that must be > 0 (the others >= 0), and those that count things.
POSITIVE_FIELDS = ("epochs", "batch_size", "lr", "checkpoint_every", "eval_images")
NON_NEGATIVE_FIELDS = ("warmup_epochs", "weight_decay", "label_smoothing", "kd_weight", "cutmix", "clip_grad",
                       "eval_every")
COUNT_FIELDS = ("batch_size", "checkpoint_every", "eval_images")


def _check_number(key: str, value) -> None:
    """A numeric field is finite (inf or nan would train on NaN or never end), whole where it counts things, and
    within its bound."""
    positive, count = key in POSITIVE_FIELDS, key in COUNT_FIELDS
    number = isinstance(value, int if count else (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number or not (value > 0 if positive else value >= 0):
        raise FinetuneError(f"{key} must be {'an integer' if count else 'a finite number'} {'>' if positive else '>='} 0, "
                            f"got {value!r}")


@dataclass
class FinetuneConfig:
    """One fine-tuning run. ``model`` and ``teacher`` are registered weight sets (``NAME.TAG``)."""

    model: str
    teacher: str | None = None  # None: a frozen copy of the starting weights (no teacher at all with kd_weight 0)
    epochs: float = 3.0
    tag: str = "cifar10_ft"
    out: str = "checkpoints"  # where NAME.<tag>.{safetensors,json} is written at the end
    state_dir: str | None = None  # resumable state; default runs/finetune/NAME.<tag>
    data_path: str | None = None
    batch_size: int = 128
    lr: float = 0.05  # per 256 images
    warmup_epochs: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-5  # not on BN parameters or biases
    label_smoothing: float = 0.1
    kd_weight: float = 1.0  # loss = label CE + kd_weight * KD(teacher)
    cutmix: float = 0.0  # share of steps whose batch is CutMix'ed (teacher and student see the mixed images)
    trivial_augment: bool = False  # TrivialAugment on every training image, after the crop and flip
    clip_grad: float = 1.0
    seed: int = 0
    threads: int | None = 2
    device: str = "cpu"  # where the student and teacher train ("cuda", "cuda:1"); a state resumes on any device
    checkpoint_every: int = 100
    eval_every: float = 1.0  # epochs between held-out checks (0: none before the final measurement)
    eval_images: int = 2000
    dtype: str = "float16"
    progress: bool = True

    def __post_init__(self) -> None:
        for key in (*POSITIVE_FIELDS, *NON_NEGATIVE_FIELDS):
            _check_number(key, getattr(self, key))
        if self.cutmix > 1:
            raise FinetuneError(f"cutmix is the share of steps that mix, between 0 and 1, got {self.cutmix!r}")
        if self.dtype not in STORAGE_DTYPES:
            raise FinetuneError(f"dtype {self.dtype!r} is not allowed; allowed: {', '.join(STORAGE_DTYPES)}")
        try:
            check_name_part(self.tag, "tag")
        except ValueError as e:
            raise FinetuneError(str(e)) from None
        if self.teacher and self.kd_weight == 0:
            raise FinetuneError(f"teacher {self.teacher!r} with kd_weight 0 would never be used; drop one of them")
        try:
            parse_device(self.device)
        except ValueError as e:
            raise FinetuneError(str(e)) from None

    @property
    def name(self) -> str:
        """The architecture being fine-tuned (the weight tag stripped)."""
        return split_name(self.model)[0]

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir or Path("runs/finetune") / f"{self.name}.{self.tag}") / "state.safetensors"

    def recipe(self) -> dict:
        """The fields that define the run: a resume must match them (paths and progress bars may differ); a state
        written before a field existed holds its default."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("out", "state_dir", "data_path", "progress", "threads", "device")}


def _weights_record(name: str) -> tuple[dict, str]:
    """(record, sha256 of its weights) of a registered weight set that is present locally."""
    path = find_weights(name)
    if path is None:
        raise FinetuneError(f"no local weights for {name!r}: fine-tuning starts from a bundled or imported weight set")
    record = read_record(path)
    return record, record["sha256"]


def held_out_splits(record: dict, data_path=None, splits: dict | None = None) -> tuple[dict, dict]:
    """(CIFAR-10 'train' / held-out 'val' / 'test' splits, the held-out split's fraction and seed): the split the
    supernet behind ``record`` trained on, so fine-tuning and calibration never touch what it held out.
    ``splits`` given: those, already split that way."""
    recipe = record.get("training", {}).get("recipe", {})
    holdout = {"fraction": recipe.get("holdout_fraction", 0.1), "seed": recipe.get("seed", 0)}
    if splits is None:
        splits = cifar10_split(load_cifar10(data_path), holdout["fraction"], seed=holdout["seed"])
    return splits, holdout


class Finetuner:
    """Fine-tunes ``config.model`` standalone; :meth:`fit` runs (or resumes) it and writes the weight set."""

    def __init__(self, config: FinetuneConfig, splits: dict | None = None):
        self.config = c = config
        if c.threads:
            torch.set_num_threads(c.threads)
        self.device = torch.device(c.device)
        on_cpu = self.device.type == "cpu"
        self.runtime = tune_cpu_training() if on_cpu else {"device": str(self.device)}
        start_entry = get_entry(c.model)
        if split_name(c.model)[1] is None:
            raise FinetuneError(f"give the starting weights as NAME.TAG, e.g. {c.model}.cifar10")
        self.start, self.start_sha = _weights_record(c.model)
        self.teacher_record, self.teacher_sha = _weights_record(c.teacher) if c.teacher else (self.start, self.start_sha)
        for name in filter(None, (c.model, c.teacher)):
            if get_entry(name).num_classes != len(CIFAR10_CLASSES):
                raise FinetuneError(f"{name} has {get_entry(name).num_classes} classes; fine-tuning trains on "
                                    f"CIFAR-10's {len(CIFAR10_CLASSES)}")
        if (Path(c.out) / f"{c.name}.{c.tag}.json").resolve() == find_weights(c.model).resolve():
            raise FinetuneError(f"--tag {c.tag} with --out {c.out} would overwrite the starting weights; "
                                "choose another tag or output folder")
        check_output_dir(c.out, "output folder")  # before any work, not after the last epoch
        check_output_dir(c.state_path.parent, "state folder")
        self.splits, self.holdout = held_out_splits(self.start, c.data_path, splits)

        torch.manual_seed(c.seed)
        self.model: StaticNet = load(c.model, pretrained=True).train()
        self.resolution = start_entry.arch.resolution
        self.teacher: StaticNet | None = None  # kd_weight 0: the labels alone
        if c.teacher:
            self.teacher = load(c.teacher, pretrained=True)
        elif c.kd_weight:
            self.teacher = copy.deepcopy(self.model)
        if self.teacher is not None:
            self.teacher = self.teacher.eval().requires_grad_(False).to(self.device, memory_format=torch.channels_last)
        self.model = self.model.to(self.device, memory_format=torch.channels_last)
        if on_cpu:  # oneDNN's fast depthwise weight gradient; a GPU has its own kernels
            self.runtime["fast_depthwise_layers"] = use_fast_depthwise_gradients(self.model)

        self.optimizer = sgd(self.model, c.weight_decay, c.momentum)
        self.loader = cifar10_loader(self.splits["train"], c.batch_size, train=True, seed=c.seed,
                                     trivial_augment=c.trivial_augment)
        self.steps_per_epoch = len(self.loader)
        self.total_steps = max(1, round(c.epochs * self.steps_per_epoch))
        self.base_lr = c.lr * c.batch_size / 256
        self.step, self.train_seconds = 0, 0.0
        self.source = source_commit()
        self._stop_signal: int | None = None

    # ----- one step ----------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        return warmup_cosine(step, self.total_steps, round(self.config.warmup_epochs * self.steps_per_epoch),
                             self.base_lr)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        """One SGD step of the student on a batch of 32x32 images: labels + distillation from the teacher."""
        c = self.config
        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        x, mix = self._cutmix(x)
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        logits = self.model(self._input(x, self.resolution))
        label = label_smoothing_ce(logits, y, c.label_smoothing)
        if mix is not None:
            order, keep = mix
            label = keep * label + (1 - keep) * label_smoothing_ce(logits, y[order.to(self.device)], c.label_smoothing)
        kd = torch.zeros((), device=self.device)
        if self.teacher is not None:
            with torch.no_grad():
                target = self.teacher(self._input(x, self.teacher.arch.resolution))
            kd = soft_target_ce(logits, target)
        loss = label + c.kd_weight * kd
        loss.backward()
        if c.clip_grad:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), c.clip_grad)
        self.optimizer.step()
        return {"loss": loss.item(), "label": label.item(), "kd": kd.item(), "lr": lr}

    def _cutmix(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, float] | None]:
        """This step's CutMix, drawn from (seed, step) so that a resumed run mixes as the whole one did: the images
        and (permutation, own share), or the images untouched and None."""
        if not self.config.cutmix:
            return x, None
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.step)
        if torch.rand((), generator=generator).item() >= self.config.cutmix:
            return x, None
        mixed, order, keep = cutmix(x, generator)
        return mixed, (order, keep)

    @staticmethod
    def _input(x: torch.Tensor, resolution: int) -> torch.Tensor:
        return resize_to(x, resolution).contiguous(memory_format=torch.channels_last)

    # ----- state -------------------------------------------------------------------------------
    def save(self) -> Path:
        meta = {"format": FINETUNE_FORMAT, "recipe": self.config.recipe(), "step": self.step,
                "loader": self.loader.state_dict(), "train_seconds": round(self.train_seconds, 3),
                "start_sha256": self.start_sha, "teacher_sha256": self.teacher_sha, "source": self.source}
        return save_state(self.config.state_path, self.model, self.optimizer, meta, keep_previous=True)

    def resume(self) -> bool:
        """Continue from ``state_path`` when it exists (from the state it replaced when it is damaged); a state
        written for another recipe is refused."""
        path = self.config.state_path
        if not path.exists() and not previous_path(path).exists():
            return False
        (tensors, meta), used, skipped = with_fallback(path, lambda candidate: read_checkpoint(candidate, FINETUNE_FORMAT))
        if skipped:
            self._log({"event": "fallback", "from": str(used), "reason": skipped})
        saved = {f.name: f.default for f in fields(FinetuneConfig)} | meta["recipe"]
        differ = {k: (saved.get(k), v) for k, v in self.config.recipe().items() if saved.get(k) != v}
        if differ or meta["start_sha256"] != self.start_sha or meta["teacher_sha256"] != self.teacher_sha:
            what = ", ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in differ.items()) or "the weights"
            raise FinetuneError(f"{path} belongs to another fine-tuning run ({what}); give another state_dir or "
                                "delete it to start over")
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
        restore_state(tensors, meta, self.optimizer, self.device)
        self.step, self.train_seconds = int(meta["step"]), float(meta["train_seconds"])
        self.loader.load_state_dict(meta["loader"])
        return True

    # ----- the run -----------------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        path = self.config.state_path.parent / "metrics.jsonl"
        with open(path, "a") as f:
            f.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")

    def held_out_top1(self) -> float:
        """Top-1 (%) on the first ``eval_images`` held-out images with the running BN statistics (progress only)."""
        images, labels = self.splits["val"]
        n = self.config.eval_images
        loader = cifar10_loader((images[:n], labels[:n]), 250, train=False, shuffle=False)
        top1 = evaluate(self.model, ((self._input(x, self.resolution), y) for x, y in loader), self.device)["top1"]
        self.model.train()
        return top1

    def _on_signal(self, signum, frame) -> None:
        self._stop_signal = signum

    def fit(self, max_steps: int | None = None) -> dict | None:
        """Train to the end of the schedule (or ``max_steps``, or SIGINT/SIGTERM, checkpointed either way); at
        the end write the weight set and return its record (None when stopped early)."""
        c = self.config
        resumed = self.resume()
        if not resumed:
            self.save()
            self._log({"event": "start", "recipe": c.recipe(), "runtime": self.runtime, "torch": torch.__version__})
        stop_at = min(self.total_steps, max_steps or self.total_steps)
        eval_interval = round(c.eval_every * self.steps_per_epoch) if c.eval_every else 0
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not c.progress, unit="step",
                   desc=f"finetune {c.name}")
        batches = self.loader.forever()
        tic = time.perf_counter()
        try:
            while self.step < stop_at and self._stop_signal is None:
                x, y = next(batches)
                out = self.train_step(x, y)
                self.step += 1
                now = time.perf_counter()
                self.train_seconds += now - tic
                tic = now
                bar.update(1)
                bar.set_postfix(loss=f"{out['loss']:.3f}", lr=f"{out['lr']:.4f}")
                if self.step % 10 == 0:
                    self._log({"step": self.step, "epoch": round(self.step / self.steps_per_epoch, 4), **out})
                if eval_interval and self.step % eval_interval == 0 and self.step < self.total_steps:
                    top1 = self.held_out_top1()
                    bar.write(f"epoch {self.step / self.steps_per_epoch:.2f}: held-out top-1 {top1:.2f} %")
                    self._log({"event": "eval", "step": self.step, "held_out_top1": top1})
                    tic = time.perf_counter()
                if self.step % c.checkpoint_every == 0:
                    self.save()
            self.save()
        finally:
            bar.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
        if self.step < self.total_steps:
            return None
        return self._write_weights()

    def _teacher_name(self) -> str | None:
        if self.teacher is None:
            return None
        return self.config.teacher or f"{self.config.name}.{self.start['tag']} (frozen copy)"

    def _write_weights(self) -> dict:
        c = self.config
        metric, calibration = calibrate_and_measure(self.model.to("cpu", memory_format=torch.contiguous_format),
                                                    self.resolution, self.splits, dtype=c.dtype, progress=c.progress)
        calibration.update(self.holdout)
        start = self.start
        run = {"kind": FINETUNED_KIND, "from": f"{c.name}.{start['tag']}", "from_sha256": self.start_sha,
               "teacher": self._teacher_name(), "teacher_sha256": self.teacher_sha if self.teacher else None,
               "teacher_top1": self.teacher_record["metrics"][0]["top1"] if self.teacher else None,
               "recipe": {k: v for k, v in asdict(c).items() if k != "progress"},
               "steps": self.step, "train_seconds": round(self.train_seconds, 1), "source": self.source,
               "after": start.get("finetune")}  # the stage this one continues, when the start was fine-tuned
        record = {k: v for k, v in start.items() if k not in ("file", "sha256", "format", "dtype")}
        record.update(tag=c.tag, kind=FINETUNED_KIND, metrics=[metric], calibration=calibration, finetune=run)
        path = save_weights(self.model, record, c.out, f"{c.name}.{c.tag}", c.dtype)
        self._log({"event": "end", "step": self.step, "train_seconds": round(self.train_seconds, 1), "test": metric})
        return read_record(path)
