"""Hardware-aware Pareto tables: accuracy × MACs × params × measured latency, one front per setting.

A front is computed separately for every (device, runtime, precision, threads, batch) and accuracy
dataset: latencies from different machines, runtimes or batch sizes, and top-1 on ImageNet and on
CIFAR-10, are never compared with each other. A model is on the
front when no other model of its group is at least as accurate *and* at least as fast (p50), with
one of the two strictly better. Accuracy says where it comes from: ``reported`` (a paper's figure)
or ``measured`` (evaluated by us on our weights); MACs are the papers' definition (analytic) with
fvcore's trace-based count beside them as a cross-check.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from anas_zoo.bench.runner import result_row
from anas_zoo.fileio import atomic_write
from anas_zoo.pareto import Panel, Series, pareto_front, plot_panels

FRONT_KEYS = ("device_name", "device", "backend", "precision", "threads", "batch", "accuracy_dataset")
TABLE_COLUMNS = (
    "device_name", "device", "backend", "precision", "threads", "batch", "scenario", "model", "resolution",
    "accuracy", "accuracy_source", "accuracy_dataset", "macs", "macs_fvcore", "params", "p50_ms", "p90_ms", "p99_ms", "mean_ms",
    "cv", "noisy", "images_per_s", "on_front",
)


def group_key(row: dict) -> tuple:
    return tuple(row[k] for k in FRONT_KEYS)


def _groups(rows: Sequence[dict]) -> dict[tuple, list[dict]]:
    """Rows by their front's setting, in first-seen order."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[group_key(row)].append(row)
    return groups


def _fvcore_macs(model: dict) -> int | None:
    """fvcore's count for a model spec (None when fvcore cannot trace it)."""
    from anas_zoo.flops import fvcore_macs
    from anas_zoo.static import StaticNet

    net = StaticNet(model["genome"], model["space"], model["num_classes"], resolution=model["resolution"])
    try:
        return fvcore_macs(net, model["resolution"])
    except Exception:  # noqa: BLE001 - a cross-check that cannot run is reported as missing, not fatal
        return None


def pareto_table(runs: Sequence[dict], fvcore: bool = True) -> list[dict]:
    """Rows of successful runs with accuracy, both MACs counts and a per-group ``on_front`` flag."""
    rows, cache = [], {}
    for run in runs:
        if run.get("status") != "ok":
            continue
        row = result_row(run)
        model = run["job"]["model"]
        if fvcore:
            key = (model["space"], repr(model["genome"]), model["num_classes"], model["resolution"])
            if key not in cache:
                cache[key] = _fvcore_macs(model)
            row["macs_fvcore"] = cache[key]
        else:
            row["macs_fvcore"] = None
        rows.append(row)
    for members in _groups(rows).values():
        for row, flag in zip(members, pareto_front([(r["p50_ms"], r["accuracy"]) for r in members])):
            row["on_front"] = flag
    return sorted(rows, key=lambda r: (tuple(str(v) for v in group_key(r)), r["p50_ms"]))


