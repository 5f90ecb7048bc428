"""Hugging Face Hub publishing: write or upload model repos and the results dataset repo.

A model repo holds ``model.safetensors``, ``config.json`` and a ``README.md`` model card (plus
``onnx/``, ``openvino/`` and ``executorch/`` exports when asked). ``config.json`` is the weight set's
metadata record in the local store's format (genome, space, preprocessing, classes, MACs, params,
metrics with their source, licence and the sha256 of ``model.safetensors``), which :mod:`anas_zoo.hub_fetch` downloads and verifies.
The cards are rendered by :mod:`anas_zoo.hub_cards`. Publishing writes the repo folder (``to_dir``, no
network) or uploads it with ``HfApi.create_repo`` + ``upload_folder``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import torch
from huggingface_hub import HfApi, constants

from anas_zoo.export import to_onnx
from anas_zoo.export.executorch import to_executorch
from anas_zoo.export.openvino import to_openvino
from anas_zoo.fileio import FILE_MODE, FOLDER_MODE, staging_folder
from anas_zoo.hub_cards import PROJECT_LICENSE, UNTRAINED_TAG, latency_rows, model_card, results_card
from anas_zoo.hub_fetch import CONFIG_FILE, HUB_ERRORS, hub_error_reason, parse_hub_name, space_of
from anas_zoo.static import StaticNet
from anas_zoo.store import read_record, save_weights
from anas_zoo.zoo import get_entry, load

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
ONNX_DIR = "onnx"
OPENVINO_DIR = "openvino"
EXECUTORCH_DIR = "executorch"
RESULT_SUFFIXES = {".csv", ".json", ".jsonl", ".md", ".png", ".svg", ".html", ".txt"}


class PublishError(RuntimeError):
    """A repo that cannot be written or uploaded as asked."""


# ----- model repo ------------------------------------------------------------------------------
def _publish_record(name: str, pretrained: bool) -> tuple[StaticNet, dict]:
    """The model to publish and its metadata record: the weights the resolver finds, or marked-untrained random ones."""
    entry = get_entry(name)
    if pretrained:
        model = load(name, pretrained=True)
        record = dict(model.pretrained_cfg)
        record["weights_source"] = {"name": f"{entry.name}.{record['tag']}", "sha256": record.pop("sha256")}
    else:
        with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's RNG state
            torch.manual_seed(0)
            model = load(entry.name).eval()
        record = entry.metadata()
        record.update(tag=UNTRAINED_TAG, license=PROJECT_LICENSE, metrics=[], untrained=True)
    for key in ("format", "file", "sha256", "hub"):
        record.pop(key, None)
    record["space_spec"] = dataclasses.asdict(model.space)
    record["library_name"] = "anas_zoo"
    return model, record


def _exporters(onnx_precisions, openvino: bool, executorch: bool) -> list[tuple]:
    """(exporter, output path in the repo, precision) of each file asked for: ONNX per precision, fp32 IR and .pte."""
    if not (onnx_precisions or openvino or executorch):
        return []
    jobs = [(to_onnx, f"{ONNX_DIR}/" + ("model.onnx" if p == "fp32" else f"model.{p}.onnx"), p)
            for p in onnx_precisions]
    jobs += [(to_openvino, OPENVINO_DIR, "fp32")] * openvino
    jobs += [(to_executorch, f"{EXECUTORCH_DIR}/model.pte", "fp32")] * executorch
    return jobs


def _export_files(folder: Path, record: dict, onnx_precisions=(), openvino: bool = False,
                  executorch: bool = False) -> list[dict]:
    """Exported files with their sidecar JSON (``onnx/``, ``openvino/``, ``executorch/``), made by the project's
    exporters from the published weights (``config.json``, so the files record that weight set's sha256)."""
    jobs = _exporters(onnx_precisions, openvino, executorch)
    model = StaticNet(record["genome"], space_of(record), record["num_classes"])
    rows = []
    for export, output, precision in jobs:
        report = export(model, folder / output, name=f"{record['name']}.{record['tag']}",
                        checkpoint=folder / CONFIG_FILE, precision=precision, license=record["license"].lower())
        parity = (report.validation or {}).get("parity") or []
        rows.append({"file": Path(report.path).relative_to(folder).as_posix(), "format": report.format,
                     "precision": precision, "opset": report.opset, "exporter": report.exporter,
                     "passed": report.passed, "max_abs_diff": max((p["max_abs_diff"] for p in parity), default=None),
                     "sha256": report.sha256})
    return rows


def write_model_repo(name: str, folder: str | Path, repo_id: str, pretrained: bool = True, onnx_precisions=(),
                     results_dir: str | Path | None = None, openvino: bool = False,
                     executorch: bool = False) -> dict:
    """Write the model repo of ``name`` into the empty folder ``folder``; returns a summary of what was written.

    ``onnx_precisions`` (e.g. ``("fp32", "fp16")``) adds one exported ONNX file per precision; ``openvino``
    an fp32 OpenVINO IR; ``executorch`` an fp32 XNNPACK ExecuTorch program. The card's latency table comes
    from the harness results under ``results_dir`` (none without one).
    """
    parse_hub_name(repo_id)
    folder = Path(folder)
    model, record = _publish_record(name, pretrained)
    record["repo_id"] = repo_id
    json_path = save_weights(model, record, folder, Path(WEIGHTS_FILE).stem, record.get("dtype", "float32"))
    os.replace(json_path, folder / CONFIG_FILE)
    full = read_record(folder / CONFIG_FILE)
    exports = _export_files(folder, full, onnx_precisions, openvino, executorch)
    latency = latency_rows(name, results_dir) if results_dir is not None else []
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) + [CARD_FILE]
    (folder / CARD_FILE).write_text(model_card(full, repo_id, latency, sorted(files), exports))
    return {"repo_id": repo_id, "repo_type": "model", "name": f"{full['name']}.{full['tag']}",
            "license": full["license"].lower(), "sha256": full["sha256"], "untrained": bool(full.get("untrained")),
            "latency_rows": len(latency), "exports": exports, "files": sorted(files)}


