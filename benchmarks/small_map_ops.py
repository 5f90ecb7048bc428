"""Forward+backward time of the supernet's two small-map rewrites against the plain convolution they replace.

    python benchmarks/small_map_ops.py [--threads 2] [--batch 128] [--json]

Depthwise convs whose kernel is wider than the feature map run with the kernel cropped to the taps that
can meet the map, and (stride 1) with their weight gradient computed on the zero-padded input
(``DynamicDepthwiseConv2d``); 1x1 convs of 1x1 maps run as a matrix product (``DynamicConv2d``). Shapes
are those of the ImageNet space's late stages at 32 px input and of the cifar10 space's 4x4 stages,
channels_last.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

from anas_zoo.ops import DynamicConv2d, DynamicDepthwiseConv2d
from anas_zoo.timing import collect_samples, timed

DEPTHWISE = [(1296, 1, 5), (1344, 1, 5), (768, 2, 5), (432, 2, 5), (1056, 4, 5), (960, 4, 5), (560, 4, 5)]  # C, map, k
POINTWISE = [(1296, 328), (328, 1296), (1344, 1984)]  # in, out channels on a 1x1 map


def fwd_bwd_ms(fn, x: torch.Tensor, reps: int = 20) -> float:
    """Median milliseconds of forward + backward of ``fn(x)``."""
    times = collect_samples(timed(lambda: fn(x).sum().backward()), warmup=3, min_iters=reps, max_iters=reps)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for channels, size, kernel in DEPTHWISE:
        layer = DynamicDepthwiseConv2d(channels, kernel, 1)
        x = torch.randn(args.batch, channels, size, size).contiguous(memory_format=torch.channels_last)
        x.requires_grad_()
        plain = fwd_bwd_ms(lambda t, w=layer.weight, k=kernel, c=channels: F.conv2d(t, w, None, 1, k // 2, 1, c), x)
        rows.append({"op": f"depthwise {kernel}x{kernel}", "shape": [args.batch, channels, size, size],
                     "conv2d_ms": plain, "supernet_ms": fwd_bwd_ms(lambda t, op=layer, k=kernel: op(t, k), x)})
    for c_in, c_out in POINTWISE:
        layer = DynamicConv2d(c_in, c_out)
        x = torch.randn(args.batch, c_in, 1, 1).contiguous(memory_format=torch.channels_last).requires_grad_()
        rows.append({"op": f"1x1 conv -> {c_out}", "shape": [args.batch, c_in, 1, 1],
                     "conv2d_ms": fwd_bwd_ms(lambda t, w=layer.weight: F.conv2d(t, w), x),
                     "supernet_ms": fwd_bwd_ms(lambda t, op=layer, c=c_out: op(t, c), x)})
    for row in rows:
        row["speedup"] = round(row["conv2d_ms"] / row["supernet_ms"], 2)
        row["conv2d_ms"], row["supernet_ms"] = round(row["conv2d_ms"], 3), round(row["supernet_ms"], 3)
    if args.json:
        print(json.dumps({"threads": args.threads, "torch": torch.__version__, "rows": rows}))
        return
    print(f"forward+backward, median of 20, {args.threads} threads, torch {torch.__version__}")
    for r in rows:
        print(f"{r['op']:22s} {str(r['shape']):22s} conv2d {r['conv2d_ms']:8.3f} ms   supernet {r['supernet_ms']:8.3f} ms"
              f"   {r['speedup']:5.2f}x")


if __name__ == "__main__":
    main()
