"""Every runtime's batch-1 latency side by side in one run, as ratios to ONNX Runtime fp32, with the int8
accuracy drop of trained CIFAR-10 models and a profile of where int8 time goes.

    python benchmarks/runtime_ratios.py --profile --out benchmarks/results/MACHINE/runtime_ratios.json

Each model (default: attentivenas_a0, the paper's ImageNet A0, and the bundled CIFAR-10 family's smallest and
largest members) is prepared on every backend × precision by :func:`anas_zoo.bench.backends.prepare`: the files
the exporters ship, int8 calibrated on CIFAR-10 training images (ONNX Runtime static QDQ, NNCF for OpenVINO,
XNNPACK PT2E for ExecuTorch). All of them are then timed in alternating rounds, in a new random order each
round, so background load hits every runtime alike; each p50 is reported with its ratio to ONNX Runtime fp32
(and the range of that ratio over the rounds). A model with trained CIFAR-10 weights also gets every runtime's
top-1 on the CIFAR-10 test split, measured on the very session that was timed (batch 1), and int8's drop
against the same runtime's fp32. A model without local weights keeps random ones with BatchNorm re-estimated
on real images: latency does not depend on the weights' values, accuracy would mean nothing and is not reported.

``--profile`` adds ONNX Runtime's per-op profile of the fp32 and int8 files (time per op type, and whether it
runs on 8-bit integers, in float, or converts between them), OpenVINO's per-layer kernels and precisions, and
the CPU's int8 dot-product instructions (VNNI, AMX): what limits int8 where it is not ≤ 0.5× ORT fp32.
Goal from issue 22: the best int8 ≤ 0.5× ORT fp32 with ≤ 1 point top-1 drop on the bundled family.
Exit status 0 when every runtime ran, 1 when one failed (recorded in the output), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
from tqdm import tqdm

import anas_zoo
from anas_zoo.bench.backends import BACKENDS, UnsupportedConfig, prepare, require_runtime, set_torch_threads
from anas_zoo.bench.environment import capture_environment
from anas_zoo.bench.stats import summarize
from anas_zoo.cli.common import EXIT_FAILED, EXIT_OK, at_least, comma_list, print_json, run
from anas_zoo.export import openvino as openvino_export
from anas_zoo.export.quantize import check_data_source, image_batches
from anas_zoo.export.report import first_line
from anas_zoo.export.session import ort_session
from anas_zoo.export.validation import runtime_accuracy
from anas_zoo.fileio import atomic_write
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.static import StaticNet
from anas_zoo.timing import collect_samples, interleaved_samples
from anas_zoo.train.calibrate import calibrate_bn
from anas_zoo.train.data import DataError, cifar10_source
from anas_zoo.zoo import find_weights, get_entry, load_record

MODELS = ("attentivenas_a0", "attentivenas_cifar10_a0", "attentivenas_cifar10_a6")
REFERENCE = ("ort", "fp32")
#: Issue 22's goal: int8 p50 at most this fraction of ORT fp32's, losing at most this many top-1 points.
TARGET_RATIO, TARGET_DROP = 0.5, 1.0
#: The CPU instructions that multiply-accumulate 8-bit integers several times faster than fp32 FMAs.
INT8_ISA = ("avx512_vnni", "avx_vnni", "amx_int8")
CONVERT_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")
#: Calls per profiled session (each node's time is its median over them).
PROFILE_RUNS = 50


def _model(name: str | None, checkpoint: str | None, calib: str) -> tuple[StaticNet, str, bool]:
    """(model, label, has trained weights): a registered name or a weight-set record; a model without local weights
    gets its BatchNorm statistics re-estimated on real images so that activations have realistic ranges."""
    if checkpoint:
        model = load_record(checkpoint)
        return model, f"{model.pretrained_cfg.name} ({Path(checkpoint).name})", True
    entry = get_entry(name)
    trained = bool(entry.weights) and find_weights(name) is not None
    model = anas_zoo.load(name, pretrained=trained)
    if not trained:
        batches = [x for x, _ in image_batches(calib, resolve_data_config(model), 64, "train", 16)]
        calibrate_bn(model, batches, len(batches))
    return model.eval(), name, trained


def _input(resolution: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((1, 3, resolution, resolution), dtype=np.float32)


def _ort_profile(path: str, resolution: int, threads: int, prefix: Path) -> dict:
    """ONNX Runtime's per-node profile of :data:`PROFILE_RUNS` calls of the file at ``path``: each node's median
    time, summed per op type (and conv kernel). An op runs on 8-bit integers (``int8``) or in float by the element
    type of its first input; ``convert`` is (de)quantization between them."""
    kernels = _conv_kernels(path)
    session = ort_session(path, threads, profile=prefix)
    feed = {session.get_inputs()[0].name: _input(resolution)}
    for _ in range(PROFILE_RUNS):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    nodes: dict[str, dict] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            node = nodes.setdefault(e["name"], {"args": e["args"], "us": []})
            node["us"].append(e["dur"])
    ops: dict[tuple, dict] = defaultdict(lambda: {"nodes": 0, "ms": 0.0})
    for name, node in nodes.items():
        op = ops[_op_key(name, node["args"], kernels)]
        op["nodes"] += 1
        op["ms"] += float(np.median(node["us"])) / 1000
    total = sum(o["ms"] for o in ops.values())
    rows = sorted(({"op": op, "conv_kernel": kernel, "kind": kind, **v, "share": v["ms"] / total}
                   for (op, kernel, kind), v in ops.items()), key=lambda r: -r["ms"])
    kinds = {k: sum(r["share"] for r in rows if r["kind"] == k) for k in ("int8", "float", "convert", "other")}
    return {"file": Path(path).name, "runs": PROFILE_RUNS, "node_ms": total, "share_by_kind": kinds, "ops": rows,
            "float_ops": sorted({r["op"] for r in rows if r["kind"] == "float"})}


def _conv_kernels(path: str) -> dict[str, str]:
    """Conv node name -> 'depthwise' or its kernel ('1x1', '3x3'), from the attributes of the file's graph."""
    kernels = {}
    for node in onnx.load(path).graph.node:
        if node.op_type == "Conv":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            kernels[node.name] = ("depthwise" if attrs.get("group", 1) > 1
                                  else "x".join(str(k) for k in attrs.get("kernel_shape", ())))
    return kernels


