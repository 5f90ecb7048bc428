"""`anas-train` end to end on a tiny CIFAR-shaped folder and the tiny space: train, JSON summary, resume."""

import json

import pytest
import train_helpers  # noqa: F401  (registers the tiny space)
from test_train_data import make_cifar_folder

from anas_zoo.cli.train import main


def test_train_then_resume_from_the_command_line(tmp_path, capsys):
    folder = make_cifar_folder(tmp_path / "cifar", per_class=4)
    config = tmp_path / "recipe.yaml"
    config.write_text(
        "space: train_tiny\nbatch_size: 8\nepochs: 1\nholdout_fraction: 0.25\ncalib_batches: 1\n"
        "eval_every: 0\nprogress: false\nprior_samples: 100\nthreads: 1\nchannels_last: false\n"
    )
    out = tmp_path / "run"
    args = ["--config", str(config), f"data_path={folder}", f"out_dir={out}", "--json"]
    assert main(args + ["max_steps=2"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["step"] == 2 and first["total_steps"] == 3 and not first["interrupted"]
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["step"] == 3 and second["validation"]["max"]["samples"] == 10
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events if e.get("event") == "resume"] == ["resume"]


def test_training_without_data_is_one_line_that_says_how_to_set_it(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ANAS_ZOO_DATA")
    assert main(["space=train_tiny", f"out_dir={tmp_path / 'run'}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no CIFAR-10 data given") and "ANAS_ZOO_DATA" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["lrr=0.1"], "unknown config key 'lrr'"),
        (["lr"], "not key=value"),
        (["sampler=best"], "sampler='best' is not allowed; allowed: ['uniform', 'bestup', 'worstup']"),
        (["space=nas"], "space='nas' is not allowed"),
        (["distill_warmup_epochs=-1"], "distill_warmup_epochs must be >= 0, got -1"),
        (["time_budget_minutes=0"], "time_budget_minutes must be > 0 (or null for no budget), got 0"),
        (["largest_only_epochs=-1"], "largest_only_epochs must be >= 0, got -1"),
        (["time_budget_minutes=150", "largest_only_epochs=0.5", "warmup_epochs=1"],
         "needs warmup_epochs=1 <= largest_only_epochs=0.5"),
        (["--config", "/nonexistent.yaml"], "does not exist"),
    ],
)
def test_bad_usage_is_one_line_with_exit_code(args, message, capsys):
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1
