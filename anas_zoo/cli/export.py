"""``anas-export``: write validated ONNX files (fp32, fp16, static int8), OpenVINO IR (fp32, fp16, NNCF int8) or
ExecuTorch programs (XNNPACK, fp32 or PT2E int8) of zoo models or any genome.

Every subcommand checks its output against PyTorch in its own runtime, writes the report as JSON beside
it (``--json`` prints it), writes nothing when the check fails, and reports bad input in one line.

Weights: by default the model's local pretrained weights when they exist, else its random initial
weights with a warning (the file's metadata says ``weights: random-init``); ``--pretrained`` insists
on weights and fails with instructions when they are missing; ``--checkpoint`` loads a weight set.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from anas_zoo.cli.common import print_json, run
from anas_zoo.export import executorch as executorch_export
from anas_zoo.export import openvino as openvino_export
from anas_zoo.export.onnx import (
    PRECISIONS,
    ExportCheckError,
    ExportError,
    ExportReport,
    to_onnx,
)
from anas_zoo.export.onnx_graph import DEFAULT_OPSET, EXPORTERS, MAX_OPSET, MIN_OPSET
from anas_zoo.space import ArchConfig, InvalidArchError
from anas_zoo.static import StaticNet


def _model_from_genome(path: str) -> StaticNet:
    """A StaticNet from a JSON genome file: a bare genome, or a record with ``genome`` [+ ``space``, ``num_classes``]."""
    try:
        document = json.loads(Path(path).expanduser().read_text())
    except FileNotFoundError:
        raise ExportError(f"genome file '{path}' does not exist") from None
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not UTF-8 text at all
        raise ExportError(f"cannot read genome file '{path}': {e}") from None
    if not isinstance(document, dict):
        raise InvalidArchError(f"genome file '{path}' must hold a JSON object")
    genome = document.get("genome", document)
    return StaticNet(ArchConfig.from_dict(genome), document.get("space", "attentivenas"),
                     document.get("num_classes"))


def _summary(report: ExportReport) -> str:
    batch = "dynamic batch" if report.dynamic_batch else f"batch {report.batch}"
    how = f"opset {report.opset}, {report.exporter} exporter" if report.format == "onnx" else report.format
    lines = [(f"wrote {report.path} ({report.precision}, {how}, {batch}, "
             f"{report.resolution}x{report.resolution}, {report.size_bytes / 1e6:.2f} MB)"),
             *(f"  file     {Path(report.path).parent / name}" for name in report.files[1:]),
             f"  report   {report.sidecar}",
             f"  weights  {report.metadata['weights']} (licence {report.metadata['license']})"]
    if report.fallback_reason and report.exporter == "torchscript":
        lines.append(f"  fallback {report.fallback_reason}")
    if report.validation is None:
        lines.append("  check    skipped (--no-check)")
    else:
        for row in report.validation["parity"]:
            lines.append(f"  check    {row['input']:<6} batch {row['batch']}: max|diff| {row['max_abs_diff']:.3g} "
                         f"mean {row['mean_abs_diff']:.3g} top-1 agreement {row['top1_agreement']:.0%} "
                         f"{'ok' if row['passed'] else 'FAILED'}")
        for label, acc in report.validation.get("accuracy", {}).items():
            lines.append(f"  accuracy {label}: top-1 {acc['top1']:.2f} % on {acc['samples']} images")
        if len(report.validation.get("accuracy", {})) == 2:
            top1 = [acc["top1"] for acc in report.validation["accuracy"].values()]
            lines.append(f"  accuracy drop {top1[0] - top1[1]:.2f} points")
        for label, lat in report.validation.get("latency_ms", {}).items():
            lines.append(f"  latency  {label}: {lat['median']:.2f} ms median (batch {lat['batch']}, "
                         f"{lat['threads']} threads)")
    return "\n".join(lines)


def _source(args: argparse.Namespace) -> dict:
    """The model, weight and data arguments every subcommand shares, as exporter keyword arguments."""
    data = {"calib_data": args.calib_data, "calib_samples": args.calib_samples} if "calib_data" in args else {}
    return {
        "model": _model_from_genome(args.arch) if args.arch else args.model,
        "name": Path(args.arch).stem if args.arch else None,
        "pretrained": args.pretrained, "checkpoint": args.checkpoint, "resolution": args.resolution,
        "precision": args.precision, **data, "eval_data": args.eval_data, "eval_samples": args.eval_samples,
        "check": args.check, "atol": args.atol, "keep_failed": args.keep_failed, "progress": not args.json,
    }


def _export(args: argparse.Namespace, export: Callable[..., ExportReport], **options) -> None:
    try:
        report = export(output=args.output, **_source(args), **options)
    except ExportCheckError as e:
        if args.json:
            print_json(e.report.to_dict())
        raise
    if args.json:
        print_json(report.to_dict())
    else:
        print(_summary(report))


def _onnx(args: argparse.Namespace) -> None:
    _export(args, to_onnx, opset=args.opset, batch=1 if args.batch is None else args.batch,
            dynamic_batch=args.batch is None, exporter=args.exporter, exclude_nodes=args.exclude_nodes)


def _openvino(args: argparse.Namespace) -> None:
    _export(args, openvino_export.to_openvino)


def _executorch(args: argparse.Namespace) -> None:
    _export(args, executorch_export.to_executorch)


def _add_common(p: argparse.ArgumentParser, output: str, output_help: str, precisions, runtime: str,
                calibration: bool = True) -> None:
    """The arguments every subcommand shares: model, weights, output, precision, data, check and report."""
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="registered model name, optionally with .tag (anas-zoo list)")
    source.add_argument("--arch", metavar="GENOME.json", help="any genome (bare, or a record with 'genome')")
    p.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=None,
                   help="load the model's pretrained weights (default: when present locally, else random weights)")
    p.add_argument("--checkpoint", metavar="FILE", help="weight set to load (.json record or .safetensors)")
    p.add_argument("--output", required=True, metavar=output, help=output_help)
    p.add_argument("--resolution", type=int, metavar="R", help="input size (default: the model's own)")
    p.add_argument("--precision", choices=precisions, default="fp32")
    if calibration:
        p.add_argument("--calib-data", metavar="DIR", help="int8 calibration images: image folder or CIFAR-10 archive")
        p.add_argument("--calib-samples", type=int, default=256, metavar="N", help="calibration images (default 256)")
    p.add_argument("--eval-data", metavar="DIR", help="labelled images (folder or CIFAR-10 archive: test split) "
                                                     "for top-1 of fp32 vs the exported precision")
    p.add_argument("--eval-samples", type=int, default=1000, metavar="N", help="evaluation images (default 1000)")
    p.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                   help=f"validate in {runtime} against PyTorch (default on)")
    p.add_argument("--atol", type=float, default=1e-4, help="fp32 max |diff| allowed (default 1e-4)")
    p.add_argument("--keep-failed", action="store_true", help="keep the file when the check fails")
    p.add_argument("--json", action="store_true", help="print the report as one JSON document")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anas-export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("onnx", help="export to ONNX and check it against PyTorch with ONNX Runtime")
    _add_common(p, "FILE.onnx", "output file; FILE.json gets the report", PRECISIONS,
                "the ONNX checker and ONNX Runtime")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET})")
    batch = p.add_mutually_exclusive_group()
    batch.add_argument("--batch", type=int, metavar="N", help="fixed batch size")
    batch.add_argument("--dynamic-batch", action="store_true", help="free batch axis (the default)")
    p.add_argument("--exclude-nodes", nargs="+", default=[], metavar="NODE",
                   help="int8: graph nodes to keep in float (names as in the fp32 graph)")
    p.add_argument("--exporter", choices=EXPORTERS, default="auto",
                   help="auto: dynamo, falling back to TorchScript (default)")
    p.set_defaults(func=_onnx)

    p = sub.add_parser("openvino", help='export to OpenVINO IR and check it in OpenVINO (pip install "anas_zoo[openvino]")')
    _add_common(p, "DIR", "output folder: DIR/model.xml, DIR/model.bin and the report DIR/model.json",
                openvino_export.PRECISIONS, "OpenVINO's CPU runtime")
    p.set_defaults(func=_openvino)

    p = sub.add_parser("executorch",
                       help='export an XNNPACK-delegated ExecuTorch program (pip install "anas_zoo[executorch]")')
    _add_common(p, "FILE.pte", "output file; FILE.json gets the report", executorch_export.PRECISIONS,
                "ExecuTorch's runtime")
    p.set_defaults(func=_executorch)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    logger = logging.getLogger("anas_zoo.export")
    logger.addHandler(handler)
    try:
        return run(lambda: args.func(args))
    finally:
        logger.removeHandler(handler)


if __name__ == "__main__":
    raise SystemExit(main())