def _op_key(name: str, args: dict, kernels: dict[str, str]) -> tuple[str, str, str]:
    """(op type, conv kernel or '', kind) of the profiled node ``name``."""
    op = args["op_name"]
    inputs = [next(iter(t.items())) for t in args.get("input_type_shape", [])]
    kernel = ""
    if "Conv" in op and len(inputs) > 1 and len(inputs[1][1]) == 4:  # a float conv lists its weight second
        weight = inputs[1][1]
        kernel = "depthwise" if weight[1] == 1 else f"{weight[2]}x{weight[3]}"
    elif "Conv" in op:  # an int8 conv's weight is pre-packed: ONNX Runtime names the node after the graph's conv
        source = max((n for n in kernels if name.startswith(n)), key=len, default=None)
        kernel = kernels[source] if source else ""
    if op in CONVERT_OPS:
        kind = "convert"
    elif inputs and inputs[0][0] in ("uint8", "int8"):
        kind = "int8"
    elif inputs and inputs[0][0] in ("float", "float16"):
        kind = "float"
    else:
        kind = "other"
    return op, kernel, kind


def _openvino_profile(xml: str, resolution: int, threads: int) -> dict:
    """OpenVINO CPU plugin's per-layer counters of the last of :data:`PROFILE_RUNS` calls: time per (layer type,
    kernel), the kernel's name ending in the precision it ran in (``..._I8``, ``..._f32``)."""
    compiled = openvino_export.compile_cpu(xml, threads, profile=True)
    request = compiled.create_infer_request()
    feed = {0: _input(resolution)}
    for _ in range(PROFILE_RUNS):
        request.infer(feed)
    layers: dict[tuple, dict] = defaultdict(lambda: {"layers": 0, "ms": 0.0})
    for info in request.get_profiling_info():
        if info.status == info.Status.EXECUTED:
            layer = layers[(info.node_type, info.exec_type)]
            layer["layers"] += 1
            layer["ms"] += info.real_time.total_seconds() * 1000
    total = sum(v["ms"] for v in layers.values())
    rows = sorted(({"type": t, "exec_type": e, **v, "share": v["ms"] / total} for (t, e), v in layers.items()),
                  key=lambda r: -r["ms"])
    by_precision: dict[str, float] = defaultdict(float)
    for r in rows:
        by_precision[_kernel_precision(r["exec_type"])] += r["share"]
    return {"layer_ms": total, "share_by_precision": dict(by_precision), "layers": rows}


