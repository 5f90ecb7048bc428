"""Hardware-aware Pareto tables: accuracy × MACs × params × measured latency, one front per setting.

A front is computed separately for every (device, runtime, precision, threads, batch) and accuracy
dataset: latencies from different machines, runtimes or batch sizes, and top-1 on ImageNet and on
CIFAR-10, are never compared with each other. A model is on the
front when no other model of its group is at least as accurate *and* at least as fast (p50), with
one of the two strictly better. Accuracy says where it comes from: ``reported`` (a paper's figure)
or ``measured`` (evaluated by us on our weights); MACs are the papers' definition (analytic) with
fvcore's trace-based count beside them as a cross-check. Above the fronts, the Markdown names the fastest
runtime (backend and precision) of every model on each device, thread count and batch it ran with.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from anas_zoo.bench.backends import BACKENDS, PRECISIONS
from anas_zoo.bench.runner import result_row
from anas_zoo.fileio import atomic_write
from anas_zoo.flops import fvcore_macs
from anas_zoo.pareto import Panel, Series, pareto_front, plot_panels
from anas_zoo.static import StaticNet

FRONT_KEYS = ("device_name", "device", "backend", "precision", "threads", "batch", "accuracy_dataset")
#: Runtimes compete for "fastest" only on the same hardware, thread count and batch.
FASTEST_KEYS = ("device_name", "device", "threads", "batch")
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


def runtime(row: dict) -> str:
    """A row's runtime as the tables name it: backend and precision, e.g. ``openvino int8``."""
    return f"{row['backend']} {row['precision']}"


def _runtime_order(name: str) -> tuple[int, int]:
    backend, precision = name.split(" ")
    return BACKENDS.index(backend), PRECISIONS.index(precision)


def fastest_runtimes(rows: Sequence[dict]) -> list[dict]:
    """For every model on each device, thread count and batch: the runtime with the lowest p50, and every runtime's
    p50 (``p50_ms_by_runtime``, in :data:`BACKENDS` order), fastest models first within a setting."""
    by_model: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        by_model[(*(row[k] for k in FASTEST_KEYS), row["model"])].append(row)
    fastest = []
    for (*setting, model), members in by_model.items():
        best = min(members, key=lambda r: r["p50_ms"])
        fastest.append({**dict(zip(FASTEST_KEYS, setting)), "model": model, "runtime": runtime(best),
                        "p50_ms": best["p50_ms"],
                        "p50_ms_by_runtime": {runtime(r): r["p50_ms"]
                                              for r in sorted(members, key=lambda r: _runtime_order(runtime(r)))}})
    return sorted(fastest, key=lambda f: (tuple(str(f[k]) for k in FASTEST_KEYS), f["p50_ms"]))


def _fastest_markdown(rows: Sequence[dict]) -> list[str]:
    """The 'fastest runtime per model' section: one table per device, thread count and batch."""
    lines = ["## Fastest runtime per model", "",
             "The runtime (backend and precision) with the lowest p50 for each model, on the device, threads and batch "
             "it ran with, and every runtime's p50 in ms beside it. int8 trades accuracy for speed: see the fronts "
             "below for top-1.", ""]
    settings: dict[tuple, list[dict]] = defaultdict(list)
    for entry in fastest_runtimes(rows):
        settings[tuple(entry[k] for k in FASTEST_KEYS)].append(entry)
    for (device_name, device, threads, batch), entries in settings.items():
        runtimes = sorted({name for e in entries for name in e["p50_ms_by_runtime"]}, key=_runtime_order)
        lines += [f"### {device_name} · {device} · {threads} threads · batch {batch}", "",
                  f"| model | fastest runtime | p50 ms | {' | '.join(runtimes)} |",
                  "|---|---|---|" + "---|" * len(runtimes)]
        for e in entries:
            cells = [_fmt(e["p50_ms_by_runtime"].get(name)) for name in runtimes]
            lines.append(f"| {e['model']} | **{e['runtime']}** | {e['p50_ms']:.2f} | {' | '.join(cells)} |")
        lines.append("")
    return lines


def _fmt(value, digits: int = 2) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def to_markdown(rows: Sequence[dict], environment: dict | None = None) -> str:
    """The fastest runtime per model, then one Markdown table per (device, runtime, precision, threads, batch,
    accuracy dataset), front in bold."""
    lines = ["# Hardware-aware Pareto tables", ""]
    if environment:
        cpu, pk = environment["cpu"], environment["packages"]
        gpus = ", ".join(g["name"] for g in environment["gpus"]) or "none"
        lines += [
            f"- CPU: {cpu['model']} ({cpu['physical_cores']} physical / {cpu['logical_cores']} logical cores, "
            f"SMT {cpu['smt']}, governor {cpu['governor']}, virtualized {cpu['virtualized']}); GPU: {gpus}",
            f"- Python {environment['python']}, "
            + ", ".join(f"{p} {pk[p]}" for p in pk if pk[p])
            + f"; anas_zoo {environment['anas_zoo']['version']} @ {str(environment['anas_zoo']['commit'])[:12]}",
        ]
    lines += [
        "- Accuracy: top-1 %; `reported` = the paper's figure, `measured` = evaluated on our weights. It is the "
        "float32 weights' figure in every table, int8 and fp16 included; `benchmarks/runtime_ratios.py` measures "
        "each runtime's own top-1 and its int8 drop.",
        "- MACs: multiply-accumulates of conv/linear layers (papers' definition); fvcore's trace count beside it.",
        "- Latency: ms per call at the given batch (p50/p90/p99 of every sample); CV > 10 % is flagged noisy.",
        "- **Bold** rows are on the Pareto front (accuracy vs p50) of their own table; tables are never mixed.",
        "",
        *_fastest_markdown(rows),
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
