"""The README.md cards of published Hub repos, and the markdown tables they are made of.

A model card is YAML front matter (Hub metadata: licence, tags, measured accuracy as ``eval_results``)
followed by usage, architecture, metrics, latency and export tables; the results dataset card lists the
Pareto tables, plots and files of the latency harness's results folder. Rendering only: which files a repo
holds is decided by :mod:`anas_zoo.hub`, which writes these cards.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from huggingface_hub import DatasetCardData, EvalResult, ModelCardData

from anas_zoo.hub_fetch import HUB_PREFIX
from anas_zoo.zoo import split_name

#: The project's own licence (pyproject.toml), as a Hub licence id; imported weights keep theirs.
PROJECT_LICENSE = "apache-2.0"
UNTRAINED_TAG = "untrained"
#: OpenVINO's CPU plugin runs in bfloat16 by default on CPUs that have it; the IR was checked in float32.
OPENVINO_PRECISION_NOTE = (
    " The OpenVINO IR was checked in float32: compile it with `{\"INFERENCE_PRECISION_HINT\": \"f32\"}` to get "
    "those numbers, since the CPU plugin otherwise runs in bfloat16 on CPUs with AVX512-BF16 or AMX.")

_DATASET_NAMES = {"imagenet-1k": "ImageNet-1k", "cifar10": "CIFAR-10", "cifar-10": "CIFAR-10"}


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured markdown table (cards, previews and the docs' family tables)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def latency_rows(name: str, results_dir: str | Path) -> list[dict]:
    """Rows of every ``results.csv`` under ``results_dir`` whose ``model`` is this architecture (any weight tag)."""
    results_dir = Path(results_dir)
    arch = split_name(name)[0]
    rows = []
    for path in sorted(results_dir.glob("**/results.csv")):
        with open(path, newline="") as f:
            rows += [{**row, "source": path.relative_to(results_dir).as_posix()}
                     for row in csv.DictReader(f) if split_name(row.get("model") or "")[0] == arch]
    return rows


# ----- model card ------------------------------------------------------------------------------
def _measured(metric: dict) -> bool:
    return metric.get("source") != "reported"


def _card_data(record: dict, formats: set[str]) -> ModelCardData:
    """The card's front matter: measured (not merely reported) accuracy becomes Hub ``eval_results``."""
    model_name = f"{record['name']}.{record['tag']}"
    metrics = record.get("metrics") or []
    eval_results = [
        EvalResult(task_type="image-classification", dataset_type=m["dataset"],
                   dataset_name=_DATASET_NAMES.get(m["dataset"], m["dataset"]), dataset_split=m.get("split"),
                   metric_type="accuracy", metric_name=f"{key.replace('top', 'top-')} accuracy", metric_value=m[key])
        for m in metrics if _measured(m) for key in ("top1", "top5") if m.get(key) is not None
    ]
    tags = ["anas_zoo", "attentivenas", "image-classification", "pytorch", "safetensors"]
    tags += sorted({m["dataset"] for m in metrics})
    tags += sorted(formats) + [UNTRAINED_TAG] * bool(record.get("untrained"))
    return ModelCardData(library_name="anas_zoo", license=record["license"].lower(),
                         pipeline_tag="image-classification", tags=tags,
                         model_name=model_name if eval_results else None, eval_results=eval_results or None)