def _fmt(value, digits: int = 2) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def to_markdown(rows: Sequence[dict], environment: dict | None = None) -> str:
    """One Markdown table per (device, runtime, precision, threads, batch, accuracy dataset), front in bold."""
    lines = ["# Hardware-aware Pareto tables", ""]
    if environment:
        cpu, pk = environment["cpu"], environment["packages"]
        gpus = ", ".join(g["name"] for g in environment["gpus"]) or "none"
        lines += [
            f"- CPU: {cpu['model']} ({cpu['physical_cores']} physical / {cpu['logical_cores']} logical cores, "
            f"SMT {cpu['smt']}, governor {cpu['governor']}, virtualized {cpu['virtualized']}); GPU: {gpus}",
            f"- Python {environment['python']}, torch {pk['torch']}, onnxruntime {pk['onnxruntime']}, "
            f"onnx {pk['onnx']}; anas_zoo {environment['anas_zoo']['version']} "
            f"@ {str(environment['anas_zoo']['commit'])[:12]}",
        ]
    lines += [
        "- Accuracy: top-1 %; `reported` = the paper's figure, `measured` = evaluated on our weights.",
        "- MACs: multiply-accumulates of conv/linear layers (papers' definition); fvcore's trace count beside it.",
        "- Latency: ms per call at the given batch (p50/p90/p99 of every sample); CV > 10 % is flagged noisy.",
        "- **Bold** rows are on the Pareto front (accuracy vs p50) of their own table; tables are never mixed.",
        "",
    ]
    for members in _groups(rows).values():
        first = members[0]
        lines += [
            f"## {first['device_name']} · {first['device']} · {first['backend']} {first['precision']} · "
            f"{first['threads']} threads · batch {first['batch']} ({first['scenario']}) · "
            f"top-1 on {first['accuracy_dataset'] or 'no dataset'}",
            "",
            "| model | res | top-1 % | source | MMACs | MMACs (fvcore) | params (M) | p50 ms | p90 ms | p99 ms "
            "| mean ms | CV | images/s | front |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in members:
            name = f"**{r['model']}**" if r["on_front"] else r["model"]
            cv = f"{r['cv'] * 100:.1f} %" + (" ⚠ noisy" if r["noisy"] else "")
            fv = r["macs_fvcore"] / 1e6 if r["macs_fvcore"] is not None else None
            lines.append(
                f"| {name} | {r['resolution']} | {_fmt(r['accuracy'])} | {_fmt(r['accuracy_source'])} "
                f"| {r['macs'] / 1e6:.2f} | {_fmt(fv)} | {r['params'] / 1e6:.2f} | {r['p50_ms']:.2f} "
                f"| {r['p90_ms']:.2f} | {r['p99_ms']:.2f} | {r['mean_ms']:.2f} | {cv} | {r['images_per_s']:.1f} "
                f"| {'yes' if r['on_front'] else ''} |"
            )
        lines.append("")
    return "\n".join(lines)


def to_csv(rows: Sequence[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def write_pareto(rows: Sequence[dict], out: str | Path, stem: str = "pareto",
                 environment: dict | None = None) -> dict[str, Path]:
    """Write ``stem.md``, ``stem.csv`` and ``stem.png`` into ``out``; returns their paths."""
    out = Path(out)
    paths = {"markdown": out / f"{stem}.md", "csv": out / f"{stem}.csv", "png": out / f"{stem}.png"}
    atomic_write(paths["markdown"], to_markdown(rows, environment))
    atomic_write(paths["csv"], to_csv(rows))
    plot_panels(_panels(rows), paths["png"], title="accuracy vs measured latency (* = noisy run, CV > 10 %)",
                empty="no accuracy figures to plot")
    return paths


def _panels(rows: Sequence[dict]) -> list[Panel]:
    """One panel per front (rows without accuracy are left out): dominated models, the front, model names."""
    panels = []
    for members in _groups([r for r in rows if r["accuracy"] is not None]).values():
        first = members[0]
        sources = sorted({r["accuracy_source"] or "?" for r in members})
        series = [Series("dominated", [(r["p50_ms"], r["accuracy"]) for r in members if not r["on_front"]],
                         "background"),
                  Series("Pareto front", [(r["p50_ms"], r["accuracy"]) for r in members if r["on_front"]], "front")]
        names = [(r["p50_ms"], r["accuracy"], r["model"] + ("*" if r["noisy"] else "")) for r in members]
        title = (f"{first['device_name'][:32]} · {first['backend']} {first['precision']} · {first['threads']} thr · "
                 f"{first['accuracy_dataset']}")
        panels.append(Panel(series, f"p50 latency (ms), batch {first['batch']}", f"top-1 % ({'/'.join(sources)})",
                            title, names))
    return panels
