"""Training checkpoints: one safetensors file, tensors only, written atomically.

A checkpoint holds the supernet, or the static model being fine-tuned (``model.*``), the optimizer's tensors
(``optim.*``) and the torch RNG state as tensors; everything else (space name, num_classes, step, optimizer
hyper-parameters, scheduler/sampler/data-order/Python RNG state, the recipe) is JSON in the safetensors metadata.
Loading never unpickles anything, and :func:`load_supernet` rebuilds the supernet from the file alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from anas_zoo.fileio import atomic_write
from anas_zoo.store import stored_tensors
from anas_zoo.supernet import SuperNet

FORMAT = "anas_zoo.supernet-checkpoint/1"
FINETUNE_FORMAT = "anas_zoo.finetune-checkpoint/1"
_KINDS = {FORMAT: "supernet", FINETUNE_FORMAT: "fine-tuning"}


class CheckpointError(ValueError):
    """A missing, foreign or damaged checkpoint."""


def _optimizer_tensors(state: dict) -> tuple[dict[str, torch.Tensor], list]:
    tensors = {}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value
    return tensors, state["param_groups"]


def save_state(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, meta: dict) -> Path:
    """Write ``model`` (``model.*``), the optimizer's tensors (``optim.*``), the torch RNG and ``meta`` (JSON, which
    must name its ``format``) to ``path`` atomically: the one writer of every resumable training state."""
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
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"anas_zoo": json.dumps(meta)}))


def save_checkpoint(
    path: str | Path,
    model: SuperNet,
    optimizer: torch.optim.Optimizer | None = None,
    state: dict | None = None,
) -> Path:
    """Write ``model`` (+ optimizer tensors, torch RNG and the JSON-able ``state``) to ``path`` atomically."""
    meta = {
        "format": FORMAT,
        "space": model.space.name,
        "num_classes": model.num_classes,
        "dropout": model.dropout,
        "drop_connect": model.drop_connect,
        "state": state or {},
    }
    return save_state(path, model, optimizer, meta)


def read_checkpoint(path: str | Path, fmt: str = FORMAT) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata) of a checkpoint in format ``fmt``, with a clear error for anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(path, framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("anas_zoo", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error type for damaged headers
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint: {e}") from None
    if meta.get("format") != fmt:
        raise CheckpointError(f"{path} is not an anas_zoo {_KINDS[fmt]} checkpoint (format {meta.get('format')!r})")
    return tensors, meta


def slim_checkpoint(source: str | Path, target: str | Path, dtype: str = "float32") -> Path:
    """Copy a training checkpoint without its optimizer state: the supernet (floating tensors in ``dtype``), recipe
    and step, for search and fine-tuning (:func:`load_supernet` and ``anas-search`` read it, casting back to
    float32; training cannot resume from it)."""
    tensors, meta = read_checkpoint(source)
    kept = stored_tensors({k: v for k, v in tensors.items() if k.startswith("model.")}, dtype)
    meta = {**{k: v for k, v in meta.items() if k != "param_groups"}, "slim": True, "dtype": dtype}
    return atomic_write(Path(target), lambda tmp: save_file(kept, tmp, metadata={"anas_zoo": json.dumps(meta)}))


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


def load_weights(path: str | Path, model: SuperNet) -> dict:
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
