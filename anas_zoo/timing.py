"""The one timing loop behind every latency figure: warm-up calls, then timed calls, every sample kept.

A *call* runs one inference and returns its own latency in ms: :func:`timed` makes one from any function,
timed on the host clock; a runtime that must time device work (CUDA events) brings its own. The latency
harness, the export report, the latency-model builder, the demo and the benchmark scripts all collect
their samples with :func:`collect_samples`, or with :func:`interleaved_samples` when several calls are
compared side by side and should share the machine's changing load alike.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

Call = Callable[[], float]


def timed(fn: Callable[[], object]) -> Call:
    """A call that runs ``fn()`` once and returns its wall time in ms (``perf_counter_ns``)."""

    def call() -> float:
        start = time.perf_counter_ns()
        fn()
        return (time.perf_counter_ns() - start) / 1e6

    return call


def collect_samples(call: Call, *, warmup: int, min_iters: int, min_seconds: float = 0.0, max_iters: int = 10_000,
                    progress: Callable[[int], None] | None = None) -> list[float]:
    """Run ``warmup`` untimed calls, then time calls until both ``min_iters`` and ``min_seconds`` are reached
    (never more than ``max_iters``); returns every timed call's latency in ms."""
    if min_iters < 1 or warmup < 0 or min_seconds < 0:
        raise ValueError(f"need min_iters >= 1, warmup >= 0, min_seconds >= 0; got {min_iters}, {warmup}, "
                         f"{min_seconds}")
    for _ in range(warmup):
        call()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < max_iters and (len(samples) < min_iters or time.perf_counter() - start < min_seconds):
        samples.append(call())
        if progress:
            progress(len(samples))
    return samples


def interleaved_samples(calls: Sequence[Call], *, rounds: int, iters: int, shuffle_seed: int | None = None,
                        progress: Callable[[int], None] | None = None) -> list[list[list[float]]]:
    """``samples[i][r]``: the ``iters`` latencies of ``calls[i]`` in round ``r``.

    Every round times each call ``iters`` times in turn (in a new random order per round when
    ``shuffle_seed`` is given), so slow swings of other load on the machine hit every call alike. The
    calls are expected to be warm already. ``progress`` gets the number of rounds done.
    """
    if rounds < 1 or iters < 1:
        raise ValueError(f"need rounds >= 1 and iters >= 1; got {rounds}, {iters}")
    rng = random.Random(shuffle_seed)
    samples: list[list[list[float]]] = [[] for _ in calls]
    for done in range(1, rounds + 1):
        order = list(range(len(calls)))
        if shuffle_seed is not None:
            rng.shuffle(order)
        for i in order:
            samples[i].append(collect_samples(calls[i], warmup=0, min_iters=iters, max_iters=iters))
        if progress:
            progress(done)
    return samples
