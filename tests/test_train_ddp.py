"""Two gloo ranks under torchrun train the same subnets: identical parameters across ranks, and equal to
one process that splits the same global batch into the same two micro-batches (grad_accum=2).

Dropout and drop-connect are off: their random masks are per process by design."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from train_helpers import params, synthetic_data, tiny_config

import anas_zoo
from anas_zoo.train.trainer import Trainer

STEPS = 3


def test_two_gloo_ranks_agree_with_each_other_and_with_one_process(tmp_path):
    worker = Path(__file__).with_name("ddp_train_worker.py")
    # the workers import the helpers beside this file and the very anas_zoo this process tests
    paths = [str(worker.parent), str(Path(anas_zoo.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(worker), str(tmp_path), str(STEPS)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")

    single = Trainer(
        tiny_config(tmp_path / "single", dropout=0.0, drop_connect=0.0, batch_size=8, grad_accum=2,
                    time_budget_minutes=1e6), synthetic_data()
    )
    single.fit(max_steps=STEPS)
    reference = params(single.model)
    initial = params(Trainer(tiny_config(tmp_path / "init"), synthetic_data()).model)

    plans = [json.loads((tmp_path / f"rank{r}.json").read_text())["planned_steps"] for r in (0, 1)]
    assert plans == [12, 12]  # both ranks adopt one plan: the whole 2-epoch schedule fits the ample budget

    moved = 0
    for key, value in rank0.items():
        assert torch.equal(value, rank1[key]), f"ranks differ on {key}"
        assert torch.allclose(value, reference[key], atol=1e-5, rtol=1e-4), f"DDP != single process on {key}"
        moved += not torch.equal(value, initial[key])
    assert moved > len(rank0) // 2  # training really changed the weights
