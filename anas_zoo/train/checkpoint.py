"""Training checkpoints: one safetensors file, tensors only, written atomically.

A checkpoint holds the supernet, or the static model being fine-tuned (``model.*``), the optimizer's tensors
(``optim.*``) and the torch RNG state as tensors; everything else (space name, num_classes, step, optimizer
hyper-parameters, scheduler/sampler/data-order/Python RNG state, the recipe) is JSON in the safetensors metadata.
Loading never unpickles anything, and :func:`load_supernet` rebuilds the supernet from the file alone.
The metadata also carries a sha256 of that JSON and of every tensor (name, dtype, shape, bytes), checked
on every read, so one flipped byte is a clear error; :func:`save_state` can keep the file it replaces
(``NAME.previous.safetensors``) and :func:`with_fallback` falls back to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from anas_zoo.fileio import atomic_write
from anas_zoo.store import stored_tensors
from anas_zoo.supernet import SuperNet

FORMAT = "anas_zoo.supernet-checkpoint/1"
FINETUNE_FORMAT = "anas_zoo.finetune-checkpoint/1"
_KINDS = {FORMAT: "supernet", FINETUNE_FORMAT: "fine-tuning"}
META_KEY, DIGEST_KEY = "anas_zoo", "anas_zoo.sha256"
T = TypeVar("T")


class CheckpointError(ValueError):
    """A missing, foreign or damaged checkpoint."""


def _optimizer_tensors(state: dict) -> tuple[dict[str, torch.Tensor], list]:
    tensors = {}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value
    return tensors, state["param_groups"]


def content_digest(tensors: dict[str, torch.Tensor], meta_json: str) -> str:
    """sha256 of a checkpoint's metadata JSON and of each tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256(meta_json.encode())
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"\0{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _write(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    meta_json = json.dumps(meta)
    header = {META_KEY: meta_json, DIGEST_KEY: content_digest(tensors, meta_json)}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))