# ----- results dataset repo --------------------------------------------------------------------
def _result_files(results_dir: Path) -> list[Path]:
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results folder {results_dir} does not exist; run the latency harness first")
    files = sorted(p for p in results_dir.rglob("*") if p.is_file() and p.suffix.lower() in RESULT_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(results_dir).parts))
    if not files:
        raise FileNotFoundError(f"no results ({', '.join(sorted(RESULT_SUFFIXES))}) under {results_dir}")
    return files


def write_results_repo(results_dir: str | Path, folder: str | Path, repo_id: str) -> dict:
    """Copy the Pareto tables, raw JSON and plots of ``results_dir`` into ``folder`` with a dataset card."""
    parse_hub_name(repo_id)
    results_dir, folder = Path(results_dir), Path(folder)
    files = _result_files(results_dir)
    notes = ""
    copied = []
    for path in files:
        rel = path.relative_to(results_dir).as_posix()
        if rel == CARD_FILE:
            notes = path.read_text()
            continue
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, folder / rel)
        copied.append(rel)
    pareto = [rel for rel in copied if rel.endswith(".csv") and "pareto" in Path(rel).stem.lower()]
    plots = [rel for rel in copied if Path(rel).suffix in {".png", ".svg"}]
    (folder / CARD_FILE).write_text(results_card(folder, copied, pareto, plots, notes))
    return {"repo_id": repo_id, "repo_type": "dataset", "files": sorted(copied + [CARD_FILE]),
            "pareto_tables": pareto, "plots": plots}


