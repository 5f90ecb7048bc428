import pytest
import torch
import torch.nn.functional as F

from anas_zoo.ops import DynamicConv2d, DynamicDepthwiseConv2d, slice_to


def _grads(out, *tensors):
    return torch.autograd.grad(out, tensors, torch.randn_like(out, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("size", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("kernel", [3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format], ids=["nhwc", "nchw"])
def test_depthwise_on_small_maps_equals_the_full_kernel(size, kernel, stride, layout):
    # The layer crops kernels larger than 2*size-1 (taps that only meet padding), and computes the weight
    # gradient of stride-1 kernels wider than the map on the padded input: output and both gradients must
    # be those of the plain, uncropped convolution.
    torch.manual_seed(0)
    layer = DynamicDepthwiseConv2d(8, 7, stride)
    x = torch.randn(4, 6, size, size).contiguous(memory_format=layout).requires_grad_()
    full = slice_to(layer.weight, (6, 1, kernel, kernel))
    expected = F.conv2d(x, full, None, stride, kernel // 2, 1, 6)
    got = layer(x, kernel)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected)
    for g, e in zip(_grads(got, x, layer.weight), _grads(expected, x, layer.weight)):
        torch.testing.assert_close(g, e)


def test_wide_kernel_depthwise_forward_is_the_plain_convolution_bit_for_bit():
    # Only the weight gradient takes another route: the supernet's outputs (and extraction parity) stay exact.
    torch.manual_seed(0)
    layer = DynamicDepthwiseConv2d(16, 5, 1)
    x = torch.randn(8, 16, 4, 4).contiguous(memory_format=torch.channels_last)
    assert torch.equal(layer(x, 5), F.conv2d(x, layer.weight, None, 1, 2, 1, 16))


def test_wide_kernel_depthwise_weight_gradient_alone():
    # An input that needs no gradient (a frozen stem, a detached feature) gets none.
    layer = DynamicDepthwiseConv2d(6, 5, 1)
    x = torch.randn(2, 6, 3, 3)
    layer(x, 5).sum().backward()
    assert x.grad is None and layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


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
