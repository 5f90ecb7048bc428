import random

import pytest

from anas_zoo.flops import count, fvcore_macs, layer_costs
from anas_zoo.paper_models import PAPER_MODELS
from anas_zoo.space import ATTENTIVENAS
from anas_zoo.static import StaticNet
from anas_zoo.zoo import get_entry

SPACE = ATTENTIVENAS
PUBLISHED_MFLOPS = {"attentivenas_a0": 203, "attentivenas_a1": 279, "attentivenas_a2": 317, "attentivenas_a3": 357,
                    "attentivenas_a4": 444, "attentivenas_a5": 491, "attentivenas_a6": 709, "alphanet_a5": 491}


def test_golden_smallest_and_largest():
    assert count(SPACE.min_arch())[0] / 1e6 == pytest.approx(203.39, abs=0.05)
    assert count(SPACE.max_arch())[0] / 1e6 == pytest.approx(1939.34, abs=0.05)


@pytest.mark.parametrize("name", [m.name for m in PAPER_MODELS])
def test_paper_models_round_to_published_mflops(name):
    assert round(count(get_entry(name).arch)[0] / 1e6) == PUBLISHED_MFLOPS[name]


def _archs():
    rng = random.Random(7)
    return [SPACE.min_arch(), get_entry("attentivenas_a3").arch, *(SPACE.sample(rng) for _ in range(2))]


@pytest.mark.parametrize("arch", _archs(), ids=["min", "a3", "random0", "random1"])
def test_analytic_counter_agrees_with_fvcore_and_the_model(arch):
    # fvcore traces at the real resolution; the count must agree exactly on conv + linear MACs.
    model = StaticNet(arch)
    macs, params = count(arch)
    assert fvcore_macs(model, arch.resolution) == macs
    assert sum(p.numel() for p in model.parameters()) == params


def test_costs_cover_se_and_shortcut_layers():
    names = [name for name, _, _ in layer_costs(SPACE.plan(SPACE.max_arch()))]
    assert "stages.2.0.se" in names and "stages.2.0.shortcut" in names
    assert "stages.0.1.shortcut" not in names  # identity shortcut: no conv, no MACs


def test_resolution_override_scales_spatial_macs():
    arch = SPACE.min_arch()
    small = count(arch, resolution=96)[0]
    assert small < count(arch)[0] / 3
