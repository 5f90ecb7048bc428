"""``anas-zoo``: list, inspect and try the models of the zoo.

``demo`` and ``publish`` import the exporters (onnx, ONNX Runtime, OpenVINO, ExecuTorch) when they run, so that
``anas-zoo list`` and ``info`` start without loading them."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from anas_zoo.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    device_argument,
    fail,
    non_negative_int,
    positive_int,
    print_json,
    run,
)
from anas_zoo.evaluate import eval_batches, evaluate, uses_image_folder
from anas_zoo.extract import extract_weights
from anas_zoo.fileio import check_output_dir
from anas_zoo.official.importer import MODELS, imagenet_calibration, import_official
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.space import ArchConfig
from anas_zoo.store import STORAGE_DTYPES, check_name_part
from anas_zoo.train.checkpoint import slim_checkpoint
from anas_zoo.train.data import cifar10_source
from anas_zoo.train.finetune import FinetuneConfig, FinetuneError, Finetuner
from anas_zoo.train.soup import soup
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
        if w["corrupted"]:
            state = f"corrupted: {w['corrupted']}"
        kind = f" ({w['kind']})" if w["kind"] else ""
        print(f"  weights      .{w['tag']}{kind}  licence {w['license']}  {metrics}  [{state}]")


def _demo(args: argparse.Namespace) -> None:
    """The main job on the bundled CIFAR-10 family (see anas_zoo.demo)."""
    from anas_zoo.demo import run_demo

    result = run_demo(samples=args.samples, threads=args.threads, data=args.data, out_dir=args.out_dir)
    if args.json:
        print_json(result)
        return
    tags = list(dict.fromkeys(t for r in result["models"] for t in r["test_top1_by_tag"]))
    print(f"Bundled AttentiveNAS CIFAR-10 family (our weights), evaluated on {result['data']}; "
          f"latency: batch 1, {args.threads} threads; the default weights ({result['models'][0]['tag']}) are timed "
          "and sampled; CIFAR-10 test top-1 of every weight set as recorded")
    print(f"{'model':<24}{'res':>4}{'MMACs':>8}{'params':>8}" + "".join(f"{'.' + t:>13}" for t in tags)
          + f"{'sample top-1':>13}{'torch p50 ms':>13}  Pareto")
    for r in result["models"]:
        sample = "-" if r["sample_top1"] is None else f"{r['sample_top1']:.1f}"
        kinds = "".join(f"{r['test_top1_by_tag'][t]:>13.2f}" if t in r["test_top1_by_tag"] else f"{'-':>13}"
                        for t in tags)
        print(f"{r['name']:<24}{r['resolution']:>4}{r['macs'] / 1e6:>8.2f}{r['params'] / 1e6:>7.2f}M{kinds}"
              f"{sample:>13}{r['torch_p50_ms']:>13.2f}  {'*' if r['on_front'] else ''}")
    o = result["onnx"]
    print(f"ONNX export of {o['model']}: check {'passed' if o['passed'] else 'FAILED'} (max |diff| "
          f"{o['max_abs_diff']:.1e}); ONNX Runtime p50 {o['ort_p50_ms']:.2f} ms" + (f"; {o['path']}" if o["path"] else ""))


def _publish_report(report: dict, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    where = report.get("folder") or report.get("commit_url")
    print(f"{report['repo_type']} repo {report['repo_id']}: {len(report['files'])} files -> {where}")
    for name in report["files"]:
        print(f"  {name}")


def _publish(args: argparse.Namespace) -> int | None:
    """Publish a model repo (weights, config.json, model card, optional exports) or write it with --to-dir."""
    from anas_zoo.hub import PublishError, publish

    try:
        report = publish(args.name, args.repo_id, revision=args.revision, private=args.private,
                         with_onnx=args.with_onnx, onnx_precisions=args.onnx_precisions.split(","),
                         to_dir=args.to_dir, token=args.token,
                         pretrained=args.pretrained, results_dir=args.results_dir,
                         with_openvino=args.with_openvino, with_executorch=args.with_executorch)
    except PublishError as e:
        return fail(str(e))
    _publish_report(report, args.json)


def _publish_results(args: argparse.Namespace) -> int | None:
    """Publish the latency/Pareto results folder as a dataset repo, or write it with --to-dir."""
    from anas_zoo.hub import PublishError, publish_results

    try:
        report = publish_results(args.repo_id, results_dir=args.results_dir, revision=args.revision,
                                 private=args.private, to_dir=args.to_dir, token=args.token)
    except PublishError as e:
        return fail(str(e))
    _publish_report(report, args.json)


def _add_hub_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo-id", required=True, help="Hub repo ORG/REPO")
    p.add_argument("--revision", help="branch to upload to (created if missing; default main; not used with --to-dir)")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--to-dir", help="write the repo layout into this new folder instead of uploading (no network)")
    p.add_argument("--token", help="Hub token (default: HF_TOKEN or the saved login)")
    p.add_argument("--results-dir", default="benchmarks/results",
                   help="latency harness results folder (default benchmarks/results)")
    p.add_argument("--json", action="store_true", help="print one JSON document")


def _import_official(args: argparse.Namespace) -> int | None:
    """Map an official supernet checkpoint, extract the paper's A-models, recalibrate BN, store them."""
    models = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        return fail(f"--models {args.models!r}: unknown {unknown or 'empty list'}; allowed: {','.join(MODELS)}",
                    EXIT_USAGE)
    calib, info = (None, None)
    if args.calib_data:
        calib, info = imagenet_calibration(args.calib_data, args.calib_batch_size, args.workers)
    with warnings.catch_warnings():  # the importer's warnings as one "warning: ..." line each on stderr
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *_: print(f"warning: {message}", file=sys.stderr)
        report = import_official(args.file, args.kind, models, calib, args.calib_batches, info, args.store,
                                 args.device, progress=not args.json)
    if args.json:
        print_json(report)
        return
    match = {True: "matches the release", False: "does NOT match the release", None: "no release MD5 known"}
    print(f"{report['file']}: MD5 {report['md5']} ({match[report['md5_matches_release']]})")
    for w in report["weights"]:
        print(f"{w['name']:<32} {w['calibration']:<13} {w['path']}")