def _kernel_precision(exec_type: str) -> str:
    """The precision an OpenVINO CPU kernel ran in, from its name (``brgconv_avx512_I8`` -> ``i8``)."""
    return exec_type.rsplit("_", 1)[-1].lower()


def _runtime_rows(order: list, prepared: dict, failed: dict, samples: list, keys: list) -> list[dict]:
    """One record per (backend, precision) of ``order``: p50 and the rest of :func:`summarize`, ratio to ORT fp32
    (overall, and its range over the rounds), or why it did not run."""
    rounds = {k: [float(np.median(r)) for r in s] for k, s in zip(keys, samples)}
    stats = {k: summarize([t for r in s for t in r]) for k, s in zip(keys, samples)}
    reference = stats.get(REFERENCE)
    rows = []
    for backend, precision in order:
        key = (backend, precision)
        if key in failed:
            rows.append({"backend": backend, "precision": precision, **failed[key]})
            continue
        row = {"backend": backend, "precision": precision, "status": "ok", **stats[key], "ratio_to_ort_fp32": None,
               "round_ratio_range": None, "cold_start": prepared[key].cold_start, "details": prepared[key].details}
        if reference:
            ratios = np.array(rounds[key]) / np.array(rounds[REFERENCE])
            row["ratio_to_ort_fp32"] = row["p50_ms"] / reference["p50_ms"]
            row["round_ratio_range"] = [float(ratios.min()), float(ratios.max())]
        rows.append(row)
    return rows


def _accuracy(rows: list[dict], prepared: dict, model: StaticNet, data: str, samples: int, progress: bool) -> None:
    """Top-1/top-5 of each prepared runtime (at the batch it was timed at) into its row, and int8's drop in points
    against the same backend's fp32."""
    config = resolve_data_config(model)
    for row in rows:
        if row["status"] == "ok":
            key = (row["backend"], row["precision"])
            try:
                row["accuracy"] = runtime_accuracy(prepared[key].predict, data, config, samples, batch=1,
                                                   progress=progress)
            except Exception as e:  # noqa: BLE001 - a runtime that cannot evaluate is recorded, the rest still run
                row["accuracy_error"] = first_line(e)
    top1 = {(r["backend"], r["precision"]): r["accuracy"]["top1"] for r in rows if "accuracy" in r}
    for row in rows:
        if row["precision"] == "int8" and (row["backend"], "int8") in top1 and (row["backend"], "fp32") in top1:
            row["drop_points"] = top1[(row["backend"], "fp32")] - top1[(row["backend"], "int8")]


def _best_int8(rows: list[dict]) -> dict | None:
    """The fastest int8 runtime relative to ORT fp32, and whether it meets the goal."""
    int8 = [r for r in rows if r["precision"] == "int8" and r.get("ratio_to_ort_fp32") is not None]
    if not int8:
        return None
    best = min(int8, key=lambda r: r["ratio_to_ort_fp32"])
    drop = best.get("drop_points")
    return {"backend": best["backend"], "ratio_to_ort_fp32": best["ratio_to_ort_fp32"], "drop_points": drop,
            "meets_latency": best["ratio_to_ort_fp32"] <= TARGET_RATIO,
            "meets_accuracy": None if drop is None else drop <= TARGET_DROP}


