"""Build this device's latency model for a search space and validate it on held-out sub-networks.

    python benchmarks/build_latency_model.py --space attentivenas --backend ort --threads 1 \\
        --out benchmarks/results/latency_model_ort_t1.json

Measures ``--num-train`` sub-networks (smallest, largest, then uniform samples), fits the cost model,
then measures ``--num-val`` further random sub-networks for real and prints Kendall tau (target
>= 0.85) and MAPE (target <= 10 %) of the predictions against them. All nets are prepared first,
then timed in interleaved rounds (a net's figure is its best round's median), so slow swings of other
load on the machine hit every net alike; still, run it on an otherwise idle device when you can.
"""

from __future__ import annotations

import argparse
import sys

from anas_zoo.bench.backends import BACKENDS, PRECISIONS
from anas_zoo.cli.common import EXIT_OK, print_json, run
from anas_zoo.search.latency_model import build_latency_model

TAU_TARGET, MAPE_TARGET = 0.85, 10.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="build_latency_model.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="attentivenas", help="registered search space (default attentivenas)")
    p.add_argument("--backend", choices=BACKENDS, default="ort")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--num-train", type=int, default=40, help="measured sub-networks to fit on (default 40)")
    p.add_argument("--num-val", type=int, default=30, help="held-out sub-networks measured for validation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=3, help="timed calls per sub-network and round (default 3)")
    p.add_argument("--rounds", type=int, default=15,
                   help="interleaved timing rounds; a net's latency is its best round's median (default 15)")
    p.add_argument("--resolution", type=int, default=None, help="override every genome's resolution")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--out", required=True, help="where to write the model (JSON)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    args = p.parse_args(argv)
    for name in ("threads", "batch", "iters", "rounds"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")

    def body() -> int:
        model = build_latency_model(
            args.space, backend=args.backend, threads=args.threads, precision=args.precision, batch=args.batch,
            device=args.device, num_classes=args.num_classes, resolution=args.resolution, num_train=args.num_train,
            num_val=args.num_val, seed=args.seed, warmup=args.warmup, iters=args.iters, rounds=args.rounds,
            progress=not args.no_progress)
        path = model.save(args.out)
        v = model.validation
        ok = v["kendall_tau"] >= TAU_TARGET and v["mape_percent"] <= MAPE_TARGET
        if args.json:
            print_json({"path": str(path), "validation": v, "setting": model.setting,
                        "weights": dict(zip(["constant", *model.features], model.weights)), "targets_met": ok})
        else:
            print(f"latency model for space '{model.space}' on {model.environment['cpu']['model']} "
                  f"({args.backend} {args.precision}, {args.threads} threads, batch {args.batch}) -> {path}")
            print(f"  fitted on {v['num_train']} measured sub-networks, train MAPE {v['train_mape_percent']:.1f} %")
            print(f"  held-out: {v['num_val']} random sub-networks measured for real")
            print(f"  Kendall tau {v['kendall_tau']:.3f} (target >= {TAU_TARGET})  "
                  f"MAPE {v['mape_percent']:.1f} % (target <= {MAPE_TARGET:.0f} %)  "
                  f"-> {'targets met' if ok else 'TARGETS MISSED'}")
            print(f"  measuring took {v['measure_seconds']:.0f} s")
            for name, w in zip(["constant", *model.features], model.weights):
                print(f"    {name:<14} {w:.4g} ms per unit")
        return EXIT_OK

    return run(body)


if __name__ == "__main__":
    sys.exit(main())
