"""Fold inference-mode BatchNorm into the convolution in front of it, on a copy of the model.

An exported graph then carries one Conv (with bias) where the PyTorch model has Conv → BN, which is
what ONNX Runtime would fuse anyway, but done once here so every backend and every quantizer sees
the same, simpler graph and the folding is verified numerically in PyTorch.
"""

from __future__ import annotations

import copy
from itertools import pairwise

import torch
from torch import nn


def _fold_into(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Rescale ``conv`` in place so that ``conv(x)`` equals ``bn(conv(x))`` in eval mode (float64 maths)."""
    std = torch.sqrt(bn.running_var.double() + bn.eps)
    gamma = bn.weight.double() if bn.affine else torch.ones_like(std)
    beta = bn.bias.double() if bn.affine else torch.zeros_like(std)
    scale = gamma / std
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    weight = conv.weight.double() * scale.view(-1, *([1] * (conv.weight.dim() - 1)))
    new_bias = (bias - bn.running_mean.double()) * scale + beta
    conv.weight = nn.Parameter(weight.to(conv.weight.dtype), requires_grad=False)
    conv.bias = nn.Parameter(new_bias.to(conv.weight.dtype), requires_grad=False)


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """(eval-mode copy of ``model`` with every Conv2d → BatchNorm2d pair folded, number of pairs folded).

    A pair is a BatchNorm2d that directly follows a Conv2d inside the same ``nn.Sequential`` (the
    ``conv_bn`` layout of :mod:`anas_zoo.static`); the folded BN becomes ``nn.Identity``.
    The original model is left untouched.
    """
    folded = copy.deepcopy(model).eval()
    count = 0
    with torch.no_grad():
        for module in folded.modules():
            if not isinstance(module, nn.Sequential):
                continue
            names = list(module._modules)
            for first, second in pairwise(names):
                conv, bn = module._modules[first], module._modules[second]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                    _fold_into(conv, bn)
                    module._modules[second] = nn.Identity()
                    count += 1
    return folded, count


def optimize_for_inference(model: nn.Module) -> nn.Module:
    """Eval-mode copy for eager CPU inference: BatchNorm folded and weights in channels_last.

    Feed it channels_last inputs (``x.to(memory_format=torch.channels_last)``). The result is
    still plain Conv2d / SiLU / Hardsigmoid / Linear modules, so it traces and exports as well.
    """
    folded, _ = fold_batchnorm(model)
    return folded.to(memory_format=torch.channels_last)
