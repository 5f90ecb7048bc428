"""The weight-sharing supernet: every sub-network of a search space in one set of weights."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import nn

from anas_zoo.ops import (
    DynamicConv2d,
    DynamicConvBNAct,
    DynamicDepthwiseBNAct,
    DynamicLinear,
    DynamicShortcut,
    DynamicSqueezeExcite,
    slice_to,
)
from anas_zoo.space import ArchConfig, BlockPlan, SearchSpace, get_space
from anas_zoo.static import StaticNet


def drop_path(x: torch.Tensor, rate: float) -> torch.Tensor:
    """Per-sample stochastic depth: zero whole samples of a residual branch, rescale the rest."""
    keep = 1.0 - rate
    mask = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask.div_(keep)  # one pass over the activation, not two


class DynamicMBConv(nn.Module):
    """MBConv block holding its largest shapes; runs whatever a :class:`BlockPlan` asks for."""

    def __init__(self, largest: BlockPlan, can_expand: bool, has_se: bool, needs_shortcut_conv: bool):
        super().__init__()
        if can_expand:
            self.expand = DynamicConvBNAct(largest.c_in, largest.mid)
        self.dw = DynamicDepthwiseBNAct(largest.mid, largest.kernel, largest.stride)
        if has_se:
            self.se = DynamicSqueezeExcite(largest.mid, largest.se_mid)
        self.project = DynamicConvBNAct(largest.mid, largest.c_out, act=False)
        if needs_shortcut_conv or largest.stride > 1:
            self.shortcut = DynamicShortcut(
                largest.c_in, largest.c_out, largest.stride, with_conv=needs_shortcut_conv
            )

    def forward(self, x: torch.Tensor, plan: BlockPlan, drop_rate: float = 0.0) -> torch.Tensor:
        h = self.expand(x, plan.mid) if plan.expand else x
        h = self.dw(h, plan.kernel)
        if plan.se_mid is not None:
            h = self.se(h, plan.se_mid)
        h = self.project(h, plan.c_out)
        if drop_rate > 0:
            h = drop_path(h, drop_rate)
        return h + (x if plan.identity_shortcut else self.shortcut(x, plan.c_out))


class SuperNet(nn.Module):
    """All sub-networks of ``space``; :meth:`set_active` picks one, :meth:`extract` makes it standalone.

    Runs in train and eval mode alike (BN uses sliced running statistics), with channels_last and
    under autocast. ``regularize=True`` in :meth:`set_active` turns on dropout and drop-connect, which
    the sandwich rule uses for the largest sub-network only.
    """

    def __init__(
        self,
        space: str | SearchSpace = "attentivenas",
        num_classes: int | None = None,
        dropout: float = 0.2,
        drop_connect: float = 0.2,
    ):
        super().__init__()
        self.space = get_space(space)
        self.num_classes = self.space.num_classes if num_classes is None else num_classes
        self.dropout = dropout
        self.drop_connect = drop_connect
        largest = self.space.plan(self.space.max_arch(), self.num_classes)

        self.stem = DynamicConvBNAct(3, largest.stem.c_out, kernel=3, stride=self.space.stem_stride)
        stage_inputs = [self.space.stem_widths, *(s.widths for s in self.space.stages[:-1])]
        self.stages = nn.ModuleList()
        for spec, inputs in zip(self.space.stages, stage_inputs):
            blocks = [b for b in largest.blocks if b.stage == len(self.stages)]
            self.stages.append(
                nn.ModuleList(
                    DynamicMBConv(
                        block,
                        can_expand=any(e != 1 for e in spec.expands),
                        has_se=spec.se,
                        needs_shortcut_conv=block.index == 0 and len({*inputs, *spec.widths}) > 1,
                    )
                    for block in blocks
                )
            )
        self.head = nn.ModuleDict(
            {
                "expand": DynamicConvBNAct(largest.head_expand.c_in, largest.head_expand.c_out),
                "mix": DynamicConv2d(largest.feature_mix.c_in, largest.feature_mix.c_out),
            }
        )
        self.classifier = DynamicLinear(largest.feature_mix.c_out, self.num_classes)
        self.regularize = False
        self.set_active(self.space.max_arch())

    def zero_init_residual(self) -> None:
        """Start every MBConv block as its shortcut (scale 0 in its last BN), as BigNAS trains its supernets:
        a deep sub-network then begins as a shallow one, which speeds up early training."""
        for stage in self.stages:
            for block in stage:
                nn.init.zeros_(block.project.bn.weight)

    # ----- choosing a sub-network --------------------------------------------------------------
    def set_active(self, arch: ArchConfig, regularize: bool = False) -> None:
        """Make ``arch`` the sub-network that :meth:`forward` runs."""
        self.active_arch = arch
        self._plan = self.space.plan(arch, self.num_classes)
        self.regularize = regularize

    def set_max(self, regularize: bool = False) -> ArchConfig:
        self.set_active(self.space.max_arch(), regularize)
        return self.active_arch

    def set_min(self) -> ArchConfig:
        self.set_active(self.space.min_arch())
        return self.active_arch

    def sample_active(self, rng: random.Random) -> ArchConfig:
        self.set_active(self.space.sample(rng))
        return self.active_arch

    # ----- running it --------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = self.stem.conv.weight.shape[1]
        if x.dim() != 4 or x.shape[1] != channels:
            # the dynamic stem slices its weight to the input, so a 1-channel batch would otherwise run silently
            raise ValueError(f"expected a batch of {channels}-channel images (N, {channels}, H, W), got shape "
                             f"{tuple(x.shape)}")
        plan = self._plan
        regularize = self.regularize and self.training
        x = self.stem(x, plan.stem.c_out)
        last_stages = len(self.stages) - 2
        for k, block in enumerate(plan.blocks):
            rate = 0.0
            if regularize and block.stage >= last_stages and block.identity_shortcut:
                rate = self.drop_connect * k / len(plan.blocks)
            x = self.stages[block.stage][block.index](x, block, rate)
        x = self.head["expand"](x, plan.head_expand.c_out)
        x = F.silu(self.head["mix"](x.mean((2, 3), keepdim=True), plan.feature_mix.c_out))
        x = torch.flatten(x, 1)
        if regularize and self.dropout > 0:
            x = F.dropout(x, self.dropout, training=True)
        return self.classifier(x)

    # ----- extraction --------------------------------------------------------------------------
    def extract(self, arch: ArchConfig | None = None, resolution: int | None = None) -> StaticNet:
        """A standalone :class:`StaticNet` for ``arch`` (default: the active one), in eval mode,
        with the sliced weights and BN buffers copied (no storage shared with the supernet).
        ``resolution`` builds it for another input size than the genome's (see StaticNet)."""
        arch = arch or self.active_arch
        with torch.device("meta"):  # shapes only: every tensor is replaced by a slice below
            static = StaticNet(arch, self.space, self.num_classes, dropout=self.dropout, resolution=resolution)
        weights = self.state_dict()
        static.load_state_dict(
            {k: slice_to(weights[k], v.shape).clone() for k, v in static.state_dict().items()},
            strict=True,
            assign=True,
        )
        return static.eval()
