"""MACs and parameter counts, with the papers' definition, plus an fvcore cross-check.

"MFLOPs" in the AttentiveNAS papers are multiply-accumulates of conv and linear layers only (SE and
shortcut convs included; BN, activations, biases, pooling, residual adds and resizing excluded),
at batch 1 and the model's own resolution. Parameters count every weight, bias and BN affine term.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from functools import lru_cache

import torch
from torch import nn

from anas_zoo.space import ArchConfig, BlockPlan, ConvPlan, NetPlan, SearchSpace, get_space


def _conv(plan: ConvPlan, bn: bool = True) -> tuple[int, int]:
    """(MACs, params) of one conv (+ its BN affine terms), at its output size."""
    weights = plan.c_out * (plan.c_in // plan.groups) * plan.kernel**2
    params = weights + (plan.c_out if plan.bias else 0) + (2 * plan.c_out if bn else 0)
    return plan.out_size**2 * weights, params


@lru_cache(maxsize=1 << 16)
def _block_costs(b: BlockPlan) -> tuple[tuple[str, int, int], ...]:
    """(layer name, MACs, params) of one MBConv block. Cached: a space has a few thousand distinct blocks, and
    attentive sampling counts the MACs of every genome it rejects, each sandwich step (with the cache, half the
    time per BestUp slot: ``benchmarks/sampler_cost.py``)."""
    name = f"stages.{b.stage}.{b.index}"
    costs = []
    if b.expand:
        costs.append((f"{name}.expand", *_conv(ConvPlan(b.c_in, b.mid, in_size=b.in_size))))
    costs.append((f"{name}.dw", *_conv(ConvPlan(b.mid, b.mid, b.kernel, b.stride, b.mid, in_size=b.in_size))))
    if b.se_mid is not None:
        reduce = ConvPlan(b.mid, b.se_mid, bias=True)
        expand = ConvPlan(b.se_mid, b.mid, bias=True)
        costs.append((f"{name}.se", *map(sum, zip(_conv(reduce, bn=False), _conv(expand, bn=False)))))
    costs.append((f"{name}.project", *_conv(ConvPlan(b.mid, b.c_out, in_size=b.out_size))))
    if b.shortcut_conv:
        costs.append((f"{name}.shortcut", *_conv(ConvPlan(b.c_in, b.c_out, in_size=b.out_size), bn=False)))
    return tuple(costs)


def layer_costs(plan: NetPlan) -> Iterator[tuple[str, int, int]]:
    """(layer name, MACs, params) for every counted layer of a sub-network."""
    yield "stem", *_conv(plan.stem)
    for b in plan.blocks:
        yield from _block_costs(b)
    yield "head.expand", *_conv(plan.head_expand)
    yield "head.mix", *_conv(plan.feature_mix, bn=False)
    last = plan.feature_mix.c_out
    yield "classifier", last * plan.num_classes, last * plan.num_classes + plan.num_classes


def count(arch: ArchConfig, space: str | SearchSpace = "attentivenas", num_classes: int | None = None,
          resolution: int | None = None) -> tuple[int, int]:
    """(MACs, params) of ``arch`` at its own resolution (or ``resolution``)."""
    costs = list(layer_costs(get_space(space).plan(arch, num_classes, resolution)))
    return sum(c[1] for c in costs), sum(c[2] for c in costs)


def count_macs(arch: ArchConfig, space: str | SearchSpace = "attentivenas", num_classes: int | None = None) -> int:
    """MACs of ``arch`` with the papers' definition."""
    return count(arch, space, num_classes)[0]


def count_params(arch: ArchConfig, space: str | SearchSpace = "attentivenas", num_classes: int | None = None) -> int:
    """Parameters of the static model for ``arch``."""
    return count(arch, space, num_classes)[1]


def _no_cost(inputs, outputs) -> Counter:
    return Counter()


def fvcore_macs(model: nn.Module, resolution: int) -> int:
    """MACs of conv and linear layers as fvcore's tracer counts them (BN/pooling/elementwise ignored)."""
    from fvcore.nn import FlopCountAnalysis

    was_training = model.training
    model.eval()
    analysis = FlopCountAnalysis(model, torch.zeros(1, 3, resolution, resolution))
    # A handle that counts nothing replaces fvcore's default BN / pooling handles (None only
    # silences ops that have no handle).
    uncounted = {op: _no_cost for op in ("aten::batch_norm", "aten::adaptive_avg_pool2d", "aten::upsample_bicubic2d")}
    analysis.set_op_handle(**uncounted)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    try:
        return int(analysis.total())
    finally:
        model.train(was_training)
