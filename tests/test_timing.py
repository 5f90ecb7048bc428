"""The one timing loop: warm-up then enough timed calls; interleaved rounds over several calls."""

import time

import pytest

from anas_zoo.timing import collect_samples, interleaved_samples, timed


def test_collect_samples_runs_warmup_then_enough_timed_calls():
    calls = []

    def call():
        calls.append(1)
        return float(len(calls))

    samples = collect_samples(call, warmup=3, min_iters=5, min_seconds=0.0)
    assert samples == [4.0, 5.0, 6.0, 7.0, 8.0]
    timed_calls = collect_samples(lambda: 1.0, warmup=0, min_iters=1, min_seconds=0.05, max_iters=10**7)
    assert len(timed_calls) > 1
    assert len(collect_samples(lambda: 1.0, warmup=0, min_iters=3, min_seconds=60.0, max_iters=3)) == 3
    with pytest.raises(ValueError):
        collect_samples(call, warmup=0, min_iters=0, min_seconds=0.0)


def test_timed_returns_the_wall_time_of_the_function_in_ms():
    assert 4.0 <= timed(lambda: time.sleep(0.005))() < 1000.0


def test_interleaved_rounds_visit_every_call_in_turn():
    order = []

    def make(label):
        def call():
            order.append(label)
            return float(len(order))
        return call

    samples = interleaved_samples([make("a"), make("b")], rounds=3, iters=2)
    assert order == ["a", "a", "b", "b"] * 3
    assert samples == [[[1.0, 2.0], [5.0, 6.0], [9.0, 10.0]], [[3.0, 4.0], [7.0, 8.0], [11.0, 12.0]]]
    order.clear()
    shuffled = interleaved_samples([make("a"), make("b"), make("c")], rounds=20, iters=1, shuffle_seed=0)
    rounds = [order[i:i + 3] for i in range(0, 60, 3)]
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds) and len({tuple(r) for r in rounds}) > 1
    assert [len(per_call) for per_call in shuffled] == [20, 20, 20]
    with pytest.raises(ValueError, match="rounds"):
        interleaved_samples([make("a")], rounds=0, iters=1)
