"""The sandwich-rule supernet trainer (:class:`Trainer`): steps, min/max validation, checkpoints, recovery.

The recipe is :class:`~anas_zoo.train.config.TrainConfig`; a ``time_budget_minutes`` plan is computed by
:mod:`anas_zoo.train.budget` from the seconds the trainer measures.

Design choices:
- BN momentum 0 in training (the paper's choice): running statistics stay untouched, since no
  supernet statistic is meaningful for every subnet; every evaluation recalibrates them
  (:func:`evaluate_subnet`).
- Scale-out uses torch.distributed directly instead of the DDP wrapper: each step runs four
  different subnets (and no_grad ranking passes), which DDP's per-forward bucketing does not fit.
  Ranks draw the same candidates (same-seeded Python RNG), rank them on all-reduced minibatch
  losses, and average gradients with one all-reduce of one flat buffer before the single optimizer
  step, so every rank trains the same subnets and holds the same weights. ``grad_accum`` splits a
  global batch into micro-batches exactly as ranks do, so one process reproduces an N-rank step.
- Candidates ranked on the whole batch keep the best one's graph: its ranking forward is its training
  forward (:meth:`Trainer._rank_and_train`); with a ranking sub-batch they are ranked without graphs.
- Divergence (non-finite loss) or a collapse to chance accuracy rolls back to the last checkpoint
  with the learning rate scaled by ``lr_backoff``; ``max_failures`` bounds the retries.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import time
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from anas_zoo.evaluate import as_fractions, evaluate_subnet
from anas_zoo.fileio import sha256_of
from anas_zoo.provenance import source_commit
from anas_zoo.space import ArchConfig, get_space
from anas_zoo.supernet import SuperNet
from anas_zoo.train.budget import SANDWICH_PROBE_STEPS, steps_within_budget
from anas_zoo.train.checkpoint import (
    CheckpointError,
    load_supernet_weights,
    previous_path,
    restore_latest,
    save_checkpoint,
)
from anas_zoo.train.config import TrainConfig
from anas_zoo.train.data import (
    CIFAR10_CLASSES,
    FolderLoader,
    calibration_loader,
    cifar10_loader,
    cifar10_split,
    folder_classes,
    image_folder_loader,
    load_cifar10,
    resize_to,
)
from anas_zoo.train.losses import distillation_loss, label_smoothing_ce
from anas_zoo.train.optim import sgd, warmup_cosine
from anas_zoo.train.runtime import tune_cpu_training
from anas_zoo.train.sampler import AccuracyPredictor, MacsPrior, Sampler


class TrainingError(RuntimeError):
    """Training could not continue (repeated divergence, bad configuration)."""


def _distributed() -> tuple[int, int]:
    """(rank, world size), initialising torch.distributed when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


