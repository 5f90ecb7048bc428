"""Import of the authors' released AttentiveNAS / AlphaNet supernet checkpoints (DESIGN.md §6).

Three steps, one function each: :func:`read_official_checkpoint` reads the ``.pth.tar`` file without running
pickled code (an allow-listed unpickler for the legacy and the zip torch formats);
:func:`to_ours` / :func:`to_official` translate between the official key layout and our
:class:`~anas_zoo.supernet.SuperNet`; :func:`import_official` extracts the paper's A-models, recalibrates
their BatchNorm statistics and writes them into the local weight store.
"""

from __future__ import annotations

import io
import pickle
import re
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable
from itertools import accumulate
from pathlib import Path

import torch

from anas_zoo.fileio import file_digest
from anas_zoo.paper_models import ALPHANET_TAG, ATTENTIVENAS_TAG, OFFICIAL_LICENSE
from anas_zoo.store import save_weights, store_dir
from anas_zoo.supernet import SuperNet
from anas_zoo.zoo import get_entry

KINDS = ("attentivenas", "alphanet")
MODELS = ("a0", "a1", "a2", "a3", "a4", "a5", "a6")
#: MD5 of the released files; the AlphaNet file's is not recorded in DESIGN.md.
RELEASE_MD5 = {"attentivenas": "52741b01f92e680254bfa55c29ebdb71"}
RELEASE_FILES = {"attentivenas": "attentive_nas_pretrained.pth.tar", "alphanet": "alphanet_pretrained.pth.tar"}

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_ZIP_MAGIC = b"PK\x03\x04"


class OfficialCheckpointError(ValueError):
    """A file that is not a readable official checkpoint, or whose keys/shapes do not fit our supernet."""


# ----- reading the file without executing it -----------------------------------------------------
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class _StorageType:
    """What a pickled ``torch.FloatStorage`` (etc.) class reference becomes: just its dtype."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


class _Dropped:
    """Stand-in for an object of a class that is not allow-listed: constructing it runs nothing."""

    qualified_name = "?"

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass

    def __setitem__(self, key, value):
        pass

    def __repr__(self) -> str:
        return f"<dropped {self.qualified_name}>"


def _rebuild_tensor(storage, offset, size, stride, *unused):
    """``torch._utils._rebuild_tensor[_v2]``: a view into a flat storage tensor (filled later for legacy files)."""
    if not isinstance(storage, torch.Tensor):
        raise pickle.UnpicklingError(f"tensor built on something that is not a storage: {storage!r}")
    try:
        return storage.as_strided(tuple(size), tuple(stride), int(offset))
    except RuntimeError as e:
        raise pickle.UnpicklingError(f"tensor of size {tuple(size)} does not fit its storage: {e}") from None


def _rebuild_parameter(data, requires_grad, backward_hooks, *unused):
    return data


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): OrderedDict,
}


class _SafeUnpickler(pickle.Unpickler):
    """Resolves only the allow-listed globals; every other class or function becomes a :class:`_Dropped` stub."""

    def __init__(self, file, storage: Callable[[tuple], torch.Tensor] | None = None):
        super().__init__(file)
        self._storage = storage
        self.dropped: set[str] = set()

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        qualified = f"{module}.{name}"
        self.dropped.add(qualified)
        return type(name, (_Dropped,), {"qualified_name": qualified})

    def persistent_load(self, pid):
        if self._storage is None:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (pre-1.0 torch files) are not supported")
        return self._storage(pid)


def _read_legacy(f, file_size: int) -> tuple[object, set[str]]:
    """The legacy format: magic, protocol, sys_info, the object (storages as persistent ids), keys, raw data."""
    magic = _SafeUnpickler(f).load()
    if magic != _LEGACY_MAGIC:
        raise pickle.UnpicklingError("no torch magic number at the start")
    protocol = _SafeUnpickler(f).load()
    if protocol != _LEGACY_PROTOCOL:
        raise pickle.UnpicklingError(f"unsupported legacy protocol version {protocol!r}")
    sys_info = _SafeUnpickler(f).load()
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise pickle.UnpicklingError(f"unsupported system info {sys_info!r} (big-endian files are not supported)")

    storages: dict[str, torch.Tensor] = {}

    def storage(pid: tuple) -> torch.Tensor:
        _, kind, key, _, numel = pid[:5]
        if key not in storages:
            if not isinstance(numel, int) or numel < 0 or numel * kind.dtype.itemsize > file_size:
                raise pickle.UnpicklingError(f"storage {key} claims {numel!r} elements, more than the file holds")
            storages[key] = torch.empty(numel, dtype=kind.dtype)
        return storages[key]

    unpickler = _SafeUnpickler(f, storage)
    obj = unpickler.load()
    keys = _SafeUnpickler(f).load()
    if not isinstance(keys, list) or set(keys) != set(storages):
        raise pickle.UnpicklingError("the storage key list does not match the storages the object refers to")
    for key in keys:
        flat = storages[key]
        numel = int.from_bytes(f.read(8), "little", signed=True)
        nbytes = flat.numel() * flat.element_size()
        if numel != flat.numel():
            raise pickle.UnpicklingError(f"storage {key} holds {numel} elements, the object expects {flat.numel()}")
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise pickle.UnpicklingError(f"file truncated inside storage {key}")
        if nbytes:
            flat.copy_(torch.frombuffer(bytearray(data), dtype=flat.dtype))
    return obj, unpickler.dropped


def _read_zip(path: Path) -> tuple[object, set[str]]:
    """The zip format (torch >= 1.6): ``<prefix>/data.pkl`` plus one file per storage under ``<prefix>/data/``."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pickles:
            raise pickle.UnpicklingError("zip file without a <prefix>/data.pkl member")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in archive.namelist() and archive.read(f"{prefix}byteorder") != b"little":
            raise pickle.UnpicklingError("big-endian files are not supported")

        def storage(pid: tuple) -> torch.Tensor:
            _, kind, key, _, numel = pid[:5]
            data = archive.read(f"{prefix}data/{key}")
            if len(data) != numel * kind.dtype.itemsize:
                raise pickle.UnpicklingError(f"storage {key} holds {len(data)} bytes, expected {numel} elements")
            return torch.frombuffer(bytearray(data), dtype=kind.dtype) if data else torch.empty(0, dtype=kind.dtype)

        unpickler = _SafeUnpickler(io.BytesIO(archive.read(pickles[0])), storage)
        return unpickler.load(), unpickler.dropped


