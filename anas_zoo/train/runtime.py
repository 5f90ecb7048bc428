"""Process settings that make CPU training fast: keep freed memory mapped, cache more oneDNN kernels.

A training step allocates and frees the same large activation buffers again and again. By default
glibc hands big blocks back to the kernel (mmap/munmap, heap trimming), so every step faults every
4 KiB page in again; on a 2-core VM that was a fifth of the step. Serving every block from the heap
(no mmap; the threshold alone stops at 32 MiB, and a 128-image batch at 32x32 has 64 MiB activations)
and never trimming it keeps the memory mapped after the first steps (the process keeps its peak memory).

Sandwich training runs a new random sub-network every few forward passes, each with its own
convolution shapes, at three batch sizes (training, ranking sub-batch, calibration): oneDNN's default
cache of 1024 compiled primitives thrashes; a larger one keeps them.

A static network being fine-tuned gets the supernet's fast depthwise weight gradient
(:func:`use_fast_depthwise_gradients`). :func:`parse_device` checks the device a command is asked to run on.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import types

import torch
from torch import nn

from anas_zoo.ops import depthwise_conv

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4  # mallopt parameters, glibc's <malloc.h>
INT_MAX = 2**31 - 1  # mallopt takes a C int: larger values would wrap around
ONEDNN_CACHE_CAPACITY = 16384


def parse_device(text: str) -> torch.device:
    """A torch device this machine has (``cpu``, ``cuda``, ``cuda:1``); ValueError naming ``text`` otherwise."""
    try:
        device = torch.device(text)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown torch device {text!r}: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {text!r} requested but CUDA is not available here")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device {text!r} is not supported; use cpu or cuda[:N]")
    return device


def keep_heap_mapped() -> bool:
    """Tell glibc to serve every block from the heap and to keep up to 2 GiB of it mapped when freed.

    False where there is no glibc ``mallopt``.
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    settings = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, INT_MAX), (M_TOP_PAD, 256 << 20))
    return all(mallopt(option, value) == 1 for option, value in settings)


def enlarge_onednn_cache(capacity: int = ONEDNN_CACHE_CAPACITY) -> None:
    """Raise oneDNN's primitive cache capacity unless the user set one; effective before the first convolution."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(capacity))


def tune_cpu_training() -> dict:
    """Apply both settings; returns what was applied (logged with the run)."""
    enlarge_onednn_cache()
    return {
        "heap_kept_mapped": keep_heap_mapped(),
        "onednn_primitive_cache_capacity": int(os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"]),
    }


def use_fast_depthwise_gradients(model: nn.Module) -> int:
    """Route the depthwise ``nn.Conv2d`` layers of a static ``model`` through :func:`~anas_zoo.ops.depthwise_conv`,
    as an instance attribute: class, weights and outputs stay as they are, and a kernel wider than its map gets the
    fast weight gradient the supernet's layers get (benchmarks/finetune_step.py: a6 1.29x, a3 1.26x a step). For
    training only: the routed model no longer scripts or exports. Returns the number of layers routed."""
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1
              and m.groups == m.in_channels == m.out_channels and m.bias is None and m.dilation == (1, 1)
              and m.kernel_size[0] == m.kernel_size[1] and m.padding == (m.kernel_size[0] // 2,) * 2
              and m.stride[0] == m.stride[1]]
    for layer in layers:
        layer.forward = types.MethodType(_depthwise_forward, layer)  # a bound method: a deep copy binds to the copy
    return len(layers)


def _depthwise_forward(layer: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return depthwise_conv(x, layer.weight, layer.stride[0])