def measure(name: str | None, checkpoint: str | None, args: argparse.Namespace, workdir: Path, isa: list[str]
            ) -> dict:
    """Everything this benchmark reports for one model."""
    say = (lambda message: None) if args.quiet else (lambda message: tqdm.write(message, file=sys.stderr))
    model, label, trained = _model(name, checkpoint, args.calib_data)
    prepared, failed = {}, {}
    for backend in args.backends:
        for precision in args.precision:
            try:
                prepared[(backend, precision)] = prepare(
                    backend, model, batch=1, resolution=model.resolution, precision=precision, threads=args.threads,
                    workdir=workdir / f"{backend}-{precision}", calib_data=args.calib_data, exporter=args.exporter)
                cold = prepared[(backend, precision)].cold_start
                say(f"{label}: {backend} {precision} ready ({', '.join(f'{k} {v:.3g}' for k, v in cold.items())})")
            except UnsupportedConfig as e:
                failed[(backend, precision)] = {"status": "unsupported", "error": str(e)}
            except Exception as e:  # noqa: BLE001 - a runtime that fails is recorded, the others are still measured
                failed[(backend, precision)] = {"status": "error", "error": first_line(e)}
                say(f"{label}: {backend} {precision} failed: {first_line(e)}")
    keys = list(prepared)
    for key in keys:
        collect_samples(prepared[key].call, warmup=args.warmup, min_iters=1)
    with tqdm(total=args.rounds, desc=f"{label} rounds", unit="round", file=sys.stderr,
              disable=args.quiet or None) as bar:
        samples = interleaved_samples([prepared[k].call for k in keys], rounds=args.rounds, iters=args.per_round,
                                      shuffle_seed=0, progress=lambda done: bar.update(done - bar.n))
    order = [(b, p) for b in args.backends for p in args.precision]
    rows = _runtime_rows(order, prepared, failed, samples, keys)
    result = {"model": label, "trained_weights": trained, "resolution": model.resolution, "runtimes": rows}
    if trained and model.num_classes == 10 and args.eval_samples:
        _accuracy(rows, prepared, model, args.calib_data, args.eval_samples, progress=not args.quiet)
        result["eval_samples"] = args.eval_samples
    result["best_int8"] = _best_int8(rows)
    if args.profile:
        say(f"{label}: profiling")
        result["profile"] = _profile(prepared, model.resolution, args.threads, workdir, isa)
    return result


def _profile(prepared: dict, resolution: int, threads: int, workdir: Path, isa: list[str]) -> dict:
    """ONNX Runtime's per-op profile of each precision, OpenVINO's per-layer kernels of int8, the CPU's int8 ISA."""
    profile = {"isa": {flag: flag in isa for flag in INT8_ISA}, "ort": {}}
    for (backend, precision), p in prepared.items():
        if backend == "ort":
            profile["ort"][precision] = _ort_profile(p.details["export_report"]["path"], resolution, threads,
                                                     workdir / f"profile-{precision}")
        elif backend == "openvino" and precision == "int8":
            profile["openvino_int8"] = _openvino_profile(p.details["export_report"]["path"], resolution, threads)
    return profile


# ----- output ------------------------------------------------------------------------------------
def _percent(share: float) -> str:
    return f"{100 * share:.0f} %"


def _op_label(row: dict) -> str:
    return f"{row['op']} ({row['conv_kernel']})" if row["conv_kernel"] else row["op"]


