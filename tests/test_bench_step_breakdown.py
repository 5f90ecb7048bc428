"""benchmarks/step_breakdown.py: real sandwich steps, timed part by part, adding up to the step."""

from bench_helpers import load_benchmark
from train_helpers import synthetic_data, tiny_config

from anas_zoo.train.trainer import Trainer


def test_the_parts_of_real_sandwich_steps_add_up_to_the_step(tmp_path):
    trainer = Trainer(tiny_config(tmp_path), synthetic_data())
    draws = trainer.rng.getstate()
    result = load_benchmark("step_breakdown").breakdown(trainer, steps=2, warmup=1)
    assert trainer.rng.getstate() != draws  # subnets were drawn: sandwich steps, not the largest alone
    parts = result["parts"]
    assert set(parts) == {"forward_backward", "ranking", "drawing", "rest"}
    assert parts["forward_backward"] > 0 and parts["ranking"] > 0 and parts["drawing"] > 0
    assert abs(sum(parts.values()) - result["seconds_per_step"]) < 1e-3
    assert result["images_per_second"] > 0 and result["steps"] == 2
