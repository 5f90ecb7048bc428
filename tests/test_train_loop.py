"""The training loop on a tiny space: learning, exact resume, warm start, NaN rollback, signals, evaluation."""

import json
import multiprocessing
import random
import signal

import pytest
import torch
from train_helpers import TINY, params, synthetic_data, tiny_config

from anas_zoo.evaluate import evaluate_subnet
from anas_zoo.fileio import sha256_of
from anas_zoo.train.checkpoint import CheckpointError, slim_checkpoint
from anas_zoo.train.losses import label_smoothing_ce, soft_target_ce
from anas_zoo.train.trainer import Trainer, TrainingError


def _events(out_dir):
    return [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]


def test_exact_resume_reproduces_the_uninterrupted_run(tmp_path):
    straight = Trainer(tiny_config(tmp_path / "a"), synthetic_data())
    straight.fit(max_steps=6)

    first = Trainer(tiny_config(tmp_path / "b"), synthetic_data())
    first.fit(max_steps=3)
    resumed = Trainer(tiny_config(tmp_path / "b", resume="auto"), synthetic_data())
    summary = resumed.fit(max_steps=6)
    assert summary["step"] == 6
    a, b = params(straight.model), params(resumed.model)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert straight.rng.getstate() == resumed.rng.getstate()


def test_training_lowers_the_loss_and_logs_each_step(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, epochs=3, eval_every=3), synthetic_data())
    summary = trainer.fit()
    steps = [e for e in _events(tmp_path) if "loss" in e]
    assert len(steps) == trainer.total_steps == 18
    assert sum(e["loss"] for e in steps[-4:]) < sum(e["loss"] for e in steps[:4])
    assert {"loss_max", "loss_sampled0", "loss_sampled1", "loss_min", "lr", "img_per_s"} <= steps[0].keys()
    assert summary["validation"]["max"]["samples"] == 96
    assert 0.0 <= summary["validation"]["min"]["top1"] <= 1.0


def test_lr_warms_up_then_follows_a_cosine_to_zero(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, epochs=4, warmup_epochs=1), synthetic_data())
    base = trainer.base_lr
    assert trainer.lr_at(0) == pytest.approx(base / 6)
    assert trainer.lr_at(5) == pytest.approx(base)
    assert trainer.lr_at(6) == pytest.approx(base)
    assert trainer.lr_at(15) == pytest.approx(base * 0.5, rel=0.1)
    assert trainer.lr_at(23) < 0.01 * base


def test_weight_decay_skips_bn_and_biases(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, weight_decay=1e-4), synthetic_data())
    decayed, free = trainer.optimizer.param_groups
    assert decayed["weight_decay"] == 1e-4 and free["weight_decay"] == 0.0
    assert all(p.dim() > 1 for p in decayed["params"]) and all(p.dim() == 1 for p in free["params"])


def _inject_nan_at(trainer, calls):
    """Make the classifier return NaN on the given forward calls (counting every forward)."""
    count = {"n": 0}

    def hook(module, inputs, output):
        count["n"] += 1
        return output * float("nan") if count["n"] in calls else output

    trainer.model.classifier.register_forward_hook(hook)


def test_nan_loss_rolls_back_to_the_last_checkpoint_with_a_lower_lr(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, checkpoint_every=2, epochs=1), synthetic_data())
    _inject_nan_at(trainer, {3 * 10 + 1})  # a forward during the 4th step
    summary = trainer.fit()
    assert summary["step"] == trainer.total_steps and summary["failures"] == 1
    events = [e for e in _events(tmp_path) if "event" in e]
    rollback = next(e for e in events if e["event"] == "rollback")
    assert rollback["step"] == 3 and "non-finite" in rollback["reason"]
    resumed = next(e for e in events if e["event"] == "resumed")
    assert resumed["step"] == 2 and resumed["lr_scale"] == 0.5
    assert trainer.lr_scale == 0.5
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_repeated_divergence_gives_up_with_a_clear_error(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, max_failures=2), synthetic_data())
    _inject_nan_at(trainer, set(range(1, 10_000)))
    with pytest.raises(TrainingError, match="diverged 3 times"):
        trainer.fit()


