"""How well a supernet trains a genome's surroundings: the genome and each one-gene neighbour, on the held-out split.

    python benchmarks/neighbour_scores.py checkpoints/attentivenas_cifar10_supernet.safetensors \
        --out benchmarks/results/cifar10_training/largest-first-10/neighbours

Scores the space's smallest genome (or ``--genome FILE``, a genome JSON) and every genome that differs from it
in one gene, each after BN recalibration on training batches, on the whole held-out split the training
recorded: the scorer ``anas-search`` uses (:mod:`anas_zoo.search.held_out`). Prints the table sorted by MACs
and writes ``neighbours.md`` and ``neighbours.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tqdm import tqdm

from anas_zoo.fileio import atomic_write
from anas_zoo.flops import count
from anas_zoo.hub_cards import markdown_table
from anas_zoo.search.held_out import held_out_scorer
from anas_zoo.space import ArchConfig
from anas_zoo.train.checkpoint import load_supernet, read_checkpoint
from anas_zoo.train.data import cifar10_split, load_cifar10


def changed_gene(arch: ArchConfig, base: ArchConfig) -> str:
    """``gene[position]=value`` of the one gene where ``arch`` differs from ``base`` ('-' for ``base`` itself)."""
    for gene, value in arch.to_dict().items():
        old = base.to_dict()[gene]
        if isinstance(value, list):
            for i, (a, b) in enumerate(zip(value, old)):
                if a != b:
                    return f"{gene}[{i}]={a}"
        elif value != old:
            return f"{gene}={value}"
    return "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("supernet", help="trained supernet checkpoint")
    parser.add_argument("--genome", type=Path, help="genome JSON (default: the space's smallest)")
    parser.add_argument("--data", help="CIFAR-10 archive or folder (default: $ANAS_ZOO_DATA)")
    parser.add_argument("--calib-batches", type=int, default=16, help="training batches for BN recalibration")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="folder for neighbours.md and neighbours.json")
    args = parser.parse_args()
    if not Path(args.supernet).is_file():
        parser.error(f"supernet checkpoint {args.supernet} does not exist")
    torch.set_num_threads(args.threads)
    supernet = load_supernet(args.supernet).eval()
    recipe = read_checkpoint(args.supernet)[1].get("state", {}).get("config", {})
    space = supernet.space
    try:
        base = space.validate(ArchConfig.from_dict(json.loads(args.genome.read_text()))) if args.genome \
            else space.min_arch()
    except (OSError, ValueError, KeyError, TypeError) as e:
        parser.error(f"--genome {args.genome}: not a genome of space '{space.name}' ({e})")
    split = cifar10_split(load_cifar10(args.data), recipe.get("holdout_fraction", 0.1), seed=recipe.get("seed", 0))
    score, samples = held_out_scorer(supernet, split, None, calib_batches=args.calib_batches,
                                     resolution=recipe.get("input_resolution"))
    rows = []
    for arch in tqdm([base, *space.neighbours(base)], desc="neighbours", unit="genome"):
        macs, params = count(arch, space, supernet.num_classes)
        rows.append({"change": changed_gene(arch, base), "macs": macs, "params": params,
                     "held_out_top1": score(arch), "genome": arch.to_dict()})
    rows.sort(key=lambda r: r["macs"])
    table = markdown_table(["change", "MMACs", "held-out top-1 %"],
                           [[r["change"], f"{r['macs'] / 1e6:.2f}", f"{100 * r['held_out_top1']:.2f}"] for r in rows])
    header = (f"Held-out top-1 ({samples} images, BN recalibrated on {args.calib_batches} training batches) of "
              f"{'the genome in ' + str(args.genome) if args.genome else 'the smallest genome'} and its one-gene "
              f"neighbours; supernet {args.supernet}.")
    print(f"{header}\n\n{table}")
    if args.out:
        atomic_write(args.out / "neighbours.md", f"# One-gene neighbours\n\n{header}\n\n{table}\n")
        atomic_write(args.out / "neighbours.json", json.dumps({"supernet": str(args.supernet), "held_out_samples":
                                                               samples, "calib_batches": args.calib_batches,
                                                               "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
