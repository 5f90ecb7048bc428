"""Dynamic (weight-slicing) layers of the supernet, one small class per op.

Each layer holds the weights of its largest configuration and runs a sub-configuration by taking
the first channels (prefix slicing) and the centre of the kernel. Parameter names match the static
layers in :mod:`anas_zoo.static`, so extraction is a per-tensor slice (see :func:`slice_to`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def slice_to(tensor: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """Prefix-slice the first two dims and centre-crop the others to ``shape`` (the extraction rule)."""
    if tensor.dim() != len(shape):
        raise ValueError(f"cannot slice a {tuple(tensor.shape)} tensor to {tuple(shape)}")
    index = []
    for dim, (have, want) in enumerate(zip(tensor.shape, shape)):
        if want > have:
            raise ValueError(f"cannot slice a {tuple(tensor.shape)} tensor to {tuple(shape)}")
        start = (have - want) // 2 if dim >= 2 else 0
        index.append(slice(start, start + want))
    return tensor[tuple(index)]


class DynamicConv2d(nn.Module):
    """Dense conv whose input channels follow the input and whose output channels are chosen per call."""

    def __init__(self, max_in: int, max_out: int, kernel: int = 1, stride: int = 1, bias: bool = False):
        super().__init__()
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(max_out, max_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(max_out)) if bias else None
        nn.init.kaiming_normal_(self.weight, mode="fan_out")

    def forward(self, x: torch.Tensor, out_channels: int, kernel: int | None = None) -> torch.Tensor:
        kernel = kernel or self.weight.shape[-1]
        weight = slice_to(self.weight, (out_channels, x.shape[1], kernel, kernel))
        bias = None if self.bias is None else self.bias[:out_channels]
        if kernel == 1 and x.shape[-2] * x.shape[-1] == 1:
            # A 1x1 conv of a 1x1 map is a matrix product: on CPU a GEMM trains ~2x faster than oneDNN's conv
            # (benchmarks/small_map_ops.py).
            return F.linear(x.flatten(1), weight.flatten(1), bias)[:, :, None, None]
        return F.conv2d(x, weight, bias, self.stride, kernel // 2)


class DynamicDepthwiseConv2d(nn.Module):
    """Depthwise conv: channels follow the input, kernel is the centre crop of the largest one."""

    def __init__(self, max_channels: int, max_kernel: int, stride: int = 1):
        super().__init__()
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(max_channels, 1, max_kernel, max_kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")

    def forward(self, x: torch.Tensor, kernel: int) -> torch.Tensor:
        channels = x.shape[1]
        # Taps farther than size-1 from the centre only ever meet zero padding: on small maps a 5x5 kernel
        # computes exactly what its central 3x3 (2x2 map) or 1x1 (1x1 map) does, and trains up to ~40x faster
        # (benchmarks/small_map_ops.py).
        kernel = min(kernel, 2 * max(x.shape[-2:]) - 1)
        return depthwise_conv(x, slice_to(self.weight, (channels, 1, kernel, kernel)), self.stride)


def depthwise_conv(x: torch.Tensor, weight: torch.Tensor, stride: int) -> torch.Tensor:
    """``F.conv2d`` of a depthwise ("same" padding) conv, through :class:`WideKernelDepthwise` where it trains faster."""
    kernel = weight.shape[-1]
    if stride == 1 and kernel > min(x.shape[-2:]):
        return WideKernelDepthwise.apply(x, weight)
    return F.conv2d(x, weight, None, stride, kernel // 2, 1, x.shape[1])


class WideKernelDepthwise(torch.autograd.Function):
    """Stride-1 depthwise conv whose kernel is wider than the map, with a fast weight gradient.

    oneDNN's weight-gradient kernel for such a conv (5x5 on a 4x4 map, 3x3 on 2x2) runs 20-80x slower
    than its forward, which made it the largest item of a CIFAR-10 training step. The same sums computed
    on the explicitly zero-padded input take oneDNN's fast path (benchmarks/small_map_ops.py). Output and
    input gradient are the plain convolution's own calls, so the forward is bit-for-bit unchanged.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return F.conv2d(x, weight, None, 1, weight.shape[-1] // 2, 1, x.shape[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, weight = ctx.saved_tensors
        pad, groups = weight.shape[-1] // 2, x.shape[1]
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        grad = grad.contiguous(memory_format=layout)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [1, 1], [pad, pad], [1, 1], False, [0, 0], groups, [True, False, False]
            )[0]
        if ctx.needs_input_grad[1]:
            padded = F.pad(x, (pad, pad, pad, pad)).contiguous(memory_format=layout)
            grad_w = torch.ops.aten.convolution_backward(
                grad, padded, weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0], groups, [False, True, False]
            )[1]
        return grad_x, grad_w


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the first C channels, in train *and* eval mode (sliced running statistics).

    ``momentum=None`` gives a cumulative average, which is what BN recalibration uses.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        factor = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch_stats = self.training or self.running_mean is None
        return F.batch_norm(
            x,
            None if self.running_mean is None else self.running_mean[:channels],
            None if self.running_var is None else self.running_var[:channels],
            self.weight[:channels],
            self.bias[:channels],
            use_batch_stats,
            factor,
            self.eps,
        )


class DynamicConvBNAct(nn.Module):
    """conv → BN → optional SiLU, with the output width and kernel chosen per call."""

    def __init__(self, max_in: int, max_out: int, kernel: int = 1, stride: int = 1, act: bool = True):
        super().__init__()
        self.conv = DynamicConv2d(max_in, max_out, kernel, stride)
        self.bn = DynamicBatchNorm2d(max_out)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor, out_channels: int, kernel: int | None = None) -> torch.Tensor:
        return self.act(self.bn(self.conv(x, out_channels, kernel)))


class DynamicDepthwiseBNAct(nn.Module):
    """depthwise conv → BN → SiLU."""

    def __init__(self, max_channels: int, max_kernel: int, stride: int):
        super().__init__()
        self.conv = DynamicDepthwiseConv2d(max_channels, max_kernel, stride)
        self.bn = DynamicBatchNorm2d(max_channels)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, kernel: int) -> torch.Tensor:
        return self.act(self.bn(self.conv(x, kernel)))


class DynamicSqueezeExcite(nn.Module):
    """Squeeze-excite: global mean → 1×1 conv → ReLU → 1×1 conv → hard-sigmoid gate."""

    def __init__(self, max_channels: int, max_se: int):
        super().__init__()
        self.reduce = DynamicConv2d(max_channels, max_se, bias=True)
        self.expand = DynamicConv2d(max_se, max_channels, bias=True)

    def forward(self, x: torch.Tensor, se_channels: int) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = F.relu(self.reduce(s, se_channels))
        return x * F.hardsigmoid(self.expand(s, x.shape[1]))


class DynamicShortcut(nn.Module):
    """Residual path of a block whose input and output widths can differ: [avg-pool] → 1×1 conv."""

    def __init__(self, max_in: int, max_out: int, stride: int, with_conv: bool = True):
        super().__init__()
        self.stride = stride
        if with_conv:
            self.conv = DynamicConv2d(max_in, max_out)

    def forward(self, x: torch.Tensor, out_channels: int) -> torch.Tensor:
        if self.stride > 1:
            x = F.avg_pool2d(x, self.stride, self.stride, padding=x.shape[-1] % 2)
        if x.shape[1] != out_channels:
            x = self.conv(x, out_channels)
        return x


class DynamicLinear(nn.Module):
    """Linear layer whose input features follow the input."""

    def __init__(self, max_in: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, max_in))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight[:, : x.shape[1]], self.bias)
