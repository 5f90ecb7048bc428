"""Hub publishing and loading: repo layout and model card, upload at the HfApi boundary, offline-first
resolution order, sha256 tamper checks, and a real round trip through a loopback Hub in fresh processes.

The model is a tiny network in a test-only search space, so a fresh process that never registered
that space must rebuild it from the published ``config.json``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from contextlib import redirect_stdout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlparse

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from anas_zoo import hub, hub_fetch, store
from anas_zoo import space as space_module
from anas_zoo import zoo as zoo_module
from anas_zoo.cli.zoo import main
from anas_zoo.data_config import DataConfig
from anas_zoo.flops import count
from anas_zoo.space import SearchSpace, StageSpec, register_space
from anas_zoo.store import WeightsError
from anas_zoo.zoo import ModelEntry, WeightSpec, get_entry, load, load_into, register_model

TESTS_DIR = Path(__file__).resolve().parent
NAME = "hubtest_tiny"
REPO = "example/repo"
MEASURED = {"dataset": "cifar10", "split": "test", "top1": 91.5, "source": "measured"}

TINY_SPACE = SearchSpace(
    name="hubtest_space",
    resolutions=(32,),
    stem_widths=(8,),
    stem_stride=2,
    stages=(
        StageSpec((8,), (1,), (3,), (1,), stride=1, se=False),
        StageSpec((8,), (1,), (3,), (2,), stride=2, se=False),
        StageSpec((16,), (1,), (3,), (2,), stride=2, se=True),
        StageSpec((16,), (1,), (3,), (2,), stride=2, se=False),
        StageSpec((16,), (2,), (3,), (2,), stride=1, se=True),
        StageSpec((24,), (1,), (5,), (2,), stride=2, se=True),
        StageSpec((24,), (1,), (3,), (2,), stride=1, se=True),
    ),
    mix_widths=(64,),
    num_classes=10,
    head_expand=2,
)


def tiny_entry() -> ModelEntry:
    """The tiny test model: tag 'own' (project licence, on the Hub as example/repo), 'imported' (CC-BY-NC),
    'absent' (names a Hub repo that nobody serves)."""
    arch = TINY_SPACE.min_arch()
    macs, params = count(arch, TINY_SPACE, 10, arch.resolution)
    return ModelEntry(
        name=NAME, arch=arch, space=TINY_SPACE.name, num_classes=10, macs=macs, params=params,
        preprocessing=DataConfig.imagenet(arch.resolution), description="A tiny test network.",
        weights=(
            WeightSpec("own", "Apache-2.0", (MEASURED,), "train it with anas-train", hub_repo=REPO),
            WeightSpec("imported", "cc-by-nc-4.0", ({**MEASURED, "source": "reported"},), "import it"),
            WeightSpec("absent", "Apache-2.0", (), "nobody publishes it", hub_repo="example/absent"),
        ),
    )


def register_tiny() -> None:
    """Register the tiny model for good (the fresh client processes)."""
    register_space(TINY_SPACE)
    register_model(tiny_entry())


def install_tiny(mp: pytest.MonkeyPatch) -> None:
    """Register the tiny model for one test only, so other test files never see it."""
    mp.setitem(space_module._SPACES, TINY_SPACE.name, TINY_SPACE)
    mp.setitem(zoo_module._REGISTRY, NAME, tiny_entry())


@pytest.fixture(autouse=True)
def _tiny_registered(monkeypatch):
    install_tiny(monkeypatch)


INPUT = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def seeded_model(seed: int):
    torch.manual_seed(seed)
    return load(NAME).eval()


def save_set(directory: Path, seed: int, tag: str = "own", **record_changes) -> torch.Tensor:
    """Write weight set ``NAME.tag`` built from ``seed`` into ``directory``; returns its logits on INPUT."""
    model = seeded_model(seed)
    record = {**get_entry(NAME).metadata(tag), **record_changes}
    store.save_weights(model, record, directory, f"{NAME}.{tag}")
    with torch.no_grad():
        return model(INPUT)


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(INPUT)


def front_matter(readme: Path) -> dict:
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def run_cli(*argv) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main([str(a) for a in argv])
    return code, out.getvalue()


@pytest.fixture
def results_dir(tmp_path) -> Path:
    """A latency-harness results folder with one row for the tiny model and one for another model."""
    folder = tmp_path / "results" / "cpu-x86"
    folder.mkdir(parents=True)
    (folder / "results.csv").write_text(
        "model,backend,precision,batch,threads,device,p50_ms,p90_ms,p99_ms,mean_ms,cv,images_per_s,macs,params\n"
        f"{NAME}.own,onnxruntime,fp32,1,2,cpu,0.41,0.47,0.52,0.42,0.06,2380.9,1,2\n"
        "attentivenas_a0,pytorch,fp32,1,2,cpu,9.9,10.1,11.0,9.95,0.02,100.5,1,2\n"
    )
    (folder / "pareto_cpu.csv").write_text("model,macs,top1,p50_ms\nhubtest_tiny,1000,91.5,0.41\n")
    (folder / "raw.json").write_text(json.dumps({"samples_ms": [0.4, 0.41]}))
    (folder / "pareto.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(16))
    (folder / ".scratch.csv").write_text("hidden\n")
    return tmp_path / "results"


# ----- publishing to a folder ------------------------------------------------------------------
def test_publish_to_dir_writes_weights_config_and_card(tmp_path, results_dir):
    expected = save_set(store.store_dir(), seed=3)
    code, out = run_cli("publish", NAME, "--repo-id", REPO, "--to-dir", tmp_path / "repo",
                        "--results-dir", results_dir, "--json")
    assert code == 0
    report = json.loads(out)
    repo = tmp_path / "repo"
    assert sorted(p.name for p in repo.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert report["files"] == ["README.md", "config.json", "model.safetensors"]

    config = json.loads((repo / "config.json").read_text())
    assert config["sha256"] == hashlib.sha256((repo / "model.safetensors").read_bytes()).hexdigest()
    assert config["file"] == "model.safetensors"
    assert config["genome"] == TINY_SPACE.min_arch().to_dict()
    assert config["space"] == TINY_SPACE.name and config["space_spec"]["name"] == TINY_SPACE.name
    assert config["metrics"] == [MEASURED] and config["license"] == "Apache-2.0"
    assert config["macs"] > 0 and config["params"] > 0 and config["preprocessing"]["resolution"] == 32
    assert config["weights_source"]["name"] == f"{NAME}.own"

    model = seeded_model(99)
    load_into(model, repo / "config.json")
    assert torch.equal(logits(model.eval()), expected)

    meta = front_matter(repo / "README.md")
    assert meta["library_name"] == "anas_zoo"
    assert meta["license"] == "apache-2.0"
    assert meta["pipeline_tag"] == "image-classification"
    assert {"anas_zoo", "attentivenas", "cifar10"} <= set(meta["tags"])
    result = meta["model-index"][0]["results"][0]
    assert meta["model-index"][0]["name"] == f"{NAME}.own"
    assert result["dataset"] == {"name": "CIFAR-10", "type": "cifar10", "split": "test"}
    assert result["metrics"][0]["type"] == "accuracy" and result["metrics"][0]["value"] == 91.5

    card = (repo / "README.md").read_text()
    assert "| onnxruntime | fp32 | cpu | 1 | 2 | 0.41 | 0.47 | 0.52 | 2380.9 | cpu-x86/results.csv |" in card
    assert "9.9" not in card  # the other model's latency row is not this model's
    assert "| cifar10 | test | 91.5 |  | measured |" in card
    assert f'anas_zoo.load("hf-hub:{REPO}")' in card


def test_card_says_not_measured_and_imported_weights_keep_their_licence(tmp_path):
    save_set(store.store_dir(), seed=4, tag="imported", license="cc-by-nc-4.0")
    hub.publish(f"{NAME}.imported", "example/imported", to_dir=tmp_path / "repo", results_dir=tmp_path / "none")
    meta = front_matter(tmp_path / "repo" / "README.md")
    card = (tmp_path / "repo" / "README.md").read_text()
    assert meta["license"] == "cc-by-nc-4.0"
    assert "model-index" not in meta  # only a reported (paper) figure: nothing measured to index
    assert "| reported |" in card
    assert "## Latency\n\nnot measured" in card
    assert "non-commercial" in card


def test_a_float16_weight_set_is_published_in_float16_and_loads_back_as_bundled(tmp_path):
    name = "attentivenas_cifar10_a0"
    hub.publish(name, "example/cifar10-a0", to_dir=tmp_path / "repo", results_dir=tmp_path / "none")
    config = json.loads((tmp_path / "repo" / "config.json").read_text())
    assert config["dtype"] == "float16"
    published = load_file(str(tmp_path / "repo" / "model.safetensors"))
    assert config["tag"] == "cifar10_ft"  # the default weight set
    bundled = load_file(str(store.BUNDLED_DIR / f"{name}.{config['tag']}.safetensors"))
    assert published.keys() == bundled.keys()
    assert all(published[k].dtype == v.dtype and torch.equal(published[k], v) for k, v in bundled.items())
    model = load(name)
    load_into(model, tmp_path / "repo" / "config.json")
    x = torch.randn(2, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.eval()(x), load(name, pretrained=True)(x))


def test_the_library_reads_latency_results_only_from_the_folder_it_is_given(tmp_path, results_dir, monkeypatch):
    save_set(store.store_dir(), seed=3)
    monkeypatch.chdir(results_dir.parent)
    (results_dir.parent / "benchmarks").mkdir()
    results_dir.rename(results_dir.parent / "benchmarks" / "results")
    assert hub.publish(NAME, REPO, to_dir=tmp_path / "plain")["latency_rows"] == 0
    given = hub.publish(NAME, REPO, to_dir=tmp_path / "given", results_dir=tmp_path / "benchmarks" / "results")
    assert given["latency_rows"] == 1


def test_no_pretrained_publishes_seeded_weights_marked_untrained(tmp_path):
    report = hub.publish(NAME, REPO, to_dir=tmp_path / "a", pretrained=False)
    again = hub.publish(NAME, REPO, to_dir=tmp_path / "b", pretrained=False)
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert report["untrained"] and config["untrained"] is True
    assert config["tag"] == "untrained" and config["metrics"] == [] and config["license"] == "apache-2.0"
    first, second = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("a", "b"))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)  # seeded
    assert report["sha256"] == config["sha256"] and again["untrained"]
    meta = front_matter(tmp_path / "a" / "README.md")
    assert "untrained" in meta["tags"] and "model-index" not in meta
    card = (tmp_path / "a" / "README.md").read_text()
    assert "**Untrained**" in card and "## Metrics\n\nnot measured" in card


def test_publish_refuses_bad_input_with_one_line_errors(tmp_path, capsys):
    save_set(store.store_dir(), seed=3)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert run_cli("publish", NAME, "--repo-id", REPO, "--to-dir", tmp_path / "full")[0] == 1
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert run_cli("publish", NAME, "--repo-id", "not a repo", "--to-dir", tmp_path / "x")[0] == 1
    assert "bad Hub repo 'not a repo'" in capsys.readouterr().err
    assert run_cli("publish", "no_such_model", "--repo-id", REPO, "--to-dir", tmp_path / "x")[0] == 1
    assert "unknown model 'no_such_model'" in capsys.readouterr().err
    assert run_cli("publish", f"{NAME}.imported", "--repo-id", REPO, "--to-dir", tmp_path / "x")[0] == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no local weights for 'hubtest_tiny.imported'") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left behind


@pytest.mark.parametrize("runtime", ["openvino", "executorch"])
def test_an_export_whose_runtime_is_missing_names_its_extra_and_writes_nothing(runtime, tmp_path, monkeypatch, capsys):
    save_set(store.store_dir(), seed=3)
    monkeypatch.setitem(sys.modules, runtime, None)  # what an environment without the extra looks like to import
    assert run_cli("publish", NAME, "--repo-id", REPO, f"--with-{runtime}", "--to-dir", tmp_path / "repo")[0] == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f'pip install "anas_zoo[{runtime}]"' in err, err
    assert not (tmp_path / "repo").exists()


def test_publish_results_to_dir_mirrors_tables_json_and_plots(tmp_path, results_dir):
    code, out = run_cli("publish-results", "--repo-id", "example/results", "--results-dir", results_dir,
                        "--to-dir", tmp_path / "ds", "--json")
    assert code == 0
    ds = tmp_path / "ds"
    files = sorted(p.relative_to(ds).as_posix() for p in ds.rglob("*") if p.is_file())
    assert files == ["README.md", "cpu-x86/pareto.png", "cpu-x86/pareto_cpu.csv", "cpu-x86/raw.json",
                     "cpu-x86/results.csv"]
    assert json.loads(out)["files"] == files
    assert (ds / "cpu-x86/results.csv").read_bytes() == (results_dir / "cpu-x86/results.csv").read_bytes()
    meta = front_matter(ds / "README.md")
    assert meta["license"] == "apache-2.0" and "latency" in meta["tags"]
    assert {c["config_name"]: c["data_files"] for c in meta["configs"]} == {
        "pareto_cpu": ["cpu-x86/pareto_cpu.csv"], "results": ["cpu-x86/results.csv"]}
    card = (ds / "README.md").read_text()
    assert "| hubtest_tiny | 1000 | 91.5 | 0.41 |" in card and "![cpu-x86/pareto.png](cpu-x86/pareto.png)" in card


def test_publish_results_without_results_fails(tmp_path, capsys):
    assert run_cli("publish-results", "--repo-id", "example/results", "--results-dir", tmp_path / "nope",
                   "--to-dir", tmp_path / "ds")[0] == 1
    assert "results folder" in capsys.readouterr().err and not (tmp_path / "ds").exists()


# ----- upload at the HfApi boundary ------------------------------------------------------------
class RecordingApi:
    """Stands in for HfApi: records every call and the exact bytes of every file upload_folder sends."""

    calls: ClassVar[list] = []

    def __init__(self, token=None):
        self.calls.append(("init", {"token": token}))

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def create_branch(self, repo_id, **kwargs):
        self.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        sent = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        self.calls.append(("upload_folder", {**kwargs, "files": sent}))
        return type("CommitInfo", (), {"commit_url": f"https://hub.test/{kwargs['repo_id']}/commit/abc"})()


@pytest.fixture
def api(monkeypatch):
    RecordingApi.calls = []
    monkeypatch.setattr(hub, "HfApi", RecordingApi)
    return RecordingApi


def test_publish_uploads_model_repo_through_create_repo_and_upload_folder(api, tmp_path):
    expected = save_set(store.store_dir(), seed=5)
    code, out = run_cli("publish", NAME, "--repo-id", REPO, "--revision", "v1", "--private", "--token", "tok",
                        "--results-dir", tmp_path, "--json")
    assert code == 0
    assert [c[0] for c in api.calls] == ["init", "create_repo", "create_branch", "upload_folder"]
    assert api.calls[0][1] == {"token": "tok"}
    assert api.calls[1][1] == {"repo_id": REPO, "repo_type": "model", "private": True, "exist_ok": True}
    assert api.calls[2][1] == {"repo_id": REPO, "repo_type": "model", "branch": "v1", "exist_ok": True}
    upload = api.calls[3][1]
    assert (upload["repo_id"], upload["repo_type"], upload["revision"]) == (REPO, "model", "v1")
    assert sorted(upload["files"]) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads(upload["files"]["config.json"])
    assert config["sha256"] == hashlib.sha256(upload["files"]["model.safetensors"]).hexdigest()
    copy = tmp_path / "sent"
    copy.mkdir()
    for name, data in upload["files"].items():
        (copy / name).write_bytes(data)
    model = seeded_model(0)
    load_into(model, copy / "config.json")
    assert torch.equal(logits(model.eval()), expected)
    assert json.loads(out)["commit_url"] == f"https://hub.test/{REPO}/commit/abc"


def test_publish_results_uploads_a_dataset_repo(api, results_dir):
    hub.publish_results("example/results", results_dir=results_dir)
    assert [c[0] for c in api.calls] == ["init", "create_repo", "upload_folder"]  # main: no branch to create
    assert api.calls[1][1]["repo_type"] == "dataset" and api.calls[2][1]["repo_type"] == "dataset"
    sent = api.calls[2][1]["files"]
    assert sorted(sent) == ["README.md", "cpu-x86/pareto.png", "cpu-x86/pareto_cpu.csv", "cpu-x86/raw.json",
                            "cpu-x86/results.csv"]
    assert sent["cpu-x86/raw.json"] == (results_dir / "cpu-x86/raw.json").read_bytes()


# ----- offline-first resolution order and tampering --------------------------------------------
def test_resolution_order_bundled_then_store_then_hub(tmp_path, monkeypatch):
    bundled, hub_repo = tmp_path / "bundled", tmp_path / "hub_repo"
    monkeypatch.setattr(store, "BUNDLED_DIR", bundled)
    from_bundled = save_set(bundled, seed=10)
    from_store = save_set(store.store_dir(), seed=11)
    from_hub = save_set(tmp_path / "src", seed=12)
    shutil.copytree(tmp_path / "src", hub_repo)
    fetched = []

    def fake_fetch(name):
        fetched.append(name)
        return hub_repo / f"{NAME}.own.json"

    monkeypatch.setattr(zoo_module, "fetch", fake_fetch)
    assert torch.equal(logits(load(NAME, pretrained=True)), from_bundled)
    assert fetched == []
    shutil.rmtree(bundled)
    assert torch.equal(logits(load(NAME, pretrained=True)), from_store)
    assert fetched == []
    shutil.rmtree(store.store_dir())
    model = load(f"{NAME}.own", pretrained=True)
    assert torch.equal(logits(model), from_hub) and not model.training
    assert fetched == [REPO]


def test_weights_without_hub_repo_list_every_place_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "BUNDLED_DIR", tmp_path / "bundled")
    with pytest.raises(WeightsError) as info:
        load(f"{NAME}.imported", pretrained=True)
    message = str(info.value)
    assert str(tmp_path / "bundled") in message and str(store.store_dir()) in message
    assert "no Hugging Face Hub repo is registered for them" in message and "import it" in message


def test_tampered_store_weights_fail_sha256(tmp_path):
    save_set(store.store_dir(), seed=3)
    path = store.store_dir() / f"{NAME}.own.safetensors"
    state = load_file(str(path))
    state["classifier.bias"][0] += 1.0
    save_file(state, str(path))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load(NAME, pretrained=True)
    own = {w["tag"]: w for w in zoo_module.model_info(NAME)["weights"]}["own"]
    assert own["available"] is False and own["corrupted"].startswith(f"sha256 mismatch for {path}")
    code, out = run_cli("info", NAME)
    assert code == 0 and f"[corrupted: sha256 mismatch for {path}" in out


def test_parse_hub_name():
    assert hub_fetch.parse_hub_name("hf-hub:org/repo") == ("org/repo", None)
    assert hub_fetch.parse_hub_name("hf-hub:org/repo.v2@refs-pr-1") == ("org/repo.v2", "refs-pr-1")
    assert hub_fetch.parse_hub_name("hf-hub:org/repo@refs/pr/1") == ("org/repo", "refs/pr/1")
    assert hub_fetch.parse_hub_name(f"org/repo@{'0f' * 20}") == ("org/repo", "0f" * 20)
    for bad in ("hf-hub:repo", "hf-hub:a/b/c", "hf-hub:org/re po", "hf-hub:org/a..b", "hf-hub:org/a--b"):
        with pytest.raises(ValueError, match="bad Hub repo"):
            hub_fetch.parse_hub_name(bad)
    for bad in ("", "a@b", "../../../victim.txt", "../../etc", "/etc/passwd", "v1/../../x", ".hidden", "main\nx",
                "ma\tin", "a b", "v1/", "a//b", "x.lock", "a" * 256, "a\\b", "main\x00"):
        with pytest.raises(ValueError, match="bad Hub revision"):
            hub_fetch.parse_hub_name(f"hf-hub:org/repo@{bad}")


@pytest.mark.parametrize("revision", ["../../../victim.txt", "../../etc", "main\nx"])
def test_a_revision_that_would_leave_the_cache_is_refused_before_any_request(tmp_path, monkeypatch, revision):
    """huggingface_hub writes the revision as a path (refs/REVISION): it must never reach it."""
    cache = tmp_path / "a" / "b" / "hf_cache"
    cache.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    requests = []
    monkeypatch.setattr(hub_fetch, "hf_hub_download", lambda *args, **kwargs: requests.append(args))
    with pytest.raises(ValueError, match="bad Hub revision"):
        load(f"hf-hub:org/good@{revision}", cache_dir=cache)
    assert requests == [] and victim.read_text() == "mine"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "a", "a/b", "a/b/hf_cache", "victim.txt"]


# ----- a real round trip through a loopback Hub, loaded in fresh processes ---------------------
class _HubHandler(BaseHTTPRequestHandler):
    """Answers HEAD/GET /{org}/{repo}/resolve/{revision}/{file} from folders, like the Hub does."""

    def log_message(self, *args):
        pass

    def _answer(self, body: bool) -> None:
        self.server.requests.append((self.command, self.path))
        parts = urlparse(self.path).path.split("/")
        if len(parts) < 6 or parts[3] != "resolve":
            return self._error(404, "RepoNotFound")
        repo_id, revision, filename = f"{parts[1]}/{parts[2]}", unquote(parts[4]), unquote("/".join(parts[5:]))
        revisions = self.server.repos.get(repo_id)
        if revisions is None:
            return self._error(404, "RepoNotFound")
        match = [(commit, folder) for rev, (commit, folder) in revisions.items() if revision in (rev, commit)]
        if not match:
            return self._error(404, "RevisionNotFound")
        commit, folder = match[0]
        path = folder / filename
        if not path.is_file():
            return self._error(404, "EntryNotFound", commit)
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("X-Repo-Commit", commit)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _error(self, status: int, code: str, commit: str | None = None) -> None:
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        self._answer(body=False)

    def do_GET(self):
        self._answer(body=True)


@pytest.fixture(scope="module")
def loopback_hub(tmp_path_factory):
    """Three published repos served on 127.0.0.1: example/repo (main = trained, v1 = untrained seed 0),
    example/tampered (model.safetensors altered after publishing); plus the expected logits."""
    root = tmp_path_factory.mktemp("hub")
    with pytest.MonkeyPatch.context() as mp:
        install_tiny(mp)
        mp.setenv("ANAS_ZOO_HOME", str(root / "home"))
        expected = save_set(store.store_dir(), seed=7)
        hub.publish(NAME, REPO, to_dir=root / "main")
        hub.publish(NAME, REPO, to_dir=root / "v1", pretrained=False)
        torch.manual_seed(0)
        untrained = logits(load(NAME).eval())
    shutil.copytree(root / "main", root / "tampered")
    state = load_file(str(root / "tampered" / "model.safetensors"))
    state["classifier.weight"][0, 0] += 0.5
    save_file(state, str(root / "tampered" / "model.safetensors"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HubHandler)
    server.requests = []
    server.repos = {
        REPO: {"main": ("a" * 40, root / "main"), "v1": ("b" * 40, root / "v1")},
        "example/tampered": {"main": ("c" * 40, root / "tampered")},
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"server": server, "url": f"http://127.0.0.1:{server.server_address[1]}", "root": root,
           "expected": expected, "untrained": untrained}
    server.shutdown()
    server.server_close()


_CLIENT = """
import json, sys, torch
from safetensors.torch import save_file
out, steps = sys.argv[1], sys.argv[2].split(",")
x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
import anas_zoo
from anas_zoo.space import list_spaces
report, tensors = {"space_registered_before": "hubtest_space" in list_spaces()}, {}
for step in steps:
    kind, name = step.split("=")
    if kind == "registry":
        sys.path.insert(0, TESTS_DIR)
        from test_hub import register_tiny
        register_tiny()
    try:
        model = anas_zoo.load(name, pretrained=True)
        with torch.no_grad():
            tensors[name] = model(x).contiguous()
        report[name] = {"ok": True, "training": model.training}
    except anas_zoo.WeightsError as e:
        report[name] = {"ok": False, "type": type(e).__name__, "error": str(e)}
