"""The model description an export carries in its files' metadata and its sidecar, and its string encoding."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.metadata import version

import onnx
import onnxruntime
import torch

from anas_zoo import flops
from anas_zoo.export.session import INPUT_NAME, OUTPUT_NAME
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.provenance import __version__
from anas_zoo.static import StaticNet


def _versions(runtimes: Sequence[str]) -> dict:
    versions = {"anas_zoo": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__}
    versions.update({package: version(package) for package in runtimes})
    return versions


def build_metadata(net: StaticNet, cfg: dict, name: str, weights: str, precision: str, opset: int | None,
                   license: str | None = None, runtimes: Sequence[str] = ()) -> dict:
    """The model's description carried in the file's metadata and the sidecar (JSON-able values).

    ``runtimes`` names extra packages (``openvino``, ``executorch``) whose versions made the file.
    """
    macs, params = flops.count(net.arch, net.space, net.num_classes, net.resolution)
    if license is None:
        license = cfg.get("license", "unspecified") if weights != "random-init" else "apache-2.0 (random weights)"
    return {
        "model_name": name,
        "weights": weights,
        "license": license,
        "space": net.space.name,
        "genome": net.arch.to_dict(),
        "resolution": net.resolution,
        "num_classes": net.num_classes,
        "class_labels": list(cfg["classes"]) if cfg.get("classes") else None,
        "preprocessing": resolve_data_config(net).to_dict(),
        "macs": macs,
        "params": params,
        "precision": precision,
        "opset": opset,
        "input": {"name": INPUT_NAME, "layout": "NCHW", "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "dtype": "float32"},
        "versions": _versions(runtimes),
    }


def metadata_strings(metadata: dict) -> dict[str, str]:
    """Metadata as the string key/value pairs files carry: strings as they are, everything else as JSON."""
    return {key: value if isinstance(value, str) else json.dumps(value, sort_keys=True) for key, value in metadata.items()}


def decode_metadata(pairs: dict[str, str]) -> dict:
    """The inverse of :func:`metadata_strings`."""
    out = {}
    for key, value in pairs.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