def previous_path(path: str | Path) -> Path:
    """Where :func:`save_state` keeps the file it replaces: ``last.safetensors`` → ``last.previous.safetensors``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def _keep_previous(path: Path) -> None:
    """Make ``previous_path(path)`` the current ``path`` (a hard link, else a copy) without ever removing ``path``."""
    if not path.is_file():
        return
    target = previous_path(path)
    staging = target.with_name(f".{target.name}.keep.tmp")
    staging.unlink(missing_ok=True)
    try:
        os.link(path, staging)
    except OSError:
        shutil.copy2(path, staging)
    os.replace(staging, target)


def save_state(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, meta: dict,
               keep_previous: bool = False) -> Path:
    """Write ``model`` (``model.*``), the optimizer's tensors (``optim.*``), the torch RNG and ``meta`` (JSON, which
    must name its ``format``) to ``path`` atomically: the one writer of every resumable training state.
    ``keep_previous`` first keeps the file it replaces as :func:`previous_path`."""
    path = Path(path)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = dict(meta)
    if optimizer is not None:
        optim_tensors, groups = _optimizer_tensors(optimizer.state_dict())
        tensors.update({k: v.detach().cpu().contiguous() for k, v in optim_tensors.items()})
        meta["param_groups"] = groups
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    if keep_previous:
        _keep_previous(path)
    return _write(path, tensors, meta)


def save_checkpoint(
    path: str | Path,
    model: SuperNet,
    optimizer: torch.optim.Optimizer | None = None,
    state: dict | None = None,
    keep_previous: bool = False,
) -> Path:
    """Write ``model`` (+ optimizer tensors, torch RNG and the JSON-able ``state``) to ``path`` atomically;
    ``keep_previous`` first keeps the checkpoint it replaces as :func:`previous_path`."""
    meta = {
        "format": FORMAT,
        "space": model.space.name,
        "num_classes": model.num_classes,
        "dropout": model.dropout,
        "drop_connect": model.drop_connect,
        "state": state or {},
    }
    return save_state(path, model, optimizer, meta, keep_previous)


def read_checkpoint(path: str | Path, fmt: str = FORMAT) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata) of a checkpoint in format ``fmt``, with a clear error for anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(path, framework="pt") as f:
            header = f.metadata() or {}
            meta = json.loads(header.get(META_KEY, "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error type for damaged headers
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint: {e}") from None
    expected = header.get(DIGEST_KEY)  # checkpoints written before checksums existed have none
    if expected is not None and content_digest(tensors, header.get(META_KEY, "")) != expected:
        raise CheckpointError(f"{path} is damaged: its content does not match the sha256 recorded when it was "
                              "written (a flipped byte or a partial copy)")
    if meta.get("format") != fmt:
        raise CheckpointError(f"{path} is not an anas_zoo {_KINDS[fmt]} checkpoint (format {meta.get('format')!r})")
    return tensors, meta


def with_fallback(path: str | Path, attempt: Callable[[Path], T]) -> tuple[T, Path, str | None]:
    """``attempt(path)``, or, when it raises :class:`CheckpointError` and :func:`previous_path` exists,
    ``attempt`` on that previous file.

    Returns (the result, the file used, why ``path`` was skipped or None). Raises one error naming both when
    neither works.
    """
    path = Path(path)
    try:
        return attempt(path), path, None
    except CheckpointError as e:
        previous = previous_path(path)
        if not previous.is_file():
            raise
        try:
            return attempt(previous), previous, str(e)
        except CheckpointError as fallback:
            raise CheckpointError(f"{e}; the previous checkpoint cannot be restored either: {fallback}") from None


def slim_checkpoint(source: str | Path, target: str | Path, dtype: str = "float32") -> Path:
    """Copy a training checkpoint without its optimizer state: the supernet (floating tensors in ``dtype``), recipe
    and step, for search and fine-tuning (:func:`load_supernet` and ``anas-search`` read it, casting back to
    float32; training cannot resume from it)."""
    tensors, meta = read_checkpoint(source)
    kept = stored_tensors({k: v for k, v in tensors.items() if k.startswith("model.")}, dtype)
    meta = {**{k: v for k, v in meta.items() if k != "param_groups"}, "slim": True, "dtype": dtype}
    return _write(Path(target), kept, meta)


def _load_model(path: Path, tensors: dict, meta: dict, model: SuperNet) -> None:
    if meta["space"] != model.space.name or meta["num_classes"] != model.num_classes:
        raise CheckpointError(
            f"{path} holds a '{meta['space']}' supernet with {meta['num_classes']} classes, "
            f"not '{model.space.name}' with {model.num_classes}"
        )
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)


def load_supernet(path: str | Path) -> SuperNet:
    """Rebuild the supernet stored in a training checkpoint (strict load, CPU, train mode)."""
    tensors, meta = read_checkpoint(path)
    model = SuperNet(meta["space"], meta["num_classes"], meta["dropout"], meta["drop_connect"])
    _load_model(Path(path), tensors, meta, model)
    return model


def load_supernet_weights(path: str | Path, model: SuperNet) -> dict:
    """Load only the supernet weights of a full or slimmed checkpoint into ``model`` (strict, same space and
    classes): the start of a fine-tuning run. Returns the checkpoint's metadata."""
    tensors, meta = read_checkpoint(path)
    _load_model(Path(path), tensors, meta, model)
    return meta


def restore_state(tensors: dict[str, torch.Tensor], meta: dict, optimizer: torch.optim.Optimizer | None,
                  device: torch.device) -> None:
    """Put the optimizer and torch RNG state of a :func:`save_state` file back (the model is the caller's)."""
    if optimizer is not None:
        slots: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                slots.setdefault(int(index), {})[name] = value.to(device)
        optimizer.load_state_dict({"state": slots, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[f"rng.cuda.{i}"] for i in range(sum(k.startswith("rng.cuda.") for k in tensors))]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)


def restore(
    path: str | Path, model: SuperNet, optimizer: torch.optim.Optimizer | None = None
) -> dict:
    """Load model, optimizer and torch RNG state from ``path`` in place; return the JSON training state."""
    tensors, meta = read_checkpoint(path)
    if meta.get("slim"):
        raise CheckpointError(f"{path} holds no optimizer or RNG state (a slimmed supernet for search and "
                              "fine-tuning); training can only resume from the full checkpoint")
    _load_model(Path(path), tensors, meta, model)
    restore_state(tensors, meta, optimizer, next(model.parameters()).device)
    return meta["state"]


def restore_latest(
    path: str | Path, model: SuperNet, optimizer: torch.optim.Optimizer | None = None
) -> tuple[dict, Path, str | None]:
    """:func:`restore` from ``path``, or, when it is missing or damaged, from its :func:`previous_path`:
    (training state, the file restored, why ``path`` was skipped or None)."""
    return with_fallback(path, lambda candidate: restore(candidate, model, optimizer))