save_file(tensors, out + ".safetensors")
open(out + ".json", "w").write(json.dumps(report))
""".replace("TESTS_DIR", repr(str(TESTS_DIR)))


def run_client(tmp_path: Path, hub_url: str, hf_home: Path, steps: list[str], offline: bool = False):
    """Load models in a fresh Python process (huggingface_hub reads HF_ENDPOINT/HF_HUB_OFFLINE at import)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=hub_url, HF_HOME=str(hf_home), ANAS_ZOO_HOME=str(tmp_path / "empty_home"),
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_OFFLINE="1" if offline else "0")
    out = tmp_path / "client"
    proc = subprocess.run([sys.executable, "-c", _CLIENT, str(out), ",".join(steps)], env=env,
                          capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(Path(f"{out}.json").read_text()), load_file(f"{out}.safetensors")


@pytest.fixture(scope="module")
def online(loopback_hub, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("online")
    steps = [f"hub=hf-hub:{REPO}", f"hub=hf-hub:{REPO}@v1", "hub=hf-hub:example/tampered", f"registry={NAME}.own"]
    report, tensors = run_client(tmp, loopback_hub["url"], tmp / "hf_home", steps)
    return {"report": report, "tensors": tensors, "hf_home": tmp / "hf_home", "tmp": tmp}


def same_outputs(actual, expected):
    """Another process may order float sums differently (thread count): equal up to rounding."""
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-7)


def test_round_trip_through_loopback_hub_in_fresh_process(loopback_hub, online):
    report, tensors = online["report"], online["tensors"]
    assert report["space_registered_before"] is False  # the space came from the published config.json
    assert report[f"hf-hub:{REPO}"] == {"ok": True, "training": False}
    same_outputs(tensors[f"hf-hub:{REPO}"], loopback_hub["expected"])
    requested = {path for _, path in loopback_hub["server"].requests}
    assert f"/{REPO}/resolve/main/config.json" in requested
    assert f"/{REPO}/resolve/{'a' * 40}/model.safetensors" in requested  # weights from the config's commit
    assert list((online["hf_home"] / "hub" / "models--example--repo" / "snapshots").iterdir())


def test_revision_selects_the_published_branch(loopback_hub, online):
    assert online["report"][f"hf-hub:{REPO}@v1"]["ok"]
    same_outputs(online["tensors"][f"hf-hub:{REPO}@v1"], loopback_hub["untrained"])
    assert not torch.equal(loopback_hub["untrained"], loopback_hub["expected"])


def test_registry_name_falls_back_to_its_hub_repo(loopback_hub, online):
    """No bundled or store weights in the fresh process: load(name, pretrained=True) gets them from the Hub."""
    assert online["report"][f"{NAME}.own"] == {"ok": True, "training": False}
    same_outputs(online["tensors"][f"{NAME}.own"], loopback_hub["expected"])


def test_tampered_hub_weights_fail_sha256(online):
    result = online["report"]["hf-hub:example/tampered"]
    assert result["ok"] is False and result["type"] == "WeightsError"
    assert "sha256 mismatch" in result["error"] and "models--example--tampered" in result["error"]


def test_offline_loads_from_cache_and_says_where_it_looked(loopback_hub, online):
    seen = len(loopback_hub["server"].requests)
    steps = [f"hub=hf-hub:{REPO}", "hub=hf-hub:example/never-downloaded", f"registry={NAME}.absent"]
    report, tensors = run_client(online["tmp"], loopback_hub["url"], online["hf_home"], steps, offline=True)
    assert len(loopback_hub["server"].requests) == seen  # HF_HUB_OFFLINE: not one request
    same_outputs(tensors[f"hf-hub:{REPO}"], loopback_hub["expected"])
    missing = report["hf-hub:example/never-downloaded"]
    assert missing["type"] == "HubUnavailableError"
    assert "example/never-downloaded@main" in missing["error"] and "HF_HUB_OFFLINE" in missing["error"]
    absent = report[f"{NAME}.absent"]["error"]
    assert absent.startswith(f"no local weights for '{NAME}.absent' (looked in ")
    assert "and not available from the Hugging Face Hub repo example/absent@main" in absent
    assert str(store.BUNDLED_DIR) in absent and str(online["tmp"] / "empty_home" / "weights") in absent
    assert "example/absent@main" in absent and str(online["hf_home"] / "hub") in absent
    assert "nobody publishes it" in absent


# ----- hostile or silent endpoints -------------------------------------------------------------
def run_cli_process(tmp_path: Path, hub_url: str, *argv, **env_changes) -> subprocess.CompletedProcess:
    """``anas-zoo ARGV`` in a fresh process against the Hub at ``hub_url``, caches under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "ANAS_ZOO_"))}
    env.update(HF_ENDPOINT=hub_url, HF_HOME=str(tmp_path / "hf_home"), ANAS_ZOO_HOME=str(tmp_path / "home"),
               HF_HUB_DISABLE_TELEMETRY="1", **env_changes)
    return subprocess.run([sys.executable, "-m", "anas_zoo.cli.zoo", *argv], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_path_escaping_revision_never_reaches_the_loopback_hub(loopback_hub, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    seen = len(loopback_hub["server"].requests)
    proc = run_cli_process(tmp_path, loopback_hub["url"], "eval", f"hf-hub:{REPO}@../../../victim.txt",
                           "--data", tmp_path, "--limit", "10")
    assert proc.returncode == 1 and proc.stderr.startswith("error: bad Hub revision '../../../victim.txt'")
    assert proc.stderr.count("\n") == 1
    assert victim.read_text() == "mine" and len(loopback_hub["server"].requests) == seen


def test_a_hub_that_accepts_and_never_answers_fails_within_the_time_limit(tmp_path):
    import socket
    import time

    silent = socket.create_server(("127.0.0.1", 0))  # the kernel accepts connections; nobody ever answers
    try:
        start = time.monotonic()
        proc = run_cli_process(tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}", "eval", "hf-hub:org/repo",
                               "--data", tmp_path, ANAS_ZOO_HUB_TIMEOUT="2")
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: the Hugging Face Hub repo org/repo@main") and proc.stderr.count("\n") == 1
    assert "no complete answer within 2 s (set ANAS_ZOO_HUB_TIMEOUT to wait longer)" in proc.stderr
    assert elapsed < 30  # the process start and imports take most of it; without the limit it never returns


def test_the_hub_time_limit_setting_is_checked(monkeypatch):
    monkeypatch.setenv(hub_fetch.TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match="ANAS_ZOO_HUB_TIMEOUT='soon' is not a positive number"):
        hub_fetch.fetch("hf-hub:org/repo")
    monkeypatch.delenv(hub_fetch.TIMEOUT_ENV)
    assert hub_fetch.hub_timeout() == 60


def test_a_concurrent_publish_to_the_same_folder_loses_with_one_line_error(tmp_path, capsys, monkeypatch):
    """The winner's repo stays whole; the loser (which checked the folder before the winner wrote it) says so."""
    save_set(store.store_dir(), seed=3)
    winner = tmp_path / "repo"
    real_write = hub.write_model_repo

    def racing_write(*args, **kwargs):
        monkeypatch.setattr(hub, "write_model_repo", real_write)
        hub.publish(NAME, REPO, to_dir=winner, results_dir=tmp_path / "none")  # finishes while this run writes
        return real_write(*args, **kwargs)

    monkeypatch.setattr(hub, "write_model_repo", racing_write)
    assert run_cli("publish", NAME, "--repo-id", REPO, "--to-dir", winner)[0] == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: --to-dir {winner} was filled by another writer") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # no temp folder left
    assert sorted(p.name for p in winner.iterdir()) == ["README.md", "config.json", "model.safetensors"]


def test_an_upload_to_an_unreachable_hub_fails_with_one_line(tmp_path, capsys, monkeypatch):
    import socket

    from huggingface_hub import constants

    with socket.create_server(("127.0.0.1", 0)) as closed:  # a port that nobody listens on once it is closed
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert run_cli("publish", NAME, "--repo-id", REPO, "--no-pretrained", "--token", "hf_test")[0] == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot upload the model repo {REPO} to {url}: ") and err.count("\n") == 1
    assert "Traceback" not in err
