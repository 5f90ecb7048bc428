"""``anas-search``: find the best sub-networks of a trained supernet under a MACs range or a latency budget.

Every candidate is taken from the supernet, its BN statistics recalibrated on training batches, and
scored by top-1 on the held-out part of the training set (never the test split). Rerunning with the
same ``--out`` resumes an interrupted search. Writes ``pareto.json``, ``pareto.csv`` and ``pareto.png``
(and ``family.json`` with ``--family N``: one genome per MACs budget, the best of its band's
``--family-shortlist`` top-scored genomes scored again on the whole held-out split, those re-scores kept
in ``family_rescores.json``) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from anas_zoo.cli.common import EXIT_USAGE, device_argument, fail, print_json, run
from anas_zoo.fileio import atomic_write, check_output_dir, sha256_of
from anas_zoo.search.evolution import (
    EvolutionarySearch,
    EvolutionSettings,
    latency_cost,
    macs_cost,
    select_family,
    spread_budgets,
)
from anas_zoo.search.held_out import held_out_scorer
from anas_zoo.search.latency_model import LatencyModel
from anas_zoo.search.pareto_archive import write_pareto
from anas_zoo.space import list_spaces
from anas_zoo.train.checkpoint import load_supernet, read_checkpoint
from anas_zoo.train.data import cifar10_source, cifar10_split, load_cifar10

STATE_FILE = "search_state.json"
RESCORE_FILE = "family_rescores.json"


class UsageError(Exception):
    """Bad command-line usage (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="anas-search", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--supernet", required=True, help="trained supernet checkpoint")
    p.add_argument("--data", help="CIFAR-10 archive or folder (default: $ANAS_ZOO_DATA; train/ is split, test/ is "
                                  "never used)")
    p.add_argument("--space", help="search space preset (default: the supernet's; must match it)")
    p.add_argument("--min-macs", type=float, metavar="MMACS", help="lower MACs bound in millions (default: smallest)")
    p.add_argument("--max-macs", type=float, metavar="MMACS", help="upper MACs bound in millions (default: largest)")
    p.add_argument("--latency-budget-ms", type=float, metavar="MS", help="constrain by predicted latency instead")
    p.add_argument("--latency-model", metavar="FILE", help="latency model JSON (from the latency model builder)")
    p.add_argument("--bucket-width", type=float, help="archive bucket width in MMACs or ms (default: range / 40)")
    p.add_argument("--population", type=int, default=512)
    p.add_argument("--generations", type=int, default=20)
    p.add_argument("--mutations", type=int, default=128, help="mutated children per generation")
    p.add_argument("--crossovers", type=int, default=128, help="crossover children per generation")
    p.add_argument("--calib-batches", type=int, default=64, help="training batches for BN recalibration")
    p.add_argument("--eval-samples", type=int, default=5000, help="held-out images that score a candidate")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--family", type=int, default=0, metavar="N",
                   help="also pick N models at MACs budgets from the smallest subnet to --family-ratio times it")
    p.add_argument("--family-ratio", type=float, default=3.5)
    p.add_argument("--family-shortlist", type=int, default=3, metavar="K",
                   help="score the K best genomes of each budget band again on the whole held-out split and pick "
                        "the best (the top score on --eval-samples images is partly luck); 1 keeps the top score")
    p.add_argument("--device", type=device_argument, default="cuda" if torch.cuda.is_available() else "cpu",
                   help="torch device: cpu or cuda[:N] (default cuda when available)")
    p.add_argument("--threads", type=int, help="torch intra-op threads on CPU (default: torch's choice)")
    p.add_argument("--out", default="runs/search", help="output folder; an existing search there is resumed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    return p


def _usage_problem(args: argparse.Namespace) -> str | None:
    """The first thing wrong with the arguments themselves (before any file is read), or None."""
    uses_macs = args.min_macs is not None or args.max_macs is not None
    uses_latency = args.latency_budget_ms is not None or args.latency_model is not None
    if uses_macs and uses_latency:
        return "give either --min-macs/--max-macs or --latency-budget-ms with --latency-model, not both"
    if uses_latency and (args.latency_budget_ms is None or args.latency_model is None):
        return "--latency-budget-ms and --latency-model go together: give both"
    if args.min_macs is not None and args.max_macs is not None and args.min_macs > args.max_macs:
        return f"--min-macs {args.min_macs:g} exceeds --max-macs {args.max_macs:g}: the range is empty"
    for name in ("population", "calib_batches", "eval_samples", "batch_size", "family_shortlist"):
        if getattr(args, name) < 1:
            return f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}"
    for name in ("generations", "mutations", "crossovers", "family"):
        if getattr(args, name) < 0:
            return f"--{name} must be >= 0, got {getattr(args, name)}"
    for name in ("latency_budget_ms", "bucket_width", "min_macs", "max_macs", "threads"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            return f"--{name.replace('_', '-')} must be a positive number, got {value}"
    if args.family_ratio < 1:
        return f"--family-ratio must be >= 1, got {args.family_ratio}"
    if args.space is not None and args.space not in list_spaces():
        return f"unknown search space '{args.space}'; available: {list_spaces()}"
    return None


def _training_config(path: str) -> dict:
    """The recipe recorded in a training checkpoint (empty for a checkpoint saved without one)."""
    _, meta = read_checkpoint(path)
    return meta.get("state", {}).get("config", {})


def _held_out_score(supernet, args: argparse.Namespace, recipe: dict, split: dict, samples: int | None):
    """:func:`held_out_scorer` with the command line's evaluation settings and the training's input resolution."""
    return held_out_scorer(supernet, split, samples, calib_batches=args.calib_batches, batch_size=args.batch_size,
                           seed=args.seed, device=args.device, resolution=recipe.get("input_resolution"))


def _whole_held_out_rescore(supernet, args: argparse.Namespace, recipe: dict, split: dict, identity: dict,
                            path: Path, bar: tqdm):
    """``rescore(candidate)``: top-1 on every held-out image (one tick of ``bar`` each); ``scores``, each result
    by genome key; and how many images that is.

    Every result is saved to ``path`` with ``identity`` (what the scores measure) as soon as it exists, so an
    interrupted, rerun or resumed search scores no genome twice; a file made by another scorer is ignored.
    """
    score, samples = _held_out_score(supernet, args, recipe, split, None)
    identity = json.loads(json.dumps(identity | {"held_out_samples": samples, "seed": args.seed}))
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        saved = {}
    scores = saved.get("scores", {}) if isinstance(saved, dict) and saved.get("identity") == identity else {}

    def rescore(candidate) -> float:
        if candidate.key not in scores:
            scores[candidate.key] = score(candidate.arch)
            atomic_write(path, json.dumps({"identity": identity, "scores": scores}))
            bar.update(1)
        return scores[candidate.key]

    return rescore, scores, samples


def _search(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    check_output_dir(args.out, "--out")
    args.data = cifar10_source(args.data)  # before the slow work: no --data and no $ANAS_ZOO_DATA is one line
    supernet = load_supernet(args.supernet).to(args.device).eval()
    recipe = _training_config(args.supernet)
    if recipe.get("data", "cifar10") != "cifar10":
        raise ValueError(f"{args.supernet} was trained on data={recipe['data']!r}; anas-search scores on CIFAR-10 only")
    space, num_classes = supernet.space, supernet.num_classes
    if args.space is not None and args.space != space.name:
        raise ValueError(f"--space {args.space} does not match the supernet's space '{space.name}'")
    if args.latency_model is not None:
        model = LatencyModel.load(args.latency_model)
        if model.space != space.name:
            raise ValueError(f"latency model {args.latency_model} was built for space '{model.space}', "
                             f"the supernet's is '{space.name}'")
        cost, lo, hi = latency_cost(model), 0.0, args.latency_budget_ms
    else:
        cost = macs_cost(space, num_classes)
        lo = args.min_macs * 1e6 if args.min_macs is not None else cost.measure(space.min_arch())
        hi = args.max_macs * 1e6 if args.max_macs is not None else cost.measure(space.max_arch())
    settings = EvolutionSettings(population=args.population, generations=args.generations,
                                 mutations=args.mutations, crossovers=args.crossovers, seed=args.seed)
    out = Path(args.out)
    split = cifar10_split(load_cifar10(args.data), recipe.get("holdout_fraction", 0.1), seed=recipe.get("seed", 0))
    score_identity = {"supernet_sha256": sha256_of(Path(args.supernet)), "eval_samples": args.eval_samples,
                      "calib_batches": args.calib_batches, "batch_size": args.batch_size}
    score, _ = _held_out_score(supernet, args, recipe, split, args.eval_samples)
    search = EvolutionarySearch(
        space, score, lo, hi, cost=cost, settings=settings,
        bucket_width=args.bucket_width * cost.scale if args.bucket_width else None, num_classes=num_classes,
        state_path=out / STATE_FILE, score_identity=score_identity,
    )
    result = search.run()
    metadata = {"supernet": str(args.supernet), "space": space.name, "num_classes": num_classes,
                "metric": "top-1 on the held-out split of CIFAR-10 train (BN recalibrated per candidate)",
                "eval_samples": args.eval_samples, "calib_batches": args.calib_batches,
                "holdout": {"fraction": recipe.get("holdout_fraction", 0.1), "seed": recipe.get("seed", 0)},
                "range": [lo, hi], "generations": result.generations, "seed": args.seed}
    files = write_pareto(out, result.archive, result.evaluated, cost.name, cost.unit, cost.scale, metadata)
    front = result.archive.front()
    family = []
    if args.family:
        macs = macs_cost(space, num_classes)
        smallest = macs.measure(space.min_arch())
        budgets = spread_budgets(smallest, smallest * args.family_ratio, args.family)
        by_macs = [replace(c, cost=float(c.macs)) for c in result.evaluated]
        with tqdm(desc="family re-scoring", unit="genome", disable=args.family_shortlist == 1) as bar:
            rescore, rescores, samples = _whole_held_out_rescore(
                supernet, args, recipe, split, {k: v for k, v in score_identity.items() if k != "eval_samples"},
                out / RESCORE_FILE, bar)
            chosen = select_family(by_macs, budgets, rescore if args.family_shortlist > 1 else None,
                                   args.family_shortlist)
        family = [c.to_dict() | {"budget_macs": b} | ({"held_out_top1": rescores[c.key], "held_out_samples": samples}
                                                       if c.key in rescores else {}) for c, b in zip(chosen, budgets)]
        files["family"] = out / "family.json"
        atomic_write(files["family"], json.dumps(family, indent=2) + "\n")
    if args.json:
        print_json({**metadata, "cost": cost.name, "evaluated": len(result.evaluated),
                    "files": {k: str(v) for k, v in files.items()}, "front": [c.to_dict() for c in front],
                    "family": family})
        return
    print(f"{len(result.evaluated)} genomes evaluated over {result.generations} generations; "
          f"Pareto front ({len(front)}):")
    by_latency = cost.name != "macs"
    print(f"{cost.unit:>16}" * by_latency + f"{'MMACs':>10}{'params M':>10}{'accuracy':>9}  genome")
    for c in front:
        print(f"{c.cost / cost.scale:>16.4g}" * by_latency + f"{c.macs / 1e6:>10.2f}{c.params / 1e6:>10.3f}"
              f"{c.accuracy:>9.3f}  {c.arch.to_json()}")
    for name, path in files.items():
        print(f"{name:>7}: {path}")


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as e:
        return fail(str(e), EXIT_USAGE)
    problem = _usage_problem(args)
    if problem:
        return fail(problem, EXIT_USAGE)
    return run(lambda: _search(args))


if __name__ == "__main__":
    raise SystemExit(main())