def read_official_checkpoint(path: str | Path) -> object:
    """The object stored in a torch checkpoint file, read without executing any pickled code.

    Tensors, dicts, lists, tuples, numbers and strings come back as they are; any other pickled
    object (training arguments, optimizer classes, or a malicious payload) becomes an inert stub and
    is named in a warning.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4)
        try:
            if head == _ZIP_MAGIC:
                obj, dropped = _read_zip(path)
            elif head[:1] != pickle.PROTO:  # every legacy torch file opens with a pickle protocol header
                raise pickle.UnpicklingError(f"it is neither a zip nor a legacy pickle file (it starts with {head!r})")
            else:
                f.seek(0)
                obj, dropped = _read_legacy(f, path.stat().st_size)
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
                KeyError, zipfile.BadZipFile, MemoryError) as e:
            raise OfficialCheckpointError(f"{path} is not a readable torch checkpoint: {e}") from None
    if dropped:
        warnings.warn(
            f"{path.name}: dropped pickled objects the import does not need (not executed): {', '.join(sorted(dropped))}",
            stacklevel=2,
        )
    return obj


def official_state_dict(obj: object, where: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The supernet state dict inside a checkpoint object (``obj['state_dict']``, or ``obj`` itself)."""
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state:
        found = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise OfficialCheckpointError(f"{where} holds no state_dict (found {found})")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise OfficialCheckpointError(f"{where}: state_dict entry {key!r} is {value!r}, not a tensor")
    return state


def md5_of(path: str | Path) -> str:
    return file_digest(path, "md5")


# ----- key layout: official <-> ours -------------------------------------------------------------
_BLOCK_PARTS = {
    "expand": "mobile_inverted_conv.inverted_bottleneck",
    "dw": "mobile_inverted_conv.depth_conv",
    "project": "mobile_inverted_conv.point_linear",
    "shortcut": "shortcut",
}
_OUR_KEY = re.compile(
    r"stem\.(?P<stem>conv|bn)\.(?P<stem_leaf>\w+)"
    r"|stages\.(?P<stage>\d+)\.(?P<index>\d+)\.(?:"
    r"(?P<part>expand|dw|project|shortcut)\.(?P<layer>conv|bn)\.(?P<leaf>\w+)"
    r"|se\.(?P<se>reduce|expand)\.(?P<se_leaf>\w+))"
    r"|head\.expand\.(?P<head>conv|bn)\.(?P<head_leaf>\w+)"
    r"|head\.mix\.weight"
    r"|classifier\.(?P<fc_leaf>\w+)"
)


