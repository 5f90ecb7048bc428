"""CPU training settings: freed memory stays mapped (no page faults the second time), oneDNN cache size, the fast
depthwise weight gradient for fine-tuned static networks."""

import copy
import json
import subprocess
import sys

import torch

from anas_zoo.ops import WideKernelDepthwise
from anas_zoo.space import get_space
from anas_zoo.static import StaticNet
from anas_zoo.train import runtime

_PROBE = """
import json, resource, torch
from anas_zoo.train.runtime import keep_heap_mapped
applied = keep_heap_mapped()
def faults_of_one_buffer():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buffer = torch.ones(16 << 20)  # 64 MiB (above glibc's largest mmap threshold), every page touched
    del buffer
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
first = faults_of_one_buffer()
later = sorted(faults_of_one_buffer() for _ in range(9))
print(json.dumps({"applied": applied, "first": first, "steady": later[0]}))
"""


def _probe() -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def test_kept_heap_serves_the_next_step_without_page_faults():
    # glibc's own dynamic mmap threshold makes the untuned pattern vary between machines (every call
    # faults on some, most calls reuse on others), so only the tuned behaviour is asserted. Tuned, a few calls
    # after the first may still fault before the heap settles (seen: up to 5 of 10 on a 2-core Xeon KVM), so the
    # steady state is the best of nine later calls: untuned, a 64 MiB buffer is mmapped and faults on every call.
    tuned = _probe()
    pages = (64 << 20) // 4096
    assert tuned["applied"] is True and tuned["first"] >= pages // 2 and tuned["steady"] < pages // 20


def test_onednn_cache_is_enlarged_unless_the_user_chose_a_size(monkeypatch):
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    assert runtime.tune_cpu_training()["onednn_primitive_cache_capacity"] == runtime.ONEDNN_CACHE_CAPACITY
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")
    assert runtime.tune_cpu_training()["onednn_primitive_cache_capacity"] == 64


def test_routed_depthwise_layers_train_a_static_network_exactly_as_before(monkeypatch):
    # The cifar10 space's largest network at 32 px: 5x5 depthwise kernels on 4x4 maps take the fast path.
    torch.manual_seed(0)
    space = get_space("cifar10")
    plain = StaticNet(space.max_arch(), space, dropout=0.0).train().to(memory_format=torch.channels_last)
    original = copy.deepcopy(plain)
    depthwise = [m for m in plain.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert runtime.use_fast_depthwise_gradients(original) == len(depthwise) > 0
    routed = copy.deepcopy(original)  # a copy of a routed model runs its own weights, not the original's
    with torch.no_grad():
        for p in original.parameters():
            p.zero_()
    wide = []
    monkeypatch.setattr(WideKernelDepthwise, "apply", lambda *a, f=WideKernelDepthwise.apply: wide.append(1) or f(*a))
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    out, expected = routed(x), plain(x)
    assert wide and type(routed) is StaticNet and routed.state_dict().keys() == plain.state_dict().keys()
    assert torch.equal(out, expected)
    out.square().sum().backward()
    expected.square().sum().backward()
    for (name, p), q in zip(routed.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5, msg=name)