def test_collapse_to_chance_rolls_back_and_training_goes_on(tmp_path):
    """Held-out accuracy of the largest subnet falling to chance after learning triggers the same recovery."""
    trainer = Trainer(tiny_config(tmp_path, epochs=3, eval_every=1, checkpoint_every=4), synthetic_data())
    real_validate, script = trainer.validate, iter([0.9, 0.26, 0.8, 0.85, 0.9])

    def scripted():  # real calibration and scoring, then the scripted top-1 of the largest subnet
        result = real_validate()
        result["max"]["top1"] = next(script)
        return result

    trainer.validate = scripted
    summary = trainer.fit()
    events = [e for e in _events(tmp_path) if "event" in e]
    rollback = next(e for e in events if e["event"] == "rollback")
    assert rollback["step"] == 12 and "collapse" in rollback["reason"] and "0.260 after 0.900" in rollback["reason"]
    resumed = next(e for e in events if e["event"] == "resumed")
    assert resumed["step"] == 8 and resumed["lr_scale"] == 0.5
    assert summary["step"] == trainer.total_steps == 18 and summary["failures"] == 1 and trainer.lr_scale == 0.5


def _train_until_sigterm(out_dir: str) -> tuple[dict, bool]:
    """A run that gets SIGTERM during step 2: (its summary, whether SIGTERM's default action is back afterwards)."""
    trainer = Trainer(tiny_config(out_dir), synthetic_data())
    calls = {"n": 0}

    def hook(module, inputs, output):
        calls["n"] += 1
        if calls["n"] == 15:  # during step 2
            signal.raise_signal(signal.SIGTERM)

    trainer.model.classifier.register_forward_hook(hook)
    summary = trainer.fit()
    return summary, signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sigterm_writes_a_checkpoint_and_stops_cleanly(tmp_path):
    # In a fresh process: twice, the whole suite's process (which has loaded OpenVINO, ExecuTorch and the Hub
    # tests' threads by then) died with SIGSEGV at this test; a training process meets none of them.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        summary, default_restored = pool.apply(_train_until_sigterm, (str(tmp_path),))
    assert summary["interrupted"] and summary["step"] == 2 and default_restored
    resumed = Trainer(tiny_config(tmp_path, resume="auto"), synthetic_data())
    resumed.load(tmp_path / "last.safetensors")
    assert resumed.step == 2 and resumed.train_loader.state_dict() == {"epoch": 0, "batch": 2}


def test_init_from_starts_a_fresh_run_from_a_supernets_weights(tmp_path):
    first = Trainer(tiny_config(tmp_path / "a"), synthetic_data())
    first.fit(max_steps=3)
    slim = slim_checkpoint(tmp_path / "a" / "last.safetensors", tmp_path / "slim.safetensors")
    frozen = Trainer(tiny_config(tmp_path / "b", init_from=str(slim), lr=0.0), synthetic_data())
    frozen.fit(max_steps=1)  # lr 0: the step leaves the loaded weights as they are
    for name, value in first.model.named_parameters():
        assert torch.equal(value, dict(frozen.model.named_parameters())[name]), name
    start = _events(tmp_path / "b")[0]
    assert start["event"] == "start" and start["init_from"]["step"] == 3 and frozen.step == 1
    restart = Trainer(tiny_config(tmp_path / "c", init_from=str(slim)), synthetic_data())
    restart.fit(max_steps=2)
    assert restart.step == 2 and not torch.equal(restart.model.stem.conv.weight, first.model.stem.conv.weight)


def test_a_warm_started_run_records_the_runs_its_weights_come_from(tmp_path):
    first = Trainer(tiny_config(tmp_path / "a", epochs=1), synthetic_data())
    first.fit(max_steps=3)
    second = Trainer(tiny_config(tmp_path / "b", init_from=str(tmp_path / "a" / "last.safetensors"), epochs=2),
                     synthetic_data())
    second.fit(max_steps=2)
    third = Trainer(tiny_config(tmp_path / "c", init_from=str(tmp_path / "b" / "last.safetensors")), synthetic_data())
    third.fit(max_steps=1)
    resumed = Trainer(tiny_config(tmp_path / "c", init_from=str(tmp_path / "b" / "last.safetensors")), synthetic_data())
    resumed.load(tmp_path / "c" / "last.safetensors")
    assert [(p["path"], p["step"], p["recipe"]["epochs"]) for p in resumed.lineage] == [
        (str(tmp_path / "a" / "last.safetensors"), 3, 1), (str(tmp_path / "b" / "last.safetensors"), 2, 2)]
    assert resumed.lineage[0]["train_seconds"] == round(first.train_seconds, 3) > 0
    assert resumed.lineage[1]["sha256"] == sha256_of(tmp_path / "b" / "last.safetensors")
    assert resumed.lineage[1]["source"] == second.source


def test_training_time_adds_up_across_a_resume(tmp_path):
    first = Trainer(tiny_config(tmp_path), synthetic_data())
    first.fit(max_steps=2)
    resumed = Trainer(tiny_config(tmp_path, resume="auto"), synthetic_data())
    resumed.load(tmp_path / "last.safetensors")
    assert resumed.train_seconds == round(first.train_seconds, 3) > 0
    summary = Trainer(tiny_config(tmp_path, resume="auto"), synthetic_data()).fit(max_steps=4)
    assert summary["train_seconds"] > resumed.train_seconds


