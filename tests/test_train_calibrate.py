import pytest
import torch
from torch import nn
from train_helpers import TINY

from anas_zoo.supernet import SuperNet
from anas_zoo.train.calibrate import calibrate_bn


def test_calibration_is_the_cumulative_average_over_the_batches_and_restores_settings():
    model = nn.Sequential(nn.BatchNorm2d(3, momentum=0.0)).eval()
    model[0].running_mean.fill_(7.0)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(8, 3, 4, 4, generator=g) * (i + 1) + i for i in range(4)]
    used = calibrate_bn(model, iter(batches + [torch.full((8, 3, 4, 4), 1e6)]), num_batches=4)
    assert used == 4
    expected_mean = torch.stack([b.mean((0, 2, 3)) for b in batches]).mean(0)
    expected_var = torch.stack([b.transpose(0, 1).reshape(3, -1).var(1) for b in batches]).mean(0)
    assert torch.allclose(model[0].running_mean, expected_mean, atol=1e-5)
    assert torch.allclose(model[0].running_var, expected_var, atol=1e-4)
    assert model[0].momentum == 0.0 and not model.training


def test_supernet_calibration_fixes_the_active_subnets_eval_outputs():
    torch.manual_seed(0)
    model = SuperNet(TINY, 4)
    model.set_active(TINY.min_arch(), regularize=True)
    x = torch.randn(32, 3, 8, 8)
    calibrate_bn(model, [(x, None)], 1)
    assert model.regularize  # restored
    model.train()
    model.regularize = False
    batch_stats = model(x)
    model.eval()
    calibrated = model(x)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
    uncalibrated = model(x)
    # running stats == the batch's stats (up to the unbiased-variance factor of BN)
    assert (calibrated - batch_stats).abs().max() < 0.05 * (uncalibrated - batch_stats).abs().max()


def test_empty_or_bad_requests_fail():
    model = nn.Sequential(nn.BatchNorm2d(3))
    with pytest.raises(ValueError, match="no batches"):
        calibrate_bn(model, [], 2)
    with pytest.raises(ValueError, match="num_batches"):
        calibrate_bn(model, [torch.zeros(2, 3, 1, 1)], 0)
