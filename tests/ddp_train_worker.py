"""Run by tests/test_train_ddp.py under torchrun: a few DDP steps on the tiny space, params and plan saved per rank."""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from train_helpers import params, synthetic_data, tiny_config

from anas_zoo.train.trainer import Trainer

if __name__ == "__main__":
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    config = tiny_config(out / "run", dropout=0.0, drop_connect=0.0, batch_size=8, time_budget_minutes=1e6)
    trainer = Trainer(config, synthetic_data())
    trainer.fit(max_steps=int(sys.argv[2]))
    save_file({k: v.contiguous() for k, v in params(trainer.model).items()}, out / f"rank{trainer.rank}.safetensors")
    (out / f"rank{trainer.rank}.json").write_text(json.dumps({"planned_steps": trainer.planned_steps}))
