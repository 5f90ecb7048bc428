"""Weight files on disk: safetensors plus a JSON metadata record, verified by sha256 on load.

A weight set ``NAME.TAG`` is two files side by side, ``NAME.TAG.safetensors`` and ``NAME.TAG.json``.
Floating-point tensors may be stored in float16 (the record's ``dtype`` says which): the bundled family is,
to halve the repository; loading casts them back to the model's float32, exactly.
They live in the bundled ``checkpoints/`` folder (:func:`bundled_dir`) or in the local store of imported weights
(``$ANAS_ZOO_HOME``, default ``~/.cache/anas_zoo/weights``). Never pickle.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from anas_zoo.fileio import FILE_MODE, move_into_place, sha256_of, staging_folder
from anas_zoo.pretrained_cfg import PretrainedCfg, default_data_config
from anas_zoo.space import ArchConfig

FORMAT = "anas_zoo.weights/1"
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def bundled_dir() -> Path:
    """The bundled weights: ``anas_zoo/checkpoints`` in an installed wheel (pyproject.toml maps the repository's
    top-level ``checkpoints/`` there), else that top-level folder beside the package (source or editable install)."""
    package = Path(__file__).resolve().parent
    installed = package / "checkpoints"
    return installed if installed.is_dir() else package.parent / "checkpoints"


BUNDLED_DIR = bundled_dir()
#: A model name or weight tag: it becomes part of a file name, so no separators, dots or leading '-'.
_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


class WeightsError(RuntimeError):
    """Weights that are missing, corrupted, tampered with, or do not fit their model."""


def store_dir() -> Path:
    """The local store of imported weights: ``$ANAS_ZOO_HOME/weights`` or the user cache directory."""
    home = os.environ.get("ANAS_ZOO_HOME")
    if home:
        return Path(home).expanduser() / "weights"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "anas_zoo" / "weights"


def search_dirs() -> list[Path]:
    """Where local weights are looked for, in order: bundled checkpoints, then the local store."""
    return [BUNDLED_DIR, store_dir()]


def check_name_part(text, what: str) -> str:
    """A model name or weight tag that is safe as part of a file name: letters, digits, '_' and '-'."""
    if not isinstance(text, str) or not _NAME_PART.match(text):
        raise ValueError(f"{what} {text!r} is not allowed: use 1-100 letters, digits, '_' or '-', starting with a "
                         "letter or digit (no '/', '.' or '..': it becomes a file name)")
    return text


def storage_dtype(name: str) -> torch.dtype:
    """The torch dtype of a storage precision name, with an error that lists the allowed ones."""
    if name not in STORAGE_DTYPES:
        raise ValueError(f"storage dtype {name!r} is not one of {', '.join(STORAGE_DTYPES)}")
    return STORAGE_DTYPES[name]


def stored_tensors(tensors: dict[str, torch.Tensor], dtype: str = "float32") -> dict[str, torch.Tensor]:
    """``tensors`` as they are written to disk: contiguous CPU copies, floating-point ones cast to ``dtype``
    (integer buffers such as BN's ``num_batches_tracked`` keep theirs)."""
    target = storage_dtype(dtype)
    return {k: (v.to(target) if v.is_floating_point() else v).detach().contiguous().cpu() for k, v in tensors.items()}


def save_weights(model: torch.nn.Module, record: dict, directory: str | Path, stem: str, dtype: str = "float32") -> Path:
    """Write ``stem.safetensors`` (floating tensors in ``dtype``) and ``stem.json`` (``record`` + dtype + sha256)
    into ``directory``; returns the JSON path. Both are written in a staging folder and then renamed into place,
    weights first, so a failed write (a full disk) leaves the earlier pair or none, never half of a new one."""
    directory = Path(directory)
    if Path(stem).name != stem or stem.startswith("."):
        raise ValueError(f"weight set name {stem!r} would be written outside {directory}")
    weights_path, json_path = directory / f"{stem}.safetensors", directory / f"{stem}.json"
    state = stored_tensors(model.state_dict(), dtype)
    record = {**record, "dtype": dtype}
    header = {"format": FORMAT, "record": json.dumps(record, sort_keys=True)}
    with staging_folder(directory, stem) as staging:
        staged_weights, staged_json = staging / weights_path.name, staging / json_path.name
        save_file(state, str(staged_weights), metadata=header)
        full = {**record, "format": FORMAT, "file": weights_path.name, "sha256": sha256_of(staged_weights)}
        staged_json.write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
        for staged in (staged_weights, staged_json):
            staged.chmod(FILE_MODE)
        move_into_place([(staged_weights, weights_path), (staged_json, json_path)])
    return json_path


def read_record(json_path: str | Path) -> dict:
    """The metadata record of a weight set, without touching the weights."""
    json_path = Path(json_path)
    try:
        record = json.loads(json_path.read_text())
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not UTF-8 text at all
        raise WeightsError(f"cannot read weight metadata {json_path}: {e}") from e
    if not isinstance(record, dict):
        raise WeightsError(f"weight metadata {json_path} is not a JSON object")
    for key, kind in (("file", str), ("sha256", str), ("genome", dict)):
        if key not in record:
            raise WeightsError(f"weight metadata {json_path} has no '{key}' field")
        if not isinstance(record[key], kind):
            raise WeightsError(f"weight metadata {json_path}: '{key}' must be a JSON {'string' if kind is str else 'object'}, "
                               f"got {record[key]!r:.80}")
    return record


def verify_weights(json_path: str | Path) -> tuple[Path, dict]:
    """(weights file, record) of a weight set whose file exists and matches the record's sha256; else WeightsError."""
    json_path = Path(json_path)
    record = read_record(json_path)
    weights_path = json_path.parent / record["file"]
    if not weights_path.is_file():
        raise WeightsError(f"weights file {weights_path} named by {json_path} does not exist")
    actual = sha256_of(weights_path)
    if actual != record["sha256"]:
        raise WeightsError(
            f"sha256 mismatch for {weights_path}: metadata says {record['sha256']}, file has {actual}; "
            "the file is corrupted or was modified — delete it and obtain it again"
        )
    return weights_path, record


def read_weights(json_path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(state_dict, record) of a weight set, after checking the file's sha256 against the record."""
    weights_path, record = verify_weights(json_path)
    try:
        return load_file(str(weights_path)), record
    except (SafetensorError, OSError) as e:  # e.g. a truncated file whose record was edited to match
        raise WeightsError(f"weights file {weights_path} is not a readable safetensors file: {e}") from None


def load_into(model: torch.nn.Module, json_path) -> dict:
    """Load a verified weight set into ``model`` strictly (the record's genome must be the model's) and merge its
    record into ``model.pretrained_cfg``; returns the record."""
    state, record = read_weights(json_path)
    if ArchConfig.from_dict(record["genome"]) != model.arch:
        raise WeightsError(f"weights {json_path} are for genome {record['genome']}, not {model.arch.to_dict()}")
    previous = getattr(model, "pretrained_cfg", None)
    defaults = {"name": record.get("name", Path(json_path).stem), "num_classes": model.num_classes,
                "preprocessing": default_data_config(model).to_dict()}  # a minimal record, a model built from a genome
    try:
        cfg = PretrainedCfg.from_record({**defaults, **(previous or {}), **record},
                                        hub_id=previous.hub_id if previous else None)
    except ValueError as e:
        raise WeightsError(f"weight metadata {json_path}: {e}") from None
    expected = model.state_dict()
    for key, tensor in state.items():
        if key in expected and expected[key].is_floating_point() != tensor.is_floating_point():
            raise WeightsError(f"weights {json_path}: tensor {key} is {tensor.dtype}, the model needs "
                               f"{expected[key].dtype} (the record says dtype {record.get('dtype', 'float32')})")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"weights {json_path} do not fit the model: {e}") from e
    model.pretrained_cfg = cfg
    return record


def find_local(stem: str) -> Path | None:
    """The JSON record of weight set ``stem`` in the first search folder that has it."""
    for directory in search_dirs():
        candidate = directory / f"{stem}.json"
        if candidate.is_file():
            return candidate
    return None