class Trainer:
    """Sandwich-rule supernet training with attentive sampling, DDP, checkpoints and fault recovery."""

    def __init__(self, config: TrainConfig, data: dict | None = None):
        self.config = c = config
        if c.threads:
            torch.set_num_threads(c.threads)
        self.rank, self.world = _distributed()
        self.device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu")
        self.runtime = tune_cpu_training() if c.cpu_tuning and self.device.type == "cpu" else {}
        self.source = source_commit()  # recorded in every checkpoint: which code trained the weights
        self.space = get_space(c.space)
        self.out_dir = Path(c.out_dir)
        self.checkpoint_path = self.out_dir / "last.safetensors"
        self.data = data if data is not None else self._load_data()
        self.num_classes = c.num_classes or self.data.get("num_classes") or self.space.num_classes

        torch.manual_seed(c.seed)
        self.model = SuperNet(self.space, self.num_classes, c.dropout, c.drop_connect).to(self.device)
        if c.zero_init_residual:
            self.model.zero_init_residual()
        for m in self.model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = c.bn_momentum
        if c.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = sgd(self.model, c.weight_decay, c.momentum, c.nesterov)
        self.train_loader = self.data["train_loader"](c.batch_size * c.grad_accum, self.rank, self.world)
        self.steps_per_epoch = len(self.train_loader)
        self.total_steps = max(1, self.steps_in(c.epochs))
        self.base_lr = c.lr * c.batch_size * c.grad_accum * self.world / 256
        self.sampler = Sampler(self.space, c.sampler, c.k, self._prior() if c.sampler != "uniform" else None)
        self.predictor = AccuracyPredictor.from_dict(json.loads(Path(c.predictor).read_text())) if c.predictor else None
        self.distill = distillation_loss(c.distill)
        self.rng = random.Random(c.seed)  # identical on every rank: all ranks draw the same candidates
        self.step = 0
        self.lr_scale = 1.0
        self.failures = 0
        self.best_max_top1 = 0.0
        self.train_seconds = 0.0  # wall time of this run's steps, evaluations and checkpoints, across resumes
        self.eval_seconds, self.evals = 0.0, 0  # the validations' share of it, and their number
        self.planned_steps: int | None = None  # total_steps as fitted to time_budget_minutes, once planned
        self.lineage: list[dict] = []  # the earlier runs this one's weights come from (init_from), oldest first
        self._stop_signal: int | None = None
        self._metrics = None

    # ----- setup -------------------------------------------------------------------------------
    def _load_data(self) -> dict:
        c = self.config
        if c.data == "cifar10":
            split = cifar10_split(load_cifar10(c.data_path), c.holdout_fraction, seed=c.seed)
            return {
                "num_classes": len(CIFAR10_CLASSES),
                "train_loader": lambda bs, rank, world: cifar10_loader(
                    split["train"], bs, True, seed=c.seed, rank=rank, world_size=world
                ),
                "calib_loader": lambda: calibration_loader(split["train"], c.eval_batch_size),
                "val_loader": lambda: cifar10_loader(split["val"], c.eval_batch_size, False, shuffle=True),
            }
        if c.data == "folder":
            if not c.data_path:
                raise ValueError("data=folder needs data_path: a root holding train/<class>/ and val/<class>/")
            root = Path(c.data_path)
            res = c.input_resolution or max(self.space.resolutions)
            return {
                "num_classes": len(folder_classes(root / "train")),
                "train_loader": lambda bs, rank, world: FolderLoader(root / "train", res, bs, c.seed, rank, world),
                "calib_loader": lambda: image_folder_loader(root / "train", res, False, c.eval_batch_size, shuffle=True),
                "val_loader": lambda: image_folder_loader(root / "val", res, False, c.eval_batch_size, shuffle=True),
            }
        raise ValueError(f"unknown data '{c.data}'; allowed: ['cifar10', 'folder']")

    def steps_in(self, epochs: float) -> int:
        """The step count of ``epochs`` passes over this run's training data (schedule and phase boundaries)."""
        return round(epochs * self.steps_per_epoch)

    def _prior(self) -> MacsPrior:
        return MacsPrior(self.space, self.config.prior_samples, seed=self.config.seed)

    # ----- one step ----------------------------------------------------------------------------
    def _input(self, x: torch.Tensor, arch: ArchConfig) -> torch.Tensor:
        x = resize_to(x, self.config.input_resolution or arch.resolution)
        return x.contiguous(memory_format=torch.channels_last) if self.config.channels_last else x

    def _autocast(self):
        enabled = self.config.amp and self.device.type == "cuda"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def _logits(self, x: torch.Tensor, arch: ArchConfig) -> torch.Tensor:
        """The active sub-network ``arch`` on a micro-batch, at its input size and precision."""
        with self._autocast():
            return self.model(self._input(x, arch))

    @staticmethod
    def _backpropagate(logits: torch.Tensor, y: torch.Tensor, i: int, loss_fn) -> torch.Tensor:
        """Accumulate the gradients of micro-batch ``i``'s loss; return the loss, detached."""
        loss = loss_fn(logits, y, i)
        loss.backward()
        return loss.detach()

    def _forward_backward(self, arch: ArchConfig, micro: list, loss_fn, regularize: bool = False) -> tuple:
        """Train ``arch`` on every micro-batch (gradients accumulate); return (summed loss, logits list)."""
        self.model.set_active(arch, regularize=regularize)
        total, outputs = torch.zeros((), device=self.device), []
        for i, (x, y) in enumerate(micro):
            logits = self._logits(x, arch)
            total += self._backpropagate(logits, y, i, loss_fn)
            outputs.append(logits.detach())
        return total, outputs

    @torch.inference_mode()
    def _score(self, candidates: list[ArchConfig], micro: list) -> list[float]:
        """Minibatch loss of each candidate (no grad), summed over micro-batches and all ranks."""
        if self.predictor is not None:
            return self.predictor.loss(candidates)
        sub = self.config.rank_subbatch
        losses = torch.zeros(len(candidates), device=self.device)
        for j, arch in enumerate(candidates):
            self.model.set_active(arch)
            for x, y in micro:
                x, y = (x[:sub], y[:sub]) if sub else (x, y)
                losses[j] += F.cross_entropy(self._logits(x, arch).float(), y)
        if self.world > 1:
            dist.all_reduce(losses)
        return losses.tolist()

    def _ranks_on_training_batch(self) -> bool:
        """Whether candidates are ranked by forward passes over the very images they would train on."""
        batch = self.config.batch_size
        sub = self.config.rank_subbatch
        return self.sampler.needs_scores and self.predictor is None and (sub is None or sub >= batch)

    def _rank_and_train(self, candidates: list[ArchConfig], micro: list, loss_fn) -> torch.Tensor:
        """Rank ``candidates`` by minibatch loss and train the one :meth:`Sampler.pick` chooses; returns its loss.

        The chosen candidate's training forward is its ranking forward (same weights, same images, same
        batch statistics), so each ranking forward keeps its graph and only the chosen one is backpropagated:
        the same gradients as ranking without graphs and running the chosen one again, one forward fewer.
        Only the best graph so far is kept (scores are summed over ranks as they come, so every rank keeps
        the same one)."""
        best_outputs, best_loss = None, None
        for arch in candidates:
            self.model.set_active(arch)
            outputs, loss = [], torch.zeros((), device=self.device)
            for x, y in micro:
                outputs.append(self._logits(x, arch))
                loss += F.cross_entropy(outputs[-1].detach().float(), y)
            if self.world > 1:
                dist.all_reduce(loss)
            if best_loss is None or self.sampler.pick_index([best_loss, loss.item()]) == 1:
                best_outputs, best_loss = outputs, loss.item()
        total = torch.zeros((), device=self.device)
        for i, (logits, (_, y)) in enumerate(zip(best_outputs, micro)):
            total += self._backpropagate(logits, y, i, loss_fn)
        return total

    def _reduce_gradients(self, scale: float) -> None:
        """Average gradients over micro-batches and ranks: one all-reduce of one flat buffer."""
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if self.world > 1:
            flat = torch.cat([g.flatten() for g in grads])
            dist.all_reduce(flat)
            torch._foreach_mul_([flat], scale)
            offset = 0
            for g in grads:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()
        elif scale != 1.0:
            torch._foreach_mul_(grads, scale)

    def lr_at(self, step: int) -> float:
        """Linear warm-up to the base lr, then per-iteration cosine to 0 (times the back-off scale)."""
        warmup = self.steps_in(self.config.warmup_epochs)
        return warmup_cosine(step, self.total_steps, warmup, self.base_lr) * self.lr_scale

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        """One SGD step on a (per-rank) batch: the sub-networks of :meth:`subnet_losses`, gradients summed."""
        c = self.config
        self.model.train()
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        micro = [(x[i :: c.grad_accum], y[i :: c.grad_accum]) for i in range(c.grad_accum)]
        self.optimizer.zero_grad(set_to_none=True)
        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        losses = self.subnet_losses(micro)

        self._reduce_gradients(1.0 / (c.grad_accum * self.world))
        if c.clip_grad:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), c.clip_grad)
        total = torch.stack(list(losses.values())) / c.grad_accum
        if self.world > 1:
            dist.all_reduce(total)
            total /= self.world
        values = total.tolist()
        finite = all(math.isfinite(v) for v in values)
        if finite:
            self.optimizer.step()
        return {"loss": sum(values), **{f"loss_{k}": v for k, v in zip(losses, values)}, "lr": lr, "finite": finite}

    def subnet_losses(self, micro: list) -> dict[str, torch.Tensor]:
        """The sandwich rule (gradients accumulate): largest on the labels, ``num_sampled`` attentive/uniform
        sub-networks and the smallest distilled from it in place (on the labels during the first
        ``distill_warmup_epochs``). During the first ``largest_only_epochs`` the largest trains alone, so
        the sandwich starts from a teacher worth copying. Returns each one's summed loss."""
        c = self.config
        loss_max, teacher = self._forward_backward(self.space.max_arch(), micro, self.label_loss, regularize=True)
        if self.step < self.steps_in(c.largest_only_epochs):
            return {"max": loss_max}
        warming_up = self.step < self.steps_in(c.distill_warmup_epochs)
        student_loss = self.label_loss if warming_up else self._kd_loss(teacher)
        losses = {"max": loss_max}
        for slot in range(c.num_sampled):
            candidates = self.sampler.candidates(self.rng)
            if self._ranks_on_training_batch():
                losses[f"sampled{slot}"] = self._rank_and_train(candidates, micro, student_loss)
                continue
            scores = self._score(candidates, micro) if self.sampler.needs_scores else [0.0]
            arch = self.sampler.pick(candidates, scores)
            losses[f"sampled{slot}"], _ = self._forward_backward(arch, micro, student_loss)
        losses["min"], _ = self._forward_backward(self.space.min_arch(), micro, student_loss)
        return losses

    def label_loss(self, logits: torch.Tensor, target: torch.Tensor, micro_index: int) -> torch.Tensor:
        return label_smoothing_ce(logits, target, self.config.label_smoothing)

    def _kd_loss(self, teacher: list[torch.Tensor]):
        c = self.config
        if c.distill == "alpha":
            return lambda z, t, i: self.distill(z, teacher[i], c.alpha_min, c.alpha_max, c.alpha_clip)
        return lambda z, t, i: self.distill(z, teacher[i])

    # ----- state -------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "step": self.step,
            "loader": self.train_loader.state_dict(),
            "rng": _jsonable_rng(self.rng.getstate()),
            "lr_scale": self.lr_scale,
            "failures": self.failures,
            "best_max_top1": self.best_max_top1,
            "train_seconds": round(self.train_seconds, 3),
            "eval_seconds": round(self.eval_seconds, 3),
            "evals": self.evals,
            "planned_steps": self.planned_steps,
            "lineage": self.lineage,
            "config": self.config.to_dict(),
            "world_size": self.world,
            "source": self.source,
        }

    def save(self, path: Path | None = None) -> Path | None:
        """Atomic checkpoint (rank 0 writes; all ranks wait for it)."""
        path = path or self.checkpoint_path
        if self.rank == 0:
            save_checkpoint(path, self.model, self.optimizer, self.state(), keep_previous=True)
        if self.world > 1:
            dist.barrier()
        return path

    def load(self, path: str | Path) -> None:
        """Restore model, optimizer, schedule position, sampler RNG and data order from a checkpoint, or from the
        one it replaced when it is missing or damaged."""
        state, used, skipped = restore_latest(path, self.model, self.optimizer)
        if skipped:
            self._log({"event": "fallback", "from": str(used), "reason": skipped})
        if state.get("world_size", self.world) != self.world:
            raise TrainingError(
                f"{path} was written by {state['world_size']} ranks; resume with the same number of ranks "
                f"(got {self.world}) for an exact continuation"
            )
        self.step = int(state["step"])
        self.train_loader.load_state_dict(state["loader"])
        self.rng.setstate(_rng_state(state["rng"]))
        self.lr_scale = float(state["lr_scale"])
        self.failures = int(state["failures"])
        self.best_max_top1 = float(state["best_max_top1"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.eval_seconds, self.evals = float(state.get("eval_seconds", 0.0)), int(state.get("evals", 0))
        self.planned_steps = state.get("planned_steps")
        if self.planned_steps is not None:
            self.total_steps = self.planned_steps
        self.lineage = state.get("lineage", [])

    # ----- evaluation --------------------------------------------------------------------------
    def validate(self) -> dict:
        """Top-1/top-5 (fractions, the unit of the metrics log and run summary) of the smallest and largest
        subnets on the held-out split, BN calibrated."""
        c = self.config
        val = self.data["val_loader"]()
        batches = val if c.eval_batches is None else _take(val, c.eval_batches)
        result = {}
        for name, arch in (("min", self.space.min_arch()), ("max", self.space.max_arch())):
            result[name] = as_fractions(evaluate_subnet(
                self.model, arch, self.data["calib_loader"](), batches, c.calib_batches, self.device,
                resolution=c.input_resolution,
            ))
        self.model.train()
        return result

    # ----- the loop ----------------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        if self.rank != 0:
            return
        if self._metrics is None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._metrics = open(self.out_dir / "metrics.jsonl", "a")
        self._metrics.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")
        self._metrics.flush()

    def _rollback(self, reason: str) -> None:
        """Return to the last good checkpoint with a lower learning rate, or give up."""
        self.failures += 1
        self._log({"event": "rollback", "step": self.step, "reason": reason, "failures": self.failures})
        if self.failures > self.config.max_failures:
            raise TrainingError(
                f"training diverged {self.failures} times (last: {reason} at step {self.step}); giving up. "
                f"Lower lr (now x{self.lr_scale:g}) or check the data"
            )
        failures, lr_scale, seconds = self.failures, self.lr_scale * self.config.lr_backoff, self.train_seconds
        self.load(self.checkpoint_path)
        self.failures, self.lr_scale, self.train_seconds = failures, lr_scale, seconds
        self._log({"event": "resumed", "step": self.step, "lr_scale": self.lr_scale})

    def _on_signal(self, signum, frame) -> None:
        self._stop_signal = signum

    def fit(self, max_steps: int | None = None) -> dict:
        """Train until the schedule ends (or ``max_steps``, or a signal); returns a summary."""
        c = self.config
        resume = c.resume
        if resume == "auto":
            exists = self.checkpoint_path.exists() or previous_path(self.checkpoint_path).exists()
            resume = self.checkpoint_path if exists else None
        if resume:
            self.load(resume)
            self._log({"event": "resume", "step": self.step, "from": str(resume), "runtime": self.runtime})
        else:
            start = {"event": "start", "config": c.to_dict(), "runtime": self.runtime, "torch": torch.__version__}
            if c.init_from:
                try:
                    meta = load_supernet_weights(c.init_from, self.model)
                except CheckpointError as e:
                    raise CheckpointError(f"init_from: {e}; give a supernet checkpoint of this space (anas-train's "
                                          "last.safetensors, or the slimmed one anas-zoo extract writes)") from None
                parent = meta["state"]
                start["init_from"] = {"path": c.init_from, "sha256": sha256_of(c.init_from), "step": parent.get("step"),
                                      "train_seconds": parent.get("train_seconds"), "source": parent.get("source"),
                                      "recipe": parent.get("config")}
                self.lineage = [*parent.get("lineage", []), start["init_from"]]
            self.save()
            self._log(start)
        stop_at = min(self.total_steps, max_steps or c.max_steps or self.total_steps)
        planning_step = max(1, self.steps_in(c.warmup_epochs)) if c.time_budget_minutes else None
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        bar = tqdm(total=stop_at, initial=self.step, disable=not c.progress or self.rank != 0, unit="step")
        images = c.batch_size * c.grad_accum * self.world
        eval_interval = max(1, self.steps_in(c.eval_every)) if c.eval_every else None
        batches = self.train_loader.forever()
        last_eval = {}
        tic, summary = time.perf_counter(), {}
        try:
            while self.step < stop_at and self._stop_signal is None:
                x, y = next(batches)
                out = self.train_step(x, y)
                if not out["finite"]:
                    self._rollback(f"non-finite loss {out['loss']}")
                    batches = self.train_loader.forever()
                    bar.n = self.step
                    continue
                self.step += 1
                now = time.perf_counter()
                self.train_seconds += now - tic
                speed = images / max(now - tic, 1e-9)
                tic = now
                bar.update(1)
                bar.set_postfix(loss=f"{out['loss']:.3f}", lr=f"{out['lr']:.4f}", img_s=f"{speed:.0f}")
                if self.step % c.log_every == 0 or self.step == stop_at:
                    self._log({"step": self.step, "epoch": self.step / self.steps_per_epoch,
                               "img_per_s": round(speed, 1), **{k: v for k, v in out.items() if k != "finite"}})
                if eval_interval and self.step % eval_interval == 0 and self.step < stop_at:
                    last_eval = self._validate_and_check()
                    if last_eval.get("rolled_back"):
                        batches = self.train_loader.forever()
                        bar.n = self.step
                        continue
                if self.planned_steps is None and planning_step is not None and self.step >= planning_step:
                    stop_at = min(stop_at, self._plan_budget(self.train_seconds + time.perf_counter() - tic,
                                                             eval_interval, (x, y)))
                    batches = self.train_loader.forever()  # a sandwich probe restored the data order
                    bar.total = stop_at
                if self.step % c.checkpoint_every == 0:
                    self.save()
            self.save()
            if self._stop_signal is None and self.step >= stop_at:
                last_eval = self._validate_and_check(final=True)
                self.train_seconds += time.perf_counter() - tic
                self.save()  # again, with the final evaluation's time
            summary = {
                "step": self.step,
                "total_steps": self.total_steps,
                "train_seconds": round(self.train_seconds, 1),
                "interrupted": self._stop_signal is not None,
                "checkpoint": str(self.checkpoint_path),
                "validation": last_eval,
                "failures": self.failures,
            }
            self._log({"event": "end", **summary})
            return summary
        finally:
            bar.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
            if self._metrics is not None:
                self._metrics.close()
                self._metrics = None

    def _plan_budget(self, spent: float, eval_interval: int | None, batch: tuple) -> int:
        """Fix ``total_steps`` to the steps that fit in ``time_budget_minutes``, timed on the steps so far (the
        lr warm-up is the probe, so the cosine starts on the planned length); while the largest subnet still
        trains alone, sandwich steps are timed on ``batch`` and undone. All ranks adopt rank 0's plan."""
        if not self.evals:
            tic = time.perf_counter()
            self._validate_and_check()
            spent += time.perf_counter() - tic
        step_seconds = (spent - self.eval_seconds) / self.step
        eval_seconds = self.eval_seconds / self.evals
        switch = self.steps_in(self.config.largest_only_epochs)
        sandwich_seconds = step_seconds
        if self.step <= switch < self.total_steps:
            tic = time.perf_counter()
            sandwich_seconds = self._time_sandwich_steps(*batch)
            spent += time.perf_counter() - tic
        planned = steps_within_budget(60 * self.config.time_budget_minutes, spent, self.step, step_seconds,
                                      eval_seconds, eval_interval, self.total_steps, sandwich_seconds, switch)
        if self.world > 1:
            shared = torch.tensor([planned], device=self.device)
            dist.broadcast(shared, 0)
            planned = int(shared.item())
        self.planned_steps = self.total_steps = planned
        self._log({"event": "budget", "step": self.step, "planned_steps": planned,
                   "epochs": planned / self.steps_per_epoch, "seconds_per_step": round(step_seconds, 3),
                   "seconds_per_sandwich_step": round(sandwich_seconds, 3), "largest_only_steps": switch,
                   "seconds_per_eval": round(eval_seconds, 3), "budget_minutes": self.config.time_budget_minutes})
        return planned

    def _time_sandwich_steps(self, x: torch.Tensor, y: torch.Tensor, count: int = SANDWICH_PROBE_STEPS) -> float:
        """Seconds per sandwich step, measured while the largest subnet still trains alone: ``count`` sandwich
        steps on one batch (after an untimed one that builds their kernels), then the checkpoint written just
        before is restored, as a resume would, so the run goes on exactly as if they had never been taken."""
        path = self.save()
        self.step = self.steps_in(self.config.largest_only_epochs)
        self.train_step(x, y)
        tic = time.perf_counter()
        for _ in range(count):
            self.train_step(x, y)
        seconds = (time.perf_counter() - tic) / count
        self.load(path)
        return seconds

    def _validate_and_check(self, final: bool = False) -> dict:
        """Per-epoch min/max validation; a collapse to chance after learning triggers a rollback."""
        tic = time.perf_counter()
        result = self.validate()
        self.eval_seconds += time.perf_counter() - tic
        self.evals += 1
        top1 = result["max"]["top1"]
        self._log({"event": "eval", "step": self.step, "epoch": self.step / self.steps_per_epoch,
                   **{f"{n}_{k}": v for n, r in result.items() for k, v in r.items()}})
        chance = 1.0 / self.num_classes
        if not final and self.best_max_top1 > 3 * chance and top1 < 1.5 * chance:
            self._rollback(f"collapse: largest subnet top-1 {top1:.3f} after {self.best_max_top1:.3f}")
            return {**result, "rolled_back": True}
        self.best_max_top1 = max(self.best_max_top1, top1)
        return result


def _take(iterable: Iterable, n: int) -> list:
    """The first ``n`` items of ``iterable``: the ``eval_batches`` limit on a validation loader."""
    out = []
    for item in iterable:
        if len(out) == n:
            break
        out.append(item)
    return out


def _jsonable_rng(state) -> list:
    """``random.Random.getstate()`` as JSON (checkpoint metadata holds no pickles)."""
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_state(state: list) -> tuple:
    """The inverse of :func:`_jsonable_rng`: a state ``random.Random.setstate`` accepts."""
    version, internal, gauss = state
    return version, tuple(internal), gauss
