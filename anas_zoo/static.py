"""The deployable static network: plain Conv2d / BatchNorm2d / SiLU / Hardsigmoid / Linear modules.

Everything is fixed at construction from the genome's :class:`~anas_zoo.space.NetPlan`, so the
forward pass has no Python control flow on tensor shapes and traces, scripts, exports and quantizes.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from anas_zoo.space import ArchConfig, BlockPlan, ConvPlan, SearchSpace, as_arch, get_space


def conv_bn(plan: ConvPlan, act: bool = True) -> nn.Sequential:
    """conv (no bias, 'same' padding) → BN(eps 1e-5) → optional SiLU."""
    layers = OrderedDict(
        conv=nn.Conv2d(
            plan.c_in, plan.c_out, plan.kernel, plan.stride, plan.kernel // 2, groups=plan.groups, bias=False
        ),
        bn=nn.BatchNorm2d(plan.c_out),
    )
    if act:
        layers["act"] = nn.SiLU()
    return nn.Sequential(layers)


class SqueezeExcite(nn.Module):
    """Global mean → 1×1 conv → ReLU → 1×1 conv → hard-sigmoid, multiplied onto the input."""

    def __init__(self, channels: int, se_channels: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, se_channels, 1)
        self.relu = nn.ReLU()
        self.expand = nn.Conv2d(se_channels, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))


def shortcut(plan: BlockPlan) -> nn.Module:
    """Identity, or [avg-pool] → [1×1 conv without BN or bias] when stride or width change."""
    if plan.identity_shortcut:
        return nn.Identity()
    layers = OrderedDict()
    if plan.stride > 1:
        layers["pool"] = nn.AvgPool2d(plan.stride, plan.stride, padding=plan.shortcut_pool_padding)
    if plan.shortcut_conv:
        layers["conv"] = nn.Conv2d(plan.c_in, plan.c_out, 1, bias=False)
    return nn.Sequential(layers)


class MBConv(nn.Module):
    """[expand 1×1] → depthwise k×k → [SE] → project 1×1, plus the residual."""

    def __init__(self, plan: BlockPlan):
        super().__init__()
        self.expand = conv_bn(ConvPlan(plan.c_in, plan.mid)) if plan.expand else nn.Identity()
        self.dw = conv_bn(ConvPlan(plan.mid, plan.mid, plan.kernel, plan.stride, groups=plan.mid))
        self.se = SqueezeExcite(plan.mid, plan.se_mid) if plan.se_mid is not None else nn.Identity()
        self.project = conv_bn(ConvPlan(plan.mid, plan.c_out), act=False)
        self.shortcut = shortcut(plan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.se(self.dw(self.expand(x)))) + self.shortcut(x)


class StaticNet(nn.Module):
    """One AttentiveNAS sub-network as a standalone model; expects preprocessed input at its resolution.

    ``resolution`` overrides the genome's input size (it only matters for the shortcut pooling of
    odd-sized feature maps). Attributes ``arch`` and ``space`` record where the model came from.
    """

    def __init__(
        self,
        arch: ArchConfig | dict | str,
        space: str | SearchSpace = "attentivenas",
        num_classes: int | None = None,
        dropout: float = 0.2,
        resolution: int | None = None,
    ):
        super().__init__()
        self.arch = as_arch(arch)
        self.space = get_space(space)
        plan = self.space.plan(self.arch, num_classes, resolution)
        self.resolution = plan.resolution
        self.num_classes = plan.num_classes
        self.stem = conv_bn(plan.stem)
        self.stages = nn.ModuleList(
            nn.Sequential(*(MBConv(b) for b in plan.blocks if b.stage == s))
            for s in range(len(self.space.stages))
        )
        self.head = nn.Sequential(
            OrderedDict(
                expand=conv_bn(plan.head_expand),
                pool=nn.AdaptiveAvgPool2d(1),
                mix=nn.Conv2d(plan.feature_mix.c_in, plan.feature_mix.c_out, 1, bias=False),
                act=nn.SiLU(),
                flatten=nn.Flatten(1),
                dropout=nn.Dropout(dropout),
            )
        )
        self.classifier = nn.Linear(plan.feature_mix.c_out, plan.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        if self.classifier.weight.is_meta:  # built for shapes only (SuperNet.extract fills it)
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.classifier(self.head(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes`` outputs."""
        self.classifier = nn.Linear(self.classifier.in_features, num_classes)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)
        self.num_classes = num_classes