def _profile_lines(profile: dict) -> list[str]:
    """Where int8 time goes, as text: kinds of ops per precision, float ops left in int8, conv time per shape."""
    lines = ["CPU int8 instructions: " + ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in profile["isa"].items())]
    ort = profile["ort"]
    for precision, p in ort.items():
        kinds = ", ".join(f"{k} {_percent(v)}" for k, v in p["share_by_kind"].items() if v)
        top = ", ".join(f"{_op_label(r)} {_percent(r['share'])}" for r in p["ops"][:5])
        lines.append(f"ORT {precision}: {p['node_ms']:.2f} ms in nodes: {kinds}; top: {top}")
    if "int8" in ort:
        left = [r for r in ort["int8"]["ops"] if r["kind"] in ("float", "convert")]
        lines.append("ORT int8, not on integers: " + (", ".join(
            f"{_op_label(r)} ×{r['nodes']} {_percent(r['share'])}" for r in left) or "nothing"))
    if set(ort) == {"fp32", "int8"}:
        conv = {p: defaultdict(float) for p in ort}
        for precision, p in ort.items():
            for r in p["ops"]:
                if r["conv_kernel"]:
                    conv[precision][r["conv_kernel"]] += r["ms"]
        lines.append("ORT conv ms fp32 → int8: " + ", ".join(
            f"{s} {conv['fp32'][s]:.2f} → {conv['int8'][s]:.2f}" for s in sorted(set(conv["fp32"]) | set(conv["int8"]))))
    if "openvino_int8" in profile:
        ov = profile["openvino_int8"]
        left = [r for r in ov["layers"] if _kernel_precision(r["exec_type"]) not in ("i8", "u8")][:4]
        lines.append("OpenVINO int8 layer time by kernel precision: " + ", ".join(
            f"{k} {_percent(v)}" for k, v in sorted(ov["share_by_precision"].items(), key=lambda kv: -kv[1]))
            + "; largest not in int8: " + (", ".join(
                f"{r['type']} {r['exec_type']} ×{r['layers']} {_percent(r['share'])}" for r in left) or "none"))
    return lines


