"""benchmarks/sampler_cost.py: it times real MACs counting and real BestUp draws, and the block cache is exact."""

import json
import random

from bench_helpers import load_benchmark

from anas_zoo.flops import _block_costs, count
from anas_zoo.space import get_space


def test_the_benchmark_reports_counting_and_slot_costs(capsys):
    assert load_benchmark("sampler_cost").main(["--space", "cifar10", "--genomes", "40", "--slots", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["space"] == "cifar10" and result["slots"] == 5 and result["distinct_blocks"] > 0
    assert result["count_macs_ms_first_pass"] > 0 and result["count_macs_ms_warm"] > 0
    assert result["candidates_ms_per_slot"] > 0


def test_counts_with_a_warm_block_cache_equal_counts_from_a_cold_one():
    space = get_space("cifar10")
    archs = [space.sample(random.Random(seed)) for seed in range(30)]
    _block_costs.cache_clear()
    cold = [count(a, space) for a in archs]
    assert _block_costs.cache_info().hits > 0  # genomes share blocks, so the second count of one is served
    assert [count(a, space) for a in archs] == cold