def _eval(args: argparse.Namespace) -> int | None:
    """Top-1/top-5 of a pretrained model on a dataset, with the model's recorded preprocessing."""
    model = load(args.name, pretrained=True)
    config = resolve_data_config(model)
    if args.data is None:
        if uses_image_folder(config):
            return fail(f"{args.name} is evaluated on an ImageNet-style folder: pass --data DIR", EXIT_USAGE)
        args.data = cifar10_source(None)  # $ANAS_ZOO_DATA, or one line saying how to set it
    batches, split = eval_batches(config, args.data, args.split, args.batch_size, args.limit, args.workers)
    result = {"name": args.name, "data": str(args.data), "split": split,
              **evaluate(model, batches, args.device, limit=args.limit, progress=not args.json)}
    if args.json:
        print_json(result)
        return
    print(f"{args.name} on {args.data} ({split}): top-1 {result['top1']:.2f} %  top-5 {result['top5']:.2f} %  "
          f"({result['samples']} images)")


def _extract(args: argparse.Namespace) -> int | None:
    """Ship a searched family: extract each genome, calibrate BN on held-out data, measure test top-1, save."""
    try:
        check_name_part(args.prefix, "--prefix")
        check_name_part(args.tag, "--tag")
    except ValueError as e:
        return fail(str(e), EXIT_USAGE)
    check_output_dir(args.out, "--out")
    if args.supernet_out:
        check_output_dir(Path(args.supernet_out).parent, "--supernet-out folder")
    try:
        family = json.loads(Path(args.family).read_text())
        genomes = [ArchConfig.from_dict(member["genome"]) for member in family]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return fail(f"--family {args.family}: not a family.json written by anas-search --family N ({e})", EXIT_USAGE)
    if not genomes:
        return fail(f"--family {args.family} holds no genomes; nothing to extract", EXIT_USAGE)
    names = [f"{args.prefix}_a{i}" for i in range(len(genomes))]
    extra = [{"search": {"held_out_top1": member.get("held_out_top1", member.get("accuracy")),
                         "held_out_samples": member.get("held_out_samples"), "budget_macs": member.get("budget_macs")}}
             for member in family]  # the whole-split re-score when anas-search made one, else the search's score
    supernet = args.supernet
    if args.supernet_out:
        supernet = slim_checkpoint(args.supernet, args.supernet_out, args.dtype)
    records = extract_weights(supernet, genomes, names, args.out, args.tag, args.data, extra=extra,
                              progress=not args.json, dtype=args.dtype)
    if args.json:
        print_json(records)
        return
    for r in records:
        m = r["metrics"][0]
        print(f"{r['name']}.{r['tag']:<10} res {r['resolution']:>3} {r['macs'] / 1e6:7.2f} MMACs "
              f"{r['params'] / 1e6:6.2f} M params  test top-1 {m['top1']:.2f} %  -> {Path(args.out)}")


