"""benchmarks/largest_alone.py: the same Trainer, every step holding the largest subnet only."""

import json

from bench_helpers import load_benchmark
from train_helpers import synthetic_data, tiny_config


def test_each_step_trains_the_largest_subnet_on_the_labels_only(tmp_path):
    trainer = load_benchmark("largest_alone").largest_alone(tiny_config(tmp_path, epochs=2, log_every=1), synthetic_data())
    summary = trainer.fit()
    steps = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert len(steps) == summary["step"] == trainer.total_steps
    assert all(set(s) >= {"loss_max"} and not any(k.startswith(("loss_sampled", "loss_min")) for k in s) for s in steps)
    assert all(s["loss"] == s["loss_max"] for s in steps)
    assert steps[-1]["loss"] < steps[0]["loss"]
    assert summary["validation"]["max"]["samples"] > 0