def test_init_from_refuses_a_supernet_of_another_space(tmp_path):
    other = Trainer(tiny_config(tmp_path / "a", num_classes=3), synthetic_data())
    other.save()
    restart = Trainer(tiny_config(tmp_path / "b", init_from=str(tmp_path / "a" / "last.safetensors")), synthetic_data())
    with pytest.raises(CheckpointError, match="3 classes"):
        restart.fit()


def test_init_from_a_missing_file_names_the_key_and_the_path(tmp_path):
    restart = Trainer(tiny_config(tmp_path, init_from=str(tmp_path / "nope.safetensors")), synthetic_data())
    with pytest.raises(CheckpointError, match="init_from: checkpoint .*nope.safetensors does not exist"):
        restart.fit()


def test_evaluate_subnet_calibrates_bn_then_scores(tmp_path):
    trainer = Trainer(tiny_config(tmp_path), synthetic_data())
    bn = trainer.model.stem.bn
    bn.running_mean.fill_(123.0)
    data = synthetic_data()
    trainer.model.train()
    result = evaluate_subnet(trainer.model, TINY.min_arch(), data["calib_loader"](), data["val_loader"](), 2)
    assert result["samples"] == 96 and 0.0 <= result["top1"] <= result["top5"] <= 100.0  # in %, as every accuracy
    assert bn.running_mean.abs().max() < 50 and int(bn.num_batches_tracked) == 2
    assert trainer.model.training and trainer.model.active_arch == TINY.min_arch()


def test_zero_init_residual_is_a_recipe_switch(tmp_path):
    def project_scales(trainer):
        return torch.cat([block.project.bn.weight.detach() for stage in trainer.model.stages for block in stage])

    assert not project_scales(Trainer(tiny_config(tmp_path / "a", zero_init_residual=True), synthetic_data())).any()
    assert project_scales(Trainer(tiny_config(tmp_path / "b"), synthetic_data())).all()


def test_the_other_subnets_learn_from_the_labels_during_the_distillation_warmup(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, distill_warmup_epochs=1, dropout=0.0, drop_connect=0.0), synthetic_data())
    x, y = next(iter(trainer.train_loader))
    x = x.float()

    def logits(arch):
        trainer.model.set_active(arch)
        with torch.no_grad():
            return trainer.model(trainer._input(x, arch))

    smallest, largest = trainer.space.min_arch(), trainer.space.max_arch()
    expected = {"labels": label_smoothing_ce(logits(smallest), y, trainer.config.label_smoothing),
                "teacher": soft_target_ce(logits(smallest), logits(largest))}
    assert not torch.isclose(expected["labels"], expected["teacher"])
    for step, source in ((trainer.steps_per_epoch - 1, "labels"), (trainer.steps_per_epoch, "teacher")):
        trainer.step = step
        torch.testing.assert_close(trainer.subnet_losses([(x, y)])["min"], expected[source])


def test_the_largest_subnet_trains_alone_for_largest_only_epochs_then_the_sandwich_starts(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, epochs=2, largest_only_epochs=1), synthetic_data())
    draws = trainer.rng.getstate()
    trainer.fit(max_steps=trainer.steps_per_epoch)
    assert trainer.rng.getstate() == draws  # no subnet was sampled while the largest trained alone
    trainer.fit()
    steps = [e for e in _events(tmp_path) if "loss" in e]
    alone, sandwich = steps[: trainer.steps_per_epoch], steps[trainer.steps_per_epoch :]
    assert len(alone) == len(sandwich) == 6
    assert all(e["loss"] == e["loss_max"] and "loss_min" not in e for e in alone)
    assert all({"loss_max", "loss_sampled0", "loss_sampled1", "loss_min"} <= e.keys() for e in sandwich)
    assert trainer.rng.getstate() != draws


def test_a_spent_time_budget_ends_the_run_after_the_warmup_and_resume_keeps_the_plan(tmp_path):
    summary = Trainer(tiny_config(tmp_path, time_budget_minutes=1e-6), synthetic_data()).fit()
    assert summary["step"] == summary["total_steps"] == 3  # the 0.5-epoch warm-up of 6-step epochs
    events = _events(tmp_path)
    (budget,) = [e for e in events if e.get("event") == "budget"]
    assert budget["step"] == budget["planned_steps"] == 3 and budget["seconds_per_step"] > 0
    assert budget["seconds_per_eval"] > 0  # no periodic evaluation: the plan timed one itself
    assert [e["step"] for e in events if e.get("event") == "eval"] == [3, 3]
    resumed = Trainer(tiny_config(tmp_path, time_budget_minutes=1e-6, resume="auto"), synthetic_data())
    assert resumed.fit()["total_steps"] == 3 and resumed.planned_steps == 3