def _finetune(args: argparse.Namespace) -> int | None:
    """Fine-tune one member standalone, distilled from a teacher; resumable; writes NAME.TAG to --out."""
    try:
        config = FinetuneConfig(
            model=args.model, teacher=args.teacher, epochs=args.epochs, tag=args.tag, out=args.out,
            state_dir=args.state_dir, data_path=args.data, batch_size=args.batch_size, lr=args.lr,
            weight_decay=args.weight_decay, kd_weight=args.kd_weight, cutmix=args.cutmix,
            trivial_augment=args.trivial_augment, threads=args.threads, device=str(args.device), dtype=args.dtype,
            progress=not args.json,
        )
        record = Finetuner(config).fit(args.max_steps)
    except FinetuneError as e:
        return fail(str(e), EXIT_USAGE)
    if record is None:
        print(f"stopped; rerun the same command to resume from {config.state_path}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print_json(record)
        return
    m = record["metrics"][0]
    print(f"{record['name']}.{record['tag']}: test top-1 {m['top1']:.2f} % (started from "
          f"{record['finetune']['from']}, teacher {record['finetune']['teacher']}) -> {args.out}")


def _soup(args: argparse.Namespace) -> int | None:
    """Average fine-tuned weight sets of one member into one (a model soup); writes NAME.TAG to --out."""
    try:
        record = soup(args.ingredients, args.out, args.tag, args.data, args.dtype, progress=not args.json)
    except FinetuneError as e:
        return fail(str(e), EXIT_USAGE)
    if args.json:
        print_json(record)
        return
    m = record["metrics"][0]
    best = max(i["top1"] for i in record["finetune"]["ingredients"])
    print(f"{record['name']}.{record['tag']}: test top-1 {m['top1']:.2f} % (soup of {len(args.ingredients)} weight "
          f"sets, the best of them {best:.2f} %) -> {args.out}")


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

    p = sub.add_parser("demo", help="the main job: evaluate, export and time the bundled CIFAR-10 family")
    p.add_argument("--threads", type=positive_int, default=2, help="intra-op threads for timing (default 2)")
    p.add_argument("--samples", type=positive_int, default=500, help="CIFAR-10 test images to evaluate (default 500)")
    p.add_argument("--data", help="CIFAR-10 archive or folder (default: $ANAS_ZOO_DATA; synthetic when absent)")
    p.add_argument("--out-dir", help="keep the exported ONNX file (and sidecar) in this folder")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_demo)

    p = sub.add_parser("publish", help="publish a model to the Hugging Face Hub (or a folder with --to-dir)")
    p.add_argument("name", help="registered model name, optionally with a weight tag (name.tag)")
    _add_hub_options(p)
    p.add_argument("--with-onnx", action="store_true", help="also export and publish ONNX files with sidecars")
    p.add_argument("--onnx-precisions", default="fp32",
                   help="comma-separated precisions for --with-onnx: fp32, fp16 (default fp32)")
    p.add_argument("--with-openvino", action="store_true",
                   help='also export and publish an fp32 OpenVINO IR (openvino/; pip install "anas_zoo[openvino]")')
    p.add_argument("--with-executorch", action="store_true",
                   help='also export and publish an fp32 XNNPACK ExecuTorch program (executorch/; '
                        'pip install "anas_zoo[executorch]")')
    p.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=True,
                   help="publish the resolved weights (default); --no-pretrained publishes seeded random "
                        "weights tagged 'untrained'")
    p.set_defaults(func=_publish)

    p = sub.add_parser("publish-results", help="publish latency/Pareto tables, JSON and plots as a Hub dataset repo")
    _add_hub_options(p)
    p.set_defaults(func=_publish_results)

    p = sub.add_parser("import-official", help="import the authors' AttentiveNAS/AlphaNet checkpoint (A0-A6)")
    p.add_argument("file", help="attentive_nas_pretrained.pth.tar or alphanet_pretrained.pth.tar")
    p.add_argument("--kind", choices=("attentivenas", "alphanet"), default="attentivenas",
                   help="which release the file is (default attentivenas)")
    p.add_argument("--calib-data", help="ImageNet-style train folder for BN recalibration (strongly advised)")
    p.add_argument("--calib-batches", type=positive_int, default=64, help="BN calibration batches per model (default 64)")
    p.add_argument("--calib-batch-size", type=positive_int, default=64, help="images per calibration batch (default 64)")
    p.add_argument("--models", default="a0,a1,a2,a3,a4,a5,a6", help="comma-separated subset of a0..a6 (default all)")
    p.add_argument("--store", help="weight store folder (default: $ANAS_ZOO_HOME/weights or the user cache)")
    p.add_argument("--workers", type=non_negative_int, default=2, help="data loading processes (default 2)")
    p.add_argument("--device", type=device_argument, default="cpu", help="torch device for BN calibration, e.g. cuda (default cpu)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_import_official)

    p = sub.add_parser("extract", help="turn a searched family (anas-search --family N) into weight sets")
    p.add_argument("--supernet", required=True, help="trained supernet checkpoint (anas-train's last.safetensors)")
    p.add_argument("--family", required=True, help="family.json written by anas-search --family N")
    p.add_argument("--prefix", required=True, help="model names are PREFIX_a0, PREFIX_a1, ... by increasing budget")
    p.add_argument("--tag", default="cifar10", help="weight tag (default cifar10): files are NAME.TAG.{safetensors,json}")
    p.add_argument("--out", default="checkpoints", help="output folder (default checkpoints/, the bundled folder)")
    p.add_argument("--data", help="CIFAR-10 archive or folder (default: $ANAS_ZOO_DATA)")
    p.add_argument("--supernet-out", help="first write the supernet without optimizer state here (for search and "
                                          "fine-tuning), then extract the family from that file")
    p.add_argument("--dtype", choices=tuple(STORAGE_DTYPES), default="float32",
                   help="storage precision of the weights and --supernet-out (default float32; float16 halves the "
                        "files, and the recorded accuracy is measured on the float16 weights)")
    p.add_argument("--json", action="store_true", help="print the metadata records as one JSON document")
    p.set_defaults(func=_extract)

    p = sub.add_parser("finetune", help="fine-tune a family member standalone, distilled from a teacher (resumable)")
    p.add_argument("model", help="starting weights NAME.TAG, e.g. attentivenas_cifar10_a0.cifar10")
    p.add_argument("--epochs", type=float, required=True, help="passes over the 45,000-image training part")
    p.add_argument("--teacher", help="teacher weights NAME.TAG, e.g. the largest member (default: a frozen copy of "
                                     "the starting weights)")
    p.add_argument("--out", default="checkpoints", help="folder of the resulting NAME.TAG weight set (default "
                                                         "checkpoints/, the bundled folder)")
    p.add_argument("--tag", default="cifar10_ft", help="weight tag of the result (default cifar10_ft)")
    p.add_argument("--state-dir", help="resumable state and metrics.jsonl (default runs/finetune/NAME.TAG); "
                                       "rerunning the same command resumes from it")
    p.add_argument("--data", help="CIFAR-10 archive or folder (default: $ANAS_ZOO_DATA)")
    p.add_argument("--batch-size", type=positive_int, default=128, help="images per step (default 128)")
    p.add_argument("--lr", type=float, default=0.05, help="peak learning rate per 256 images (default 0.05)")
    p.add_argument("--weight-decay", type=float, default=FinetuneConfig.weight_decay,
                   help=f"SGD weight decay of the conv and linear weights (default {FinetuneConfig.weight_decay:g}; "
                        "BN parameters and biases get none)")
    p.add_argument("--kd-weight", type=float, default=1.0, help="weight of the distillation loss (default 1)")
    p.add_argument("--cutmix", type=float, default=0.0,
                   help="share of steps whose batch is CutMix'ed: a box from another image of the batch pasted in, "
                        "label losses mixed by area; a regulariser for members that already fit their training "
                        "images (default 0: off)")
    p.add_argument("--trivial-augment", action="store_true",
                   help="TrivialAugment (one random operation at a random strength) on every training image, after "
                        "the crop and flip: a stronger regulariser than CutMix alone")
    p.add_argument("--threads", type=positive_int, default=2, help="intra-op threads (default 2)")
    p.add_argument("--device", type=device_argument, default="cpu",
                   help="torch device of the student and teacher, e.g. cuda (default cpu); a run stopped on one device "
                        "resumes on another, and the result is calibrated and measured on the CPU")
    p.add_argument("--dtype", choices=tuple(STORAGE_DTYPES), default="float16",
                   help="storage precision of the result (default float16; measured as stored)")
    p.add_argument("--max-steps", type=positive_int, help="stop (checkpointed) after this many steps in all")
    p.add_argument("--json", action="store_true", help="print the record as one JSON document (no progress bar)")
    p.set_defaults(func=_finetune)

    p = sub.add_parser("soup", help="average fine-tuned weight sets of one member into one (a model soup)")
    p.add_argument("ingredients", nargs="+", metavar="WEIGHTS",
                   help="two or more weight sets of one architecture: NAME.TAG or the path of a weight set's .json "
                        "record (say a fine-tuning run's --out folder)")
    p.add_argument("--out", default="checkpoints", help="folder of the resulting NAME.TAG weight set (default "
                                                         "checkpoints/, the bundled folder)")
    p.add_argument("--tag", default="cifar10_ft", help="weight tag of the result (default cifar10_ft)")
    p.add_argument("--data", help="CIFAR-10 archive or folder (default: $ANAS_ZOO_DATA)")
    p.add_argument("--dtype", choices=tuple(STORAGE_DTYPES), default="float16",
                   help="storage precision of the result (default float16; measured as stored)")
    p.add_argument("--json", action="store_true", help="print the record as one JSON document (no progress bar)")
    p.set_defaults(func=_soup)

    p = sub.add_parser("eval", help="top-1/top-5 of a pretrained model on ImageNet-style or CIFAR-10 data")
    p.add_argument("name", help="registered model name, optionally with a weight tag (name.tag)")
    p.add_argument("--data", help="ImageNet-style folder (or its parent) or the CIFAR-10 archive/folder (CIFAR-10 "
                                  "models: default $ANAS_ZOO_DATA)")
    p.add_argument("--split", choices=("test", "val"), help="split (default: val for ImageNet, test for CIFAR-10)")
    p.add_argument("--batch-size", type=positive_int, default=50, help="images per batch (default 50)")
    p.add_argument("--limit", type=positive_int, help="evaluate only this many images (an evenly spread subset)")
    p.add_argument("--workers", type=non_negative_int, default=2, help="data loading processes (default 2)")
    p.add_argument("--device", type=device_argument, default="cpu", help="torch device, e.g. cuda (default cpu)")
    p.add_argument("--json", action="store_true", help="print one JSON document: top1, top5, samples")
    p.set_defaults(func=_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