def table(document: dict) -> str:
    """The Markdown summary: every runtime's p50 and ratio per model, the best int8 against the goal, profiles."""
    s, env = document["settings"], document["environment"]
    lines = [f"# Runtime latency ratios to ONNX Runtime fp32: batch 1, {s['threads']} thread(s), {s['rounds']} alternating "
             f"rounds × {s['per_round']} calls", "",
             f"{env['cpu']['model']} ({env['cpu']['logical_cores']} logical cores; ISA {' '.join(env['cpu']['isa'])})", "",
             "| model | runtime | p50 ms | × ORT fp32 | range over rounds | top-1 % | int8 drop (points) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for m in document["models"]:
        for r in m["runtimes"]:
            runtime = f"{r['backend']} {r['precision']}"
            if r["status"] != "ok":
                lines.append(f"| {m['model']} | {runtime} | {r['status']}: {r['error']} | | | | |")
                continue
            ratio = "-" if r["ratio_to_ort_fp32"] is None else f"{r['ratio_to_ort_fp32']:.2f}"
            spread = "-" if r["round_ratio_range"] is None else "{:.2f}–{:.2f}".format(*r["round_ratio_range"])
            top1 = f"{r['accuracy']['top1']:.2f}" if "accuracy" in r else "-"
            drop = f"{r['drop_points']:.2f}" if "drop_points" in r else "-"
            top1 = f"error: {r['accuracy_error']}" if "accuracy_error" in r else top1
            lines.append(f"| {m['model']} | {runtime} | {r['p50_ms']:.3f} | {ratio} | {spread} | {top1} | {drop} |")
    lines.append("")
    for m in document["models"]:
        best = m["best_int8"]
        if best:
            drop = "" if best["drop_points"] is None else (
                f", drop {best['drop_points']:.2f} points ({'meets' if best['meets_accuracy'] else 'misses'} "
                f"≤ {TARGET_DROP:g})")
            lines.append(f"- {m['model']}: best int8 is {best['backend']}, {best['ratio_to_ort_fp32']:.2f}× ORT fp32 "
                         f"({'meets' if best['meets_latency'] else 'misses'} ≤ {TARGET_RATIO:g}){drop}")
        if "eval_samples" in m:
            lines.append(f"  (top-1 on {m['eval_samples']} CIFAR-10 test images, batch 1, each runtime's timed session)")
        if "profile" in m:
            lines += [f"  - {line}" for line in _profile_lines(m["profile"])]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=list(MODELS), help="registered names (default: %(default)s)")
    parser.add_argument("--checkpoint", action="append", default=[], help="weight set .json (e.g. a CIFAR-10 model)")
    parser.add_argument("--backends", type=comma_list(BACKENDS), default=["torch", "ort", "openvino", "executorch"],
                        help=f"comma-separated from {', '.join(BACKENDS)} (default torch,ort,openvino,executorch); "
                             "ort is the reference")
    parser.add_argument("--precision", type=comma_list(("fp32", "int8")), default=["fp32", "int8"],
                        help="fp32,int8 (default both; fp32 is the reference)")
    parser.add_argument("--threads", type=at_least(1), default=2)
    parser.add_argument("--rounds", type=at_least(1), default=20, help="alternating rounds (default 20)")
    parser.add_argument("--per-round", type=at_least(1), default=20, help="timed calls per runtime a round (default 20)")
    parser.add_argument("--warmup", type=at_least(0), default=10, help="untimed calls per runtime first (default 10)")
    parser.add_argument("--eval-samples", type=at_least(0), default=10000,
                        help="CIFAR-10 test images per runtime for top-1 of trained CIFAR-10 models (0: none)")
    parser.add_argument("--calib-data", help="int8 calibration and test images (default: $ANAS_ZOO_DATA, the "
                                             "CIFAR-10 archive)")
    parser.add_argument("--exporter", default="torchscript", choices=("auto", "dynamo", "torchscript"),
                        help="ONNX exporter of the ort backend (default torchscript: the same graph, faster)")
    parser.add_argument("--profile", action="store_true",
                        help="add ORT per-op and OpenVINO per-layer profiles and the CPU's int8 instructions")
    parser.add_argument("--json", action="store_true", help="print the JSON document instead of the table")
    parser.add_argument("--out", help="write the JSON document to this file and the table beside it (.md)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if "ort" not in args.backends or "fp32" not in args.precision:
        parser.error("ratios are to ONNX Runtime fp32: --backends needs ort and --precision fp32")
    try:
        args.calib_data = str(cifar10_source(args.calib_data))
    except DataError as e:
        parser.error(str(e))
    return run(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    check_data_source(args.calib_data, "calibration")
    for backend in args.backends:
        for precision in args.precision:
            require_runtime(backend, precision)
    threads = set_torch_threads(args.threads, 1)
    environment = capture_environment(args.threads)
    jobs = [(n, None) for n in args.models] + [(None, c) for c in args.checkpoint]
    models = []
    with tempfile.TemporaryDirectory(prefix="anas_ratios_") as tmp:
        for i, (name, checkpoint) in enumerate(jobs):
            models.append(measure(name, checkpoint, args, Path(tmp) / str(i), environment["cpu"]["isa"]))
    settings = {"batch": 1, **{k: getattr(args, k) for k in ("threads", "rounds", "per_round", "warmup", "eval_samples",
                                                              "calib_data", "exporter", "backends", "precision")},
                "order": "a new random order of the runtimes each round (seed 0)", "torch_threads": threads}
    document = {"benchmark": "runtime_ratios", "settings": settings, "environment": environment,
                "target": {"int8_over_ort_fp32": TARGET_RATIO, "drop_points": TARGET_DROP}, "models": models}
    text = table(document)
    if args.out:
        atomic_write(args.out, json.dumps(document, indent=2, default=str) + "\n")
        atomic_write(Path(args.out).with_suffix(".md"), text)
    if args.json:
        print_json(document)
    else:
        print(text, end="")
    errors = [f"{m['model']}/{r['backend']} {r['precision']}: {r.get('error') or r['accuracy_error']}"
              for m in models for r in m["runtimes"] if r["status"] == "error" or "accuracy_error" in r]
    if errors:
        print("error: " + "; ".join(errors), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
