"""CPU training settings: freed memory stays mapped (no page faults the second time), oneDNN cache size."""

import json
import subprocess
import sys

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
