"""``anas-zoo``: list, inspect and try the models of the zoo."""

from __future__ import annotations

import argparse
import time

import torch

from anas_zoo.cli.common import print_json, run
from anas_zoo.zoo import list_models, load, model_info


def _list(args: argparse.Namespace) -> None:
    names = list_models(args.pattern, pretrained=args.pretrained)
    if args.json:
        print_json([model_info(n) | {"name": n} for n in names] if not args.pretrained else names)
        return
    for name in names:
        if args.pretrained:
            print(name)
        else:
            info = model_info(name)
            print(f"{name:<22} res {info['resolution']:>3}  {info['macs'] / 1e6:8.2f} MMACs  "
                  f"{info['params'] / 1e6:6.2f} M params  {info['num_classes']} classes")


def _info(args: argparse.Namespace) -> None:
    info = model_info(args.name)
    if args.json:
        print_json(info)
        return
    genome = info["genome"]
    print(f"{info['name']}: {info['description']}")
    print(f"  space        {info['space']}")
    print(f"  resolution   {info['resolution']}")
    for gene in ("width", "depth", "kernel_size", "expand_ratio"):
        print(f"  {gene:<12} {','.join(map(str, genome[gene]))}")
    print(f"  macs         {info['macs'] / 1e6:.2f} M")
    print(f"  params       {info['params'] / 1e6:.3f} M")
    print(f"  num_classes  {info['num_classes']}")
    for w in info["weights"]:
        metrics = "; ".join(
            f"{m['dataset']} {m['split']} top-1 {m['top1']} ({m['source']})" for m in w["metrics"]
        )
        state = "available" if w["available"] else "not present locally"
        print(f"  weights      .{w['tag']}  licence {w['license']}  {metrics}  [{state}]")


def _demo(args: argparse.Namespace) -> None:
    """Build the paper's A0–A6, print genome, MACs and params, and time one forward pass of each."""
    torch.set_num_threads(args.threads)
    rows = []
    for name in list_models("attentivenas_a*"):
        model = load(name).eval()
        info = model_info(name)
        x = torch.randn(1, 3, info["resolution"], info["resolution"])
        with torch.inference_mode():
            model(x)
            start = time.perf_counter()
            logits = model(x)
            elapsed = (time.perf_counter() - start) * 1e3
        rows.append({"name": name, "genome": info["genome"], "macs": info["macs"], "params": info["params"],
                     "output_shape": list(logits.shape), "forward_ms": round(elapsed, 2)})
    if args.json:
        print_json(rows)
        return
    print("AttentiveNAS A0-A6 (paper genomes, random weights; import the official weights for real ones)")
    print(f"{'model':<18}{'res':>5}{'MMACs':>9}{'params':>9}{'forward ms':>12}  genome (width | depth | kernel | expand)")
    for r in rows:
        g = r["genome"]
        genome = " | ".join(",".join(map(str, g[k])) for k in ("width", "depth", "kernel_size", "expand_ratio"))
        print(f"{r['name']:<18}{g['resolution']:>5}{r['macs'] / 1e6:>9.2f}{r['params'] / 1e6:>8.2f}M"
              f"{r['forward_ms']:>12.2f}  {genome}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anas-zoo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*", help="glob on model names (default: all)")
    p.add_argument("--pretrained", action="store_true", help="list name.tag for every weight set")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_list)

    p = sub.add_parser("info", help="genome, MACs, params, licence, metrics and weights of a model")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_info)

    p = sub.add_parser("demo", help="the main job: build the zoo's models and run each once")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
