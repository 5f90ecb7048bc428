"""`anas-train --config configs/X.yaml [key=value ...]`: train a supernet (also `python -m anas_zoo.train`).

Runs one process, or one per rank under `torchrun --nproc_per_node N -m anas_zoo.train ...` (DDP).
Ctrl-C / SIGTERM writes a checkpoint and exits cleanly; rerunning the same command resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import yaml

from anas_zoo.cli.common import EXIT_USAGE, fail, print_json, run
from anas_zoo.train.config import TrainConfig
from anas_zoo.train.trainer import Trainer, TrainingError


def parse_overrides(pairs: list[str]) -> dict:
    """``key=value`` pairs, values parsed as YAML scalars (``lr=0.2``, ``resume=null``, ``sampler=worstup``)."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"override '{pair}' is not key=value")
        if key not in known:
            raise ValueError(f"unknown config key '{key}'; allowed: {sorted(known)}")
        try:
            values[key] = yaml.safe_load(value) if value else None
        except yaml.YAMLError:
            values[key] = value  # not a YAML scalar: kept as text, so the type check names it
    return values


def load_config(path: str | None, overrides: list[str]) -> TrainConfig:
    values = {}
    if path:
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"config file {file} does not exist")
        try:
            values = yaml.safe_load(file.read_text()) or {}
        except (OSError, ValueError, yaml.YAMLError) as e:
            raise ValueError(f"config file {file} is not readable YAML: {' '.join(str(e).split())}") from None
        if not isinstance(values, dict):
            raise ValueError(f"config file {file} must hold a YAML mapping of TrainConfig keys")
    return TrainConfig.from_dict({**values, **parse_overrides(overrides)})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anas-train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML recipe (keys of TrainConfig), e.g. configs/cifar10.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override recipe keys")
    parser.add_argument("--json", action="store_true", help="print the run summary as one JSON document")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)

    def body() -> int:
        try:
            config = load_config(args.config, args.overrides)
        except (ValueError, TypeError, FileNotFoundError) as e:
            return fail(str(e), EXIT_USAGE)
        trainer = Trainer(config)
        try:
            summary = trainer.fit()
        except TrainingError as e:
            return fail(str(e))
        if trainer.rank == 0:
            if args.json:
                print_json(summary)
            else:
                state = "interrupted" if summary["interrupted"] else "finished"
                print(f"{state} at step {summary['step']}/{summary['total_steps']}; checkpoint {summary['checkpoint']}")
                for name, result in summary["validation"].items():
                    if isinstance(result, dict):
                        print(f"  {name} subnet: top-1 {result['top1']:.4f} top-5 {result['top5']:.4f} "
                              f"({result['samples']} held-out images)")
        return 0

    return run(body)


if __name__ == "__main__":
    raise SystemExit(main())