def test_an_ample_time_budget_leaves_the_schedule_as_the_epochs_set_it(tmp_path):
    exact = dict(dropout=0.0, drop_connect=0.0)  # no dropout draws, so two runs can match step for step
    plain = Trainer(tiny_config(tmp_path / "a", **exact), synthetic_data())
    budgeted = Trainer(tiny_config(tmp_path / "b", time_budget_minutes=1e6, **exact), synthetic_data())
    assert plain.fit()["step"] == budgeted.fit()["step"] == budgeted.planned_steps == 12
    assert [(e["lr"], e["loss"]) for e in _events(tmp_path / "a") if "lr" in e] == [
        (e["lr"], e["loss"]) for e in _events(tmp_path / "b") if "lr" in e]


def test_budgeting_a_largest_first_run_probes_sandwich_steps_and_leaves_no_trace_of_them(tmp_path):
    config = dict(epochs=3, largest_only_epochs=1, warmup_epochs=0.5, checkpoint_every=2, dropout=0.0,
                  drop_connect=0.0)
    plain = Trainer(tiny_config(tmp_path / "a", **config), synthetic_data())
    budgeted = Trainer(tiny_config(tmp_path / "b", time_budget_minutes=1e6, **config), synthetic_data())
    assert plain.fit()["step"] == budgeted.fit()["step"] == budgeted.planned_steps == 18
    (budget,) = [e for e in _events(tmp_path / "b") if e.get("event") == "budget"]
    assert budget["step"] == 3 and budget["largest_only_steps"] == 6
    assert budget["seconds_per_step"] > 0 and budget["seconds_per_sandwich_step"] > 0
    # The probe's sandwich steps were undone: same losses, learning rates and final weights as without a budget.
    steps = [{k: e[k] for k in ("step", "loss", "lr")} for e in _events(tmp_path / "a") if "loss" in e]
    assert steps == [{k: e[k] for k in ("step", "loss", "lr")} for e in _events(tmp_path / "b") if "loss" in e]
    for key, value in params(plain.model).items():
        assert torch.equal(value, budgeted.model.state_dict()[key]), key


def test_a_damaged_last_checkpoint_resumes_from_the_previous_one(tmp_path):
    first = Trainer(tiny_config(tmp_path), synthetic_data())
    first.fit(max_steps=4)
    first.step = 7
    first.save()  # keeps the step-4 checkpoint as last.previous.safetensors
    last = tmp_path / "last.safetensors"
    data = bytearray(last.read_bytes())
    data[-1] ^= 0x01
    last.write_bytes(bytes(data))
    resumed = Trainer(tiny_config(tmp_path, resume="auto"), synthetic_data())
    resumed.load(last)
    assert resumed.step == 4
    fallback = [e for e in _events(tmp_path) if e.get("event") == "fallback"]
    assert fallback[-1]["from"] == str(tmp_path / "last.previous.safetensors") and "is damaged" in fallback[-1]["reason"]


@pytest.mark.parametrize("sampler", ["bestup", "worstup"])
def test_ranking_on_the_training_batch_trains_the_pick_with_its_ranking_forward(tmp_path, sampler):
    # Without a ranking sub-batch the chosen candidate's ranking forward doubles as its training forward:
    # the same pick, loss and gradients as ranking without graphs and training the pick afterwards.
    trainer = Trainer(tiny_config(tmp_path, rank_subbatch=None, sampler=sampler), synthetic_data())
    assert trainer._ranks_on_training_batch()
    trainer.model.train()
    micro = [next(iter(trainer.train_loader))]
    candidates = [TINY.min_arch(), TINY.max_arch(), trainer.sampler.candidates(random.Random(1))[0]]

    def gradients(run):
        trainer.optimizer.zero_grad(set_to_none=True)
        loss = run()
        return loss, {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}

    loss, grads = gradients(lambda: trainer._rank_and_train(candidates, micro, trainer.label_loss))
    scores = trainer._score(candidates, micro)
    pick = trainer.sampler.pick(candidates, scores)
    expected_loss, expected = gradients(lambda: trainer._forward_backward(pick, micro, trainer.label_loss)[0])
    assert len(set(scores)) == 3
    assert torch.equal(loss, expected_loss)
    assert grads.keys() == expected.keys() and all(torch.equal(grads[n], expected[n]) for n in grads)
    others = [a for a in candidates if a != pick]
    _, other = gradients(lambda: trainer._forward_backward(others[0], micro, trainer.label_loss)[0])
    assert any(not torch.equal(grads[n], other[n]) for n in grads if n in other)
