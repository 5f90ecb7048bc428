"""Read an official checkpoint file without running any pickled code.

The released ``.pth.tar`` files are torch pickles, in the legacy format or the zip format of torch >= 1.6.
Unpickling them with :mod:`pickle` would run whatever the file names, so an allow-listed unpickler rebuilds
only tensors and ``OrderedDict``s; any other pickled object (training arguments, optimizer classes, or a
malicious payload) becomes an inert stub, named in a warning.
"""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch

from anas_zoo.official.errors import OfficialCheckpointError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_ZIP_MAGIC = b"PK\x03\x04"

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
