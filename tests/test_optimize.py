import torch
from torch import nn

import anas_zoo
from anas_zoo.export.fold import optimize_for_inference


def test_optimized_copy_has_no_batchnorm_is_channels_last_and_matches(supernet):
    arch = anas_zoo.get_space("attentivenas").min_arch()
    model = supernet.extract(arch, resolution=64)  # random BN statistics make folding non-trivial
    fast = optimize_for_inference(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    assert fast.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fast(x.to(memory_format=torch.channels_last)), model(x), rtol=1e-4, atol=1e-4)
