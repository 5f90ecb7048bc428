import pytest
import torch
import torch.nn.functional as F

from anas_zoo.ops import DynamicConv2d, DynamicDepthwiseConv2d, slice_to


def _grads(out, *tensors):
    return torch.autograd.grad(out, tensors, torch.randn_like(out, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("size", [1, 2, 3, 4])
@pytest.mark.parametrize("kernel", [3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_on_small_maps_equals_the_full_kernel(size, kernel, stride):
    # The layer crops kernels larger than 2*size-1 (taps that only meet padding): output and both
    # gradients must be those of the uncropped convolution.
    torch.manual_seed(0)
    layer = DynamicDepthwiseConv2d(8, 7, stride)
    x = torch.randn(4, 6, size, size).contiguous(memory_format=torch.channels_last).requires_grad_()
    full = slice_to(layer.weight, (6, 1, kernel, kernel))
    expected = F.conv2d(x, full, None, stride, kernel // 2, 1, 6)
    got = layer(x, kernel)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected)
    for g, e in zip(_grads(got, x, layer.weight), _grads(expected, x, layer.weight)):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("size", [1, 3])
def test_pointwise_conv_equals_conv2d_on_any_map(bias, size):
    # 1x1 maps take the matrix-product path, others oneDNN's conv: both must match conv2d exactly.
    torch.manual_seed(0)
    layer = DynamicConv2d(12, 10, bias=bias)
    x = torch.randn(5, 9, size, size).contiguous(memory_format=torch.channels_last).requires_grad_()
    weight = layer.weight[:7, :9]
    expected = F.conv2d(x, weight, None if layer.bias is None else layer.bias[:7])
    got = layer(x, 7)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected)
    params = [x, layer.weight] + ([layer.bias] if bias else [])
    for g, e in zip(_grads(got, *params), _grads(expected, *params)):
        torch.testing.assert_close(g, e)