def _official_name(key: str, block_offsets: list[int]) -> str:
    """The official name of one of our supernet's state-dict keys (without the ``module.`` prefix)."""
    m = _OUR_KEY.fullmatch(key)
    if m is None:
        raise OfficialCheckpointError(f"our supernet key {key!r} has no official counterpart")
    g = m.groupdict()
    if g["stem"]:
        return f"first_conv.{g['stem']}.{g['stem']}.{g['stem_leaf']}"
    if g["stage"]:
        block = f"blocks.{block_offsets[int(g['stage'])] + int(g['index'])}"
        if g["se"]:
            return f"{block}.mobile_inverted_conv.depth_conv.se.fc.{g['se']}.{g['se_leaf']}"
        return f"{block}.{_BLOCK_PARTS[g['part']]}.{g['layer']}.{g['layer']}.{g['leaf']}"
    if g["head"]:
        return f"last_conv.final_expand_layer.{g['head']}.{g['head']}.{g['head_leaf']}"
    if g["fc_leaf"]:
        return f"classifier.linear.linear.{g['fc_leaf']}"
    return "last_conv.feature_mix_layer.conv.conv.weight"


def key_map(supernet: SuperNet) -> dict[str, str]:
    """Our state-dict key → the official key (no ``module.`` prefix), for every key of ``supernet``."""
    offsets = [0, *accumulate(max(stage.depths) for stage in supernet.space.stages)]
    return {key: _official_name(key, offsets) for key in supernet.state_dict()}


def unused_shortcuts(supernet: SuperNet) -> dict[str, tuple[int, ...]]:
    """Official shortcut convs of blocks whose residual is always identity in our supernet, with their shapes.

    The official supernet keeps a 1×1 shortcut conv on every block; ours only where widths can differ.
    """
    plan = supernet.space.plan(supernet.space.max_arch(), supernet.num_classes)
    ours = set(key_map(supernet).values())
    shapes = {}
    for n, block in enumerate(plan.blocks):
        name = f"blocks.{n}.shortcut.conv.conv.weight"
        if name not in ours:
            shapes[name] = (block.c_out, block.c_in, 1, 1)
    return shapes


def _ignored(key: str, unused: dict) -> bool:
    return ".bn_tracking." in key or key.endswith("num_batches_tracked") or key in unused


def to_ours(state: dict[str, torch.Tensor], supernet: SuperNet) -> dict[str, torch.Tensor]:
    """Our state dict from an official one: every non-ignored key consumed, every shape checked.

    Ignored: ``bn_tracking`` buffers, ``num_batches_tracked`` and the shortcut convs of identity blocks
    (see :func:`unused_shortcuts`); BN ``num_batches_tracked`` come back as 0. ``supernet`` only
    provides names and shapes.
    """
    names = key_map(supernet)
    ours_of = {official: ours for ours, official in names.items()}
    unused = unused_shortcuts(supernet)
    target = supernet.state_dict()
    prefixed = all(k.startswith("module.") for k in state)
    result, unexpected = {}, []
    for key, tensor in state.items():
        name = key[len("module."):] if prefixed else key
        if _ignored(name, unused):
            continue
        if name not in ours_of:
            unexpected.append(key)
            continue
        ours = ours_of[name]
        if tensor.shape != target[ours].shape:
            raise OfficialCheckpointError(
                f"shape mismatch for {key}: the checkpoint has {tuple(tensor.shape)}, "
                f"our supernet's {ours} is {tuple(target[ours].shape)}"
            )
        result[ours] = tensor.to(target[ours].dtype)
    prefix = "module." if prefixed else ""
    missing = [prefix + names[k] for k in names if k not in result and not k.endswith("num_batches_tracked")]
    if missing:
        raise OfficialCheckpointError(
            f"the checkpoint lacks {len(missing)} key(s) our supernet needs: {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else "")
        )
    if unexpected:
        raise OfficialCheckpointError(
            f"the checkpoint has {len(unexpected)} key(s) that map to nothing in our supernet: "
            f"{', '.join(unexpected[:5])}" + (" ..." if len(unexpected) > 5 else "")
        )
    counters = {k: torch.zeros((), dtype=torch.int64) for k in target if k.endswith("num_batches_tracked")}
    return {**counters, **result}


