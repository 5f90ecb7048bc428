import random
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from anas_zoo.paper_models import PAPER_MODELS
from anas_zoo.space import ATTENTIVENAS, ArchConfig
from anas_zoo.static import MBConv, SqueezeExcite, StaticNet
from anas_zoo.supernet import SuperNet
from anas_zoo.zoo import get_entry

SPACE = ATTENTIVENAS
PAPER = [get_entry(m.name).arch for m in PAPER_MODELS]


def max_diff(supernet, arch, batch, resolution):
    supernet.set_active(arch)
    static = supernet.extract(arch, resolution=resolution)
    x = torch.randn(batch, 3, resolution, resolution)
    with torch.no_grad():
        return (supernet(x) - static(x)).abs().max().item()


@pytest.mark.parametrize("batch, own_resolution", [(1, True), (3, False)])
@pytest.mark.parametrize("arch", [SPACE.min_arch(), SPACE.max_arch(), *PAPER],
                         ids=["min", "max", *(m.name for m in PAPER_MODELS)])
def test_extracted_model_equals_supernet(supernet, arch, batch, own_resolution):
    # Batch 1 at the genome's own resolution; batch 3 at 64 px to keep the suite fast.
    assert max_diff(supernet, arch, batch, arch.resolution if own_resolution else 64) <= 1e-5


@settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), resolution=st.sampled_from([32, 40, 64, 72]), batch=st.sampled_from([1, 3]))
def test_extracted_model_equals_supernet_for_random_genomes(supernet, seed, resolution, batch):
    # 40 and 72 give odd feature maps before strided stages, exercising the shortcut pool padding; 32 ends
    # on 1x1 maps, where depthwise kernels are cropped and 1x1 convs are matrix products.
    arch = SPACE.sample(random.Random(seed))
    assert max_diff(supernet, arch, batch, resolution) <= 1e-5


def test_extraction_copies_weights_and_buffers(supernet):
    arch = SPACE.min_arch()
    static = supernet.extract(arch)
    sw = supernet.stages[2][0].dw.conv.weight
    stw = static.stages[2][0].dw[0].weight
    assert stw.shape == (96, 1, 3, 3)
    assert torch.equal(stw, sw[:96, :, 1:4, 1:4])
    assert stw.data_ptr() != sw.data_ptr()
    assert torch.equal(static.stem.bn.running_var, supernet.stem.bn.running_var[:16])
    assert not static.training


def test_static_model_is_plain_modules_without_shape_branches():
    model = StaticNet(PAPER[0]).eval()
    allowed = (nn.Conv2d, nn.BatchNorm2d, nn.SiLU, nn.Hardsigmoid, nn.ReLU, nn.Linear, nn.AvgPool2d,
               nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Identity, nn.Sequential, nn.ModuleList,
               MBConv, SqueezeExcite, StaticNet)
    assert all(isinstance(m, allowed) for m in model.modules())
    x = torch.randn(2, 3, 64, 64)
    traced = torch.jit.trace(model, x)
    scripted = torch.jit.script(model)
    fx = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        expected = model(x)
        for other in (traced, scripted, fx):
            torch.testing.assert_close(other(x), expected)
        assert model(x[:1]).shape == (1, 1000)  # flatten(1) keeps the batch dim at batch 1


def test_identity_shortcuts_hold_no_weights():
    model = StaticNet(SPACE.max_arch())
    for stage in model.stages:
        for block in list(stage)[1:]:
            assert isinstance(block.shortcut, nn.Identity)
    assert not any("shortcut" in k for k in model.state_dict() if ".stages.0.1" in k)
    # First block of mb5 (stride 1, 72 -> 128) has a conv but no pool.
    assert [type(m).__name__ for m in model.stages[4][0].shortcut] == ["Conv2d"]


def test_static_model_from_genome_loads_state_dict_strictly(supernet):
    arch = PAPER[3]
    extracted = supernet.extract(arch)
    fresh = StaticNet(arch)
    fresh.load_state_dict(extracted.state_dict(), strict=True)
    state = extracted.state_dict()
    state.pop("classifier.bias")
    with pytest.raises(RuntimeError, match="classifier.bias"):
        fresh.load_state_dict(state, strict=True)