def model_card(record: dict, repo_id: str, latency: list[dict], files: list[str], exports: list[dict]) -> str:
    """README.md of a model repo: YAML front matter, usage, architecture, metrics, latency and export tables, licence.

    ``exports`` are the rows of exported files :func:`anas_zoo.hub.write_model_repo` reports (ONNX, OpenVINO IR,
    ExecuTorch programs).
    """
    data = _card_data(record, {e["format"] for e in exports})
    g = record["genome"]
    genes = " | ".join(",".join(map(str, g[k])) for k in ("width", "depth", "kernel_size", "expand_ratio"))
    pre = record["preprocessing"]
    parts = [f"---\n{data.to_yaml()}\n---", f"# {record['name']}.{record['tag']}"]
    if record.get("untrained"):
        parts.append("> **Untrained**: random initialisation (seed 0), published with `--no-pretrained` to test "
                     "deployment pipelines. Its predictions are meaningless.")
    parts.append(record.get("description") or "An AttentiveNAS sub-network from the anas_zoo model zoo.")
    parts.append("## Usage\n\n```python\nimport anas_zoo\n\n"
                 f'model = anas_zoo.load("{HUB_PREFIX}{repo_id}")  # weights verified by sha256, eval mode\n```\n\n'
                 f"Input: {record['resolution']}×{record['resolution']} RGB images, preprocessed as "
                 f"`config.json` records:\n\n```json\n{json.dumps(pre, sort_keys=True)}\n```")
    parts.append("## Architecture\n\n" + markdown_table(
        ["space", "resolution", "width \\| depth \\| kernel \\| expand", "MACs", "params", "classes"],
        [[record["space"], record["resolution"], genes.replace("|", "\\|"),
          f"{record['macs'] / 1e6:.1f} M", f"{record['params'] / 1e6:.2f} M", record["num_classes"]]])
        + "\n\nMACs count conv and linear multiply-accumulates once (the papers' \"FLOPs\").")
    metrics = record.get("metrics") or []
    parts.append("## Metrics\n\n" + (markdown_table(
        ["dataset", "split", "top-1 %", "top-5 %", "source"],
        [[m["dataset"], m.get("split", ""), m.get("top1", ""), m.get("top5", "") or "", m.get("source", "")]
         for m in metrics]) if metrics else "not measured"))
    parts.append("## Latency\n\n" + (markdown_table(
        ["backend", "precision", "device", "batch", "threads", "p50 ms", "p90 ms", "p99 ms", "images/s", "results"],
        [[r.get(k, "") for k in ("backend", "precision", "device", "batch", "threads", "p50_ms", "p90_ms",
                                 "p99_ms", "images_per_s", "source")] for r in latency])
        + "\n\nMeasured with the anas_zoo latency harness; `results` names the results.csv of each row."
        if latency else "not measured"))
    if exports:
        parts.append("## Exported files\n\n" + markdown_table(
            ["file", "format", "precision", "opset", "exporter", "max abs diff vs PyTorch", "validated", "sha256"],
            [[f"`{e['file']}`", e["format"], e["precision"], e["opset"] or "", e["exporter"],
              "" if e["max_abs_diff"] is None else f"{e['max_abs_diff']:.1e}", e["passed"],
              f"`{e['sha256']}`"] for e in exports])
            + "\n\nEach export has a JSON sidecar beside it with its export and validation report; each was "
              "checked against PyTorch in its own runtime (ONNX Runtime, OpenVINO, ExecuTorch)."
            + (OPENVINO_PRECISION_NOTE if any(e["format"] == "openvino" for e in exports) else ""))
    parts.append("## Files\n\n" + "\n".join(f"- `{f}`" for f in files))
    licence = record["license"].lower()
    parts.append(f"## Licence\n\n`{licence}`" + (
        " — these are the authors' official weights, for non-commercial use only." if licence == "cc-by-nc-4.0"
        else " — the anas_zoo project's licence."))
    return "\n\n".join(parts) + "\n"


# ----- results dataset card --------------------------------------------------------------------
def _csv_preview(path: Path, limit: int = 50) -> str:
    """The first ``limit`` rows of a CSV file as a markdown table, with how many more the file holds."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return "(empty)"
    more = f"\n\n… {len(rows) - 1 - limit} more rows in `{path.name}`" if len(rows) - 1 > limit else ""
    return markdown_table(rows[0], rows[1:limit + 1]) + more


def results_card(folder: Path, files: list[str], pareto: list[str], plots: list[str], notes: str) -> str:
    """README.md of the results dataset repo in ``folder``: one Hub dataset config per CSV name, a preview of each
    Pareto table, the plots, the results folder's own notes and the list of ``files`` (paths inside ``folder``)."""
    csv_groups: dict[str, list[str]] = {}
    for rel in files:
        if rel.endswith(".csv"):
            csv_groups.setdefault(Path(rel).stem, []).append(rel)
    data = DatasetCardData(license=PROJECT_LICENSE, pretty_name="anas_zoo latency and Pareto results",
                           tags=["anas_zoo", "attentivenas", "latency", "benchmark", "pareto"],
                           configs=[{"config_name": stem, "data_files": rels} for stem, rels in sorted(csv_groups.items())])
    parts = [f"---\n{data.to_yaml()}\n---", "# anas_zoo latency and Pareto results",
             ("Accuracy × MACs × measured latency of AttentiveNAS models, written by the anas_zoo latency harness "
             "and search. Each table records the device and runtime it was measured on.")]
    for rel in pareto:
        parts.append(f"## {rel}\n\n{_csv_preview(folder / rel)}")
    if plots:
        parts.append("## Plots\n\n" + "\n\n".join(f"![{rel}]({rel})" for rel in plots))
    if notes:
        parts.append("## Notes from the results folder\n\n" + notes)
    parts.append("## Files\n\n" + "\n".join(f"- `{rel}`" for rel in files))
    return "\n\n".join(parts) + "\n"