# ----- writing locally or uploading ------------------------------------------------------------
def _write_to_dir(to_dir: Path, write) -> dict:
    """Build the repo in a temp folder beside ``to_dir`` and rename it into place: no partial repo on failure, and
    the temp folder a killed run left is removed by the next write of the same ``to_dir``."""
    to_dir = Path(to_dir)
    if to_dir.exists() and (not to_dir.is_dir() or any(to_dir.iterdir())):
        raise PublishError(f"--to-dir {to_dir} exists and is not an empty folder; choose a new folder")
    with staging_folder(to_dir.parent, to_dir.name) as tmp:
        summary = write(tmp)
        for path in [tmp, *tmp.rglob("*")]:
            path.chmod(FOLDER_MODE if path.is_dir() else FILE_MODE)
        try:
            os.replace(tmp, to_dir)
        except OSError as e:  # another writer's folder took the place meanwhile (ENOTEMPTY), or a file did
            raise PublishError(f"--to-dir {to_dir} was filled by another writer while this one ran ({e.strerror}); "
                               "nothing of this run was kept, choose a new folder") from e
    return {**summary, "folder": str(to_dir)}


def _upload(write, repo_id: str, repo_type: str, revision: str | None, private: bool, token: str | None,
            message: str) -> dict:
    """Build the repo in a temp folder, then ``create_repo`` (and the branch) + ``upload_folder``; a Hub that
    cannot be reached or refuses the upload is one :class:`PublishError`."""
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="anas_zoo_hub_") as tmp:
        summary = write(Path(tmp))
        try:
            api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
            if revision and revision != constants.DEFAULT_REVISION:
                api.create_branch(repo_id, repo_type=repo_type, branch=revision, exist_ok=True)
            commit = api.upload_folder(repo_id=repo_id, repo_type=repo_type, folder_path=tmp, revision=revision,
                                       commit_message=message)
        except HUB_ERRORS as e:
            raise PublishError(f"cannot upload the {repo_type} repo {repo_id} to {api.endpoint}: "
                               f"{hub_error_reason(e)}") from e
    return {**summary, "revision": revision or constants.DEFAULT_REVISION,
            "commit_url": getattr(commit, "commit_url", str(commit))}


def publish(name: str, repo_id: str, *, revision: str | None = None, private: bool = False,
            with_onnx: bool = False, onnx_precisions=("fp32",), to_dir: str | Path | None = None,
            token: str | None = None, pretrained: bool = True,
            results_dir: str | Path | None = None, with_openvino: bool = False,
            with_executorch: bool = False) -> dict:
    """Publish model ``name`` as Hub model repo ``repo_id`` (or write that repo into ``to_dir`` without network).

    ``pretrained`` publishes the weights ``load(name, pretrained=True)`` resolves; ``pretrained=False``
    publishes seeded random weights tagged ``untrained`` under the project's licence, with no metrics.
    ``with_onnx`` adds ONNX files (one per precision in ``onnx_precisions``) with their sidecars;
    ``with_openvino`` and ``with_executorch`` add an fp32 OpenVINO IR and an fp32 ExecuTorch program.
    """
    get_entry(name)
    parse_hub_name(repo_id)
    precisions = tuple(onnx_precisions) if with_onnx else ()

    def write(folder: Path) -> dict:
        return write_model_repo(name, folder, repo_id, pretrained, precisions, results_dir, with_openvino,
                                with_executorch)

    if to_dir is not None:
        return _write_to_dir(Path(to_dir), write)
    return _upload(write, repo_id, "model", revision, private, token, f"Publish {name} with anas_zoo")


def publish_results(repo_id: str, *, results_dir: str | Path, revision: str | None = None,
                    private: bool = False, to_dir: str | Path | None = None, token: str | None = None) -> dict:
    """Publish the latency/Pareto results folder as Hub dataset repo ``repo_id`` (or into ``to_dir``)."""
    parse_hub_name(repo_id)
    _result_files(Path(results_dir))

    def write(folder: Path) -> dict:
        return write_results_repo(results_dir, folder, repo_id)

    if to_dir is not None:
        return _write_to_dir(Path(to_dir), write)
    return _upload(write, repo_id, "dataset", revision, private, token, "Publish anas_zoo results")