def to_official(supernet: SuperNet) -> dict[str, torch.Tensor]:
    """The full official layout of ``supernet``'s weights: ``module.`` prefix, ``bn_tracking`` buffers and a
    shortcut conv on every block (zeros where ours is always identity) — what the released file holds."""
    state, weights = {}, supernet.state_dict()
    for ours, official in key_map(supernet).items():
        tensor = weights[ours].detach().clone()
        state[f"module.{official}"] = tensor
        if ours.endswith(".bn.running_mean"):
            module = official[: -len(".bn.running_mean")]
            for j in range(2):
                tracking = f"module.{module}.bn_tracking.{j}"
                state[f"{tracking}.running_mean"] = torch.zeros_like(tensor)
                state[f"{tracking}.running_var"] = torch.ones_like(tensor)
                state[f"{tracking}.num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)
    for name, shape in unused_shortcuts(supernet).items():
        state[f"module.{name}"] = torch.zeros(shape)
    return state


def load_official_supernet(path: str | Path, space: str = "attentivenas") -> SuperNet:
    """A :class:`SuperNet` holding the weights of an official checkpoint file (eval mode)."""
    supernet = SuperNet(space)
    state = official_state_dict(read_official_checkpoint(path), where=str(path))
    supernet.load_state_dict(to_ours(state, supernet), strict=True, assign=True)
    return supernet.eval()


# ----- the import: extract, recalibrate, store ---------------------------------------------------
def target_name(kind: str, model: str) -> tuple[str, str]:
    """(registered model name, weight tag) that an A-model of a ``kind`` checkpoint is stored under."""
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind '{kind}'; allowed: {', '.join(KINDS)}")
    if model not in MODELS:
        raise ValueError(f"unknown model '{model}'; allowed: {', '.join(MODELS)}")
    if kind == "alphanet":
        return ("alphanet_a5" if model == "a5" else f"attentivenas_{model}"), ALPHANET_TAG
    return f"attentivenas_{model}", ATTENTIVENAS_TAG


def imagenet_calibration(root: str | Path, batch_size: int = 64, num_workers: int = 2) -> tuple[Callable, dict]:
    """(``calib_batches`` for :func:`import_official`, its metadata) over an ImageNet-style training folder,
    with the published training preprocessing at each model's resolution."""
    from anas_zoo.train.data import image_folder_loader

    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"calibration data {root} is not a folder; expected an ImageNet-style train/<class>/ tree")

    def batches(resolution: int) -> Iterable:
        return image_folder_loader(root, resolution, train=True, batch_size=batch_size, num_workers=num_workers)

    info = {
        "data": str(root),
        "batch_size": batch_size,
        "preprocessing": "RandomResizedCrop (bicubic) to the model resolution + horizontal flip, ImageNet mean/std",
        "method": "running statistics reset, cumulative average over forward-only training batches",
    }
    return batches, info


def check_source(path: str | Path, kind: str) -> dict:
    """Provenance of a checkpoint file: name, kind, MD5 and whether it is the released file's (None: unknown)."""
    path = Path(path)
    md5 = md5_of(path)
    known = RELEASE_MD5.get(kind)
    if known is None:
        warnings.warn(f"no release MD5 is recorded for {kind} checkpoints; {path.name} has MD5 {md5}", stacklevel=2)
    elif md5 != known:
        warnings.warn(
            f"{path.name} has MD5 {md5}, not the released {RELEASE_FILES[kind]}'s {known}; importing anyway",
            stacklevel=2,
        )
    return {"file": path.name, "kind": kind, "md5": md5, "md5_matches_release": None if known is None else md5 == known}


def import_official(
    path: str | Path,
    kind: str = "attentivenas",
    models: Iterable[str] = MODELS,
    calib_batches: Callable[[int], Iterable] | None = None,
    num_calib_batches: int = 64,
    calibration_info: dict | None = None,
    store: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict:
    """Map an official checkpoint onto our supernet, extract each A-model and write it to the weight store.

    ``calib_batches(resolution)`` yields preprocessed training batches for BN recalibration (run on
    ``device``, described by ``calibration_info`` in the metadata); without it the stored statistics
    are kept and the weights are marked ``uncalibrated``. Returns the source's provenance
    (:func:`check_source`) and one summary per written weight set under ``weights``.
    """
    from tqdm import tqdm

    from anas_zoo.flops import count
    from anas_zoo.train.calibrate import calibrate_bn

    targets = [(model, *target_name(kind, model)) for model in models]
    supernet = load_official_supernet(path)
    source = check_source(path, kind)
    if calib_batches is None:
        warnings.warn(
            "NO BN RECALIBRATION (--calib-data not given): the released supernet's BN statistics are not those "
            "of its sub-networks, so accuracy will be far below the paper's; weights are marked 'uncalibrated'",
            stacklevel=2,
        )
    store = Path(store) if store else store_dir()
    written = []
    for model, name, tag in tqdm(targets, desc="import", unit="model", disable=not progress):
        entry = get_entry(name)
        static = supernet.extract(entry.arch)
        if calib_batches is not None:
            used = calibrate_bn(static.to(device), calib_batches(entry.arch.resolution), num_calib_batches, device)
            calibration = {"status": "calibrated", "batches": used, **(calibration_info or {})}
        else:
            calibration = {"status": "uncalibrated", "note": "BN statistics as stored in the supernet checkpoint"}
        static.cpu().eval()
        macs, params = count(entry.arch, entry.space, entry.num_classes)
        record = {
            **entry.metadata(tag),
            "macs": macs,
            "params": params,
            "license": OFFICIAL_LICENSE,
            "source": source,
            "calibration": calibration,
        }
        json_path = save_weights(static, record, store, f"{name}.{tag}")
        written.append({"model": model, "name": f"{name}.{tag}", "path": str(json_path), "calibration": calibration["status"]})
    return {**source, "weights": written}
