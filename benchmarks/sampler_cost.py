"""Python-side cost of attentive sampling: MACs counting and drawing one BestUp slot's candidates.

    python benchmarks/sampler_cost.py [--space cifar10] [--genomes 3000] [--slots 600] [--json]

Attentive sampling draws uniform genomes until ``k`` fall in the target MACs bucket, counting the MACs
of every draw (tens to thousands per slot: the rarest buckets take the most), so this runs on every
sandwich step. Prints milliseconds per ``count_macs`` (a first pass, then one with the block-cost
cache warm) and per slot of ``Sampler.candidates``.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from anas_zoo.flops import _block_costs, count_macs
from anas_zoo.space import get_space
from anas_zoo.train.sampler import MacsPrior, Sampler


def _ms_each(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - start) / len(items) * 1e3


def measure(space_name: str, genomes: int, slots: int, k: int = 3) -> dict:
    space = get_space(space_name)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(genomes)]
    _block_costs.cache_clear()
    first = _ms_each(lambda a: count_macs(a, space), archs)
    warm = _ms_each(lambda a: count_macs(a, space), archs)
    sampler = Sampler(space, "bestup", k, MacsPrior(space))
    slot = _ms_each(lambda _: sampler.candidates(rng), range(slots))
    return {"space": space_name, "count_macs_ms_first_pass": round(first, 4), "count_macs_ms_warm": round(warm, 4),
            "candidates_ms_per_slot": round(slot, 2), "k": k, "slots": slots,
            "distinct_blocks": _block_costs.cache_info().currsize}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="cifar10")
    parser.add_argument("--genomes", type=int, default=3000, help="random genomes whose MACs are counted")
    parser.add_argument("--slots", type=int, default=600, help="BestUp-3 slots drawn")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.space, args.genomes, args.slots)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.space}: count_macs {result['count_macs_ms_first_pass']:.3f} ms (first pass), "
              f"{result['count_macs_ms_warm']:.3f} ms (warm); BestUp-3 candidates "
              f"{result['candidates_ms_per_slot']:.1f} ms a slot over {args.slots} slots; "
              f"{result['distinct_blocks']} distinct blocks cached")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