def test_supernet_trains_any_subnet_and_uses_sliced_stats_in_eval():
    torch.manual_seed(0)
    net = SuperNet(SPACE)
    arch = SPACE.min_arch()
    net.set_active(arch)
    net.train()
    x = torch.randn(4, 3, 64, 64)
    loss = net(x).logsumexp(1).mean()
    loss.backward()
    assert net.stem.conv.weight.grad[:16].abs().sum() > 0
    assert net.stem.conv.weight.grad[16:].abs().sum() == 0  # channels outside the subnet get no gradient
    assert net.stem.bn.running_mean[:16].abs().sum() > 0  # sliced stats were updated in training
    assert net.stem.bn.running_mean[16:].abs().sum() == 0
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))


def test_regularization_only_when_asked_and_training():
    torch.manual_seed(0)
    net = SuperNet(SPACE).train()
    x = torch.randn(2, 3, 64, 64)
    net.set_max(regularize=False)
    with torch.no_grad():
        plain = [net.eval()(x), net.eval()(x)]
        net.train().set_max(regularize=True)
        torch.manual_seed(1)
        a = net(x)
        torch.manual_seed(2)
        b = net(x)
    assert torch.equal(*plain)
    assert not torch.equal(a, b)  # dropout and drop-connect are random


def test_channels_last_and_autocast(supernet):
    arch = PAPER[0]
    supernet.set_active(arch)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = supernet(x)
        cl_net = supernet.to(memory_format=torch.channels_last)
        out = cl_net(x.to(memory_format=torch.channels_last))
        supernet.to(memory_format=torch.contiguous_format)
        torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = supernet(x)
    assert low.dtype == torch.bfloat16
    assert torch.isfinite(low).all()
    assert (low.float().argmax(1) == ref.argmax(1)).float().mean() >= 0.5


def test_extract_other_num_classes():
    net = SuperNet(SPACE, num_classes=10)
    model = net.extract(SPACE.min_arch())
    assert model.classifier.out_features == 10
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_supernet_rejects_inputs_without_three_channels_like_the_static_model():
    net = SuperNet(SPACE).eval()
    static = net.extract(SPACE.min_arch()).eval()
    for shape in ((1, 1, 64, 64), (1, 4, 64, 64)):
        with pytest.raises(RuntimeError, match="3 channels"):
            static(torch.randn(shape))
        with pytest.raises(ValueError, match=re.escape(f"3-channel images (N, 3, H, W), got shape {shape}")):
            net(torch.randn(shape))
    assert net(torch.randn(1, 3, 64, 64)).shape == static(torch.randn(1, 3, 64, 64)).shape


def test_unknown_genome_rejected_by_supernet():
    net = SuperNet(SPACE)
    with pytest.raises(ValueError, match=r"width\[1\]=40"):
        net.set_active(ArchConfig(192, (16, 40, 24, 32, 64, 112, 192, 216, 1792), (1,) + (3,) * 5 + (1,),
                                  (3,) * 7, (1, 4, 4, 4, 4, 6, 6)))


def test_zero_init_residual_starts_every_block_as_its_shortcut():
    torch.manual_seed(0)
    net = SuperNet("cifar10", dropout=0.0, drop_connect=0.0)
    net.zero_init_residual()
    arch = net.space.max_arch()
    net.set_active(arch)
    plans = net.space.plan(arch, net.num_classes).blocks
    blocks = [block for stage in net.stages for block in stage]
    seen = []
    for block, plan in zip(blocks, plans):
        block.register_forward_hook(lambda m, inputs, out, plan=plan: seen.append((m, plan, inputs[0], out)))
    net.train()
    net(torch.randn(4, 3, 32, 32))
    assert len(seen) == len(plans) > 0
    for block, plan, x, out in seen:
        expected = x if plan.identity_shortcut else block.shortcut(x, plan.c_out)
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
