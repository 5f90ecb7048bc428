"""Every command-line tool over a table of bad inputs: one ``error:`` line (or argparse usage) and a non-zero
exit, never a traceback, and nothing written outside the test's folder.

Cases run in-process through each tool's ``main`` (what ``python -m anas_zoo.cli.X`` calls), so an escaping
exception is exactly the traceback a user would see. Tests run as root, which no folder permission stops,
so "unwritable" cases use a file where a folder is needed (and the reverse) instead of chmod. A full disk is a
real one: a tiny tmpfs mounted in a private mount namespace (``unshare -rm``) for a child process; where the
platform refuses that, those tests are skipped and say why.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_official import save_official
from test_train_data import make_cifar_folder

from anas_zoo.cli import export, search, train, zoo
from anas_zoo.hub import write_model_repo
from anas_zoo.hub_fetch import CONFIG_FILE
from anas_zoo.official.importer import import_official
from anas_zoo.official.keymap import to_official
from anas_zoo.space import get_space
from anas_zoo.store import BUNDLED_DIR, store_dir

REPO = Path(__file__).resolve().parent.parent
SUPERNET = BUNDLED_DIR / "attentivenas_cifar10_supernet.safetensors"
MODEL = "attentivenas_cifar10_a0"
GOOD_GENOME = get_space("cifar10").min_arch().to_dict()
CLIS = {"anas-zoo": zoo.main, "anas-export": export.main, "anas-search": search.main, "anas-train": train.main}


def _genome(**changes) -> dict:
    return {"genome": {**GOOD_GENOME, **changes}, "space": "cifar10"}


@pytest.fixture
def bad(tmp_path) -> Path:
    """A folder of bad inputs: a file where folders go, a folder where files go, broken and malicious files."""
    (tmp_path / "afile").write_text("occupied")
    (tmp_path / "adir").mkdir()
    (tmp_path / "x.json").mkdir()  # where the ONNX sidecar of x.onnx would go
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "broken.yaml").write_text("space: cifar10\nlr: [0.1\n")
    (tmp_path / "empty_family.json").write_text("[]")
    genomes = {"null": {"genome": None}, "abc": {"genome": "abc"}, "width_null": _genome(width=None),
               "res_half": _genome(resolution=24.5), "res_negative": _genome(resolution=-5),
               "space5": {**_genome(), "space": 5}, "space_nosuch": {**_genome(), "space": "nosuch"},
               "classes_negative": {**_genome(), "num_classes": -5}, "classes_text": {**_genome(), "num_classes": "ten"},
               "classes_huge": {**_genome(), "num_classes": 1e9}, "classes_zero": {**_genome(), "num_classes": 0}}
    for name, document in genomes.items():
        (tmp_path / f"genome_{name}.json").write_text(json.dumps(document))
    weights = tmp_path / "weights"
    weights.mkdir()
    for suffix in ("safetensors", "json"):
        shutil.copy(BUNDLED_DIR / f"{MODEL}.cifar10.{suffix}", weights / f"w.{suffix}")
    record = json.loads((weights / "w.json").read_text())
    (weights / "w.json").write_text(json.dumps({**record, "file": "w.safetensors"}))
    (weights / "lonely.safetensors").write_bytes((weights / "w.safetensors").read_bytes())
    truncated = weights / "truncated.safetensors"
    truncated.write_bytes((weights / "w.safetensors").read_bytes()[:-1000])
    (weights / "truncated.json").write_text(json.dumps({**record, "file": truncated.name,
                                                        "sha256": hashlib.sha256(truncated.read_bytes()).hexdigest()}))
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "state.safetensors").write_bytes(b"\x00" * 64)  # a fine-tuning state cut short
    # A local ImageNet weight set: finetune refuses it by its class count before reading any weights.
    imagenet_record = {"file": "attentivenas_a0.in1k.safetensors", "sha256": "0" * 64, "genome": GOOD_GENOME}
    store_dir().mkdir(parents=True)
    (store_dir() / "attentivenas_a0.in1k.json").write_text(json.dumps(imagenet_record))
    return tmp_path


@pytest.fixture(scope="module")
def cifar(tmp_path_factory) -> Path:
    """A CIFAR-10 shaped folder of 20 + 20 images (finetune reads it before it finds its state damaged)."""
    return make_cifar_folder(tmp_path_factory.mktemp("cifar") / "cifar")


CASES = [
    # anas-zoo
    ("anas-zoo", ["info", f"{MODEL}.badtag"], 1, "unknown weight tag 'badtag'"),
    ("anas-zoo", ["info", "nosuch_model"], 1, "unknown model 'nosuch_model'"),
    ("anas-zoo", ["eval", MODEL, "--data", "{T}", "--workers", "-3"], 2, "must be an integer >= 0"),
    ("anas-zoo", ["eval", "hf-hub:org/good@../../../victim.txt", "--data", "{T}"], 1, "bad Hub revision"),
    ("anas-zoo", ["eval", "hf-hub:org/good@main\nx", "--data", "{T}"], 1, "bad Hub revision"),
    ("anas-zoo", ["eval", "hf-hub:../../etc", "--data", "{T}"], 1, "bad Hub repo"),
    ("anas-zoo", ["eval", MODEL, "--data", "{T}/missing", "--limit", "5"], 1, "{T}/missing"),
    ("anas-zoo", ["demo", "--data", "{T}/missing", "--samples", "5"], 1, "{T}/missing"),
    ("anas-zoo", ["demo", "--data", "{T}/image.png", "--samples", "5"], 1, "image.png"),
    ("anas-zoo", ["extract", "--supernet", str(SUPERNET), "--family", "{T}/empty_family.json", "--prefix", "../../x",
                  "--out", "{T}/out"], 2, "--prefix '../../x' is not allowed"),
    ("anas-zoo", ["extract", "--supernet", str(SUPERNET), "--family", "{T}/empty_family.json", "--prefix", "x",
                  "--out", "{T}/out"], 2, "holds no genomes"),
    ("anas-zoo", ["extract", "--supernet", str(SUPERNET), "--family", "{T}/genome_null.json", "--prefix", "x",
                  "--out", "{T}/afile"], 1, "--out {T}/afile is a file, not a folder"),
    ("anas-zoo", ["extract", "--supernet", str(SUPERNET), "--family", "{T}/adir", "--prefix", "x",
                  "--out", "{T}/out"], 2, "--family {T}/adir"),
    ("anas-zoo", ["extract", "--supernet", str(SUPERNET), "--family", "{T}/empty_family.json", "--prefix", "x",
                  "--out", "{T}/out", "--supernet-out", "{T}/afile/s.safetensors"], 1, "is a file, not a folder"),
    ("anas-zoo", ["publish", MODEL, "--repo-id", "org/repo", "--to-dir", "{T}/afile"], 1, "not an empty folder"),
    ("anas-zoo", ["publish", MODEL, "--repo-id", "org/repo", "--to-dir", "{T}/afile/repo"], 1, "{T}/afile"),
    ("anas-zoo", ["publish", MODEL, "--repo-id", "org/../x", "--to-dir", "{T}/repo"], 1, "bad Hub repo"),
    ("anas-zoo", ["publish-results", "--repo-id", "org/r", "--results-dir", "{T}/weights", "--to-dir", "{T}/afile/r"],
     1, "{T}/afile"),
    ("anas-zoo", ["import-official", "{T}/image.png", "--store", "{T}/store"], 1,
     "is not a readable torch checkpoint: it is neither a zip nor a legacy pickle file"),
    ("anas-zoo", ["import-official", "{T}/adir", "--store", "{T}/store"], 1, "{T}/adir: Is a directory"),
    ("anas-zoo", ["import-official", "{T}/missing.pth", "--store", "{T}/store"], 1, "{T}/missing.pth"),
    # anas-zoo finetune: every case fails before any training step
    *[("anas-zoo", ["finetune", *args], code, message) for args, code, message in [
        (["nosuch.cifar10", "--epochs", "1"], 1, "unknown model 'nosuch.cifar10'"),
        ([f"{MODEL}.badtag", "--epochs", "1"], 1, "unknown weight tag 'badtag'"),
        ([MODEL, "--epochs", "1"], 2, f"give the starting weights as NAME.TAG, e.g. {MODEL}.cifar10"),
        ([f"{MODEL}.cifar10"], 2, "the following arguments are required: --epochs"),
        *[([f"{MODEL}.cifar10", "--epochs", value], 2, f"epochs must be a finite number > 0, got {shown}")
          for value, shown in [("0", "0.0"), ("-1", "-1.0"), ("inf", "inf"), ("nan", "nan")]],
        ([f"{MODEL}.cifar10", "--epochs", "abc"], 2, "argument --epochs: invalid float value: 'abc'"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--kd-weight", "-1"], 2, "kd_weight must be a finite number >= 0, got -1.0"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--kd-weight", "nan"], 2, "kd_weight must be a finite number >= 0, got nan"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--weight-decay", "-0.001"], 2,
         "weight_decay must be a finite number >= 0, got -0.001"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--lr", "0"], 2, "lr must be a finite number > 0, got 0.0"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--lr", "inf"], 2, "lr must be a finite number > 0, got inf"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--batch-size", "0"], 2, "must be an integer >= 1, got '0'"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--max-steps", "-2"], 2, "must be an integer >= 1, got '-2'"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--threads", "x"], 2, "argument --threads: must be an integer >= 1, got 'x'"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--dtype", "bogus"], 2, "argument --dtype: invalid choice: 'bogus'"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--device", "tpu"], 2, "argument --device: unknown torch device 'tpu'"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--teacher", "attentivenas_cifar10_a6.cifar10", "--kd-weight", "0"], 2,
         "teacher 'attentivenas_cifar10_a6.cifar10' with kd_weight 0 would never be used"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--teacher", "nosuch.cifar10"], 1, "unknown model 'nosuch.cifar10'"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--teacher", "attentivenas_a1.in1k"], 2,
         "no local weights for 'attentivenas_a1.in1k'"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--teacher", "attentivenas_a0.in1k"], 2,
         "attentivenas_a0.in1k has 1000 classes; fine-tuning trains on CIFAR-10's 10"),
        *[([f"{MODEL}.cifar10", "--epochs", "1", "--tag", tag], 2, f"tag {tag!r} is not allowed")
          for tag in ("../x", "", ".hidden", "a/b")],
        ([f"{MODEL}.cifar10", "--epochs", "1", "--tag", "cifar10", "--out", str(BUNDLED_DIR)], 2,
         "would overwrite the starting weights"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--out", "{T}/afile"], 1, "output folder {T}/afile is a file, not a folder"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--out", "{T}/afile/deeper"], 1,
         "output folder {T}/afile/deeper cannot be created: {T}/afile is a file, not a folder"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--out", "{T}/out", "--state-dir", "{T}/afile"], 1,
         "state folder {T}/afile is a file, not a folder"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--out", "{T}/out", "--state-dir", "{T}/state", "--data", "{T}/missing"],
         1, "{T}/missing"),
        ([f"{MODEL}.cifar10", "--epochs", "1", "--out", "{T}/out", "--state-dir", "{T}/damaged", "--data", "{D}",
          "--batch-size", "4"], 1,
         "{T}/damaged/state.safetensors is not a readable safetensors checkpoint"),
    ]],
    # anas-zoo soup: every case fails before any averaging
    *[("anas-zoo", ["soup", *args], code, message) for args, code, message in [
        ([f"{MODEL}.cifar10"], 2, f"at least two different weight sets; {MODEL}.cifar10 holds one"),
        ([f"{MODEL}.cifar10", "{T}/weights/w.json"], 2, "at least two different weight sets"),  # the same file
        ([f"{MODEL}.cifar10", "nosuch.cifar10"], 1, "unknown model 'nosuch.cifar10'"),
        ([f"{MODEL}.cifar10", f"{MODEL}.badtag"], 1, "unknown weight tag 'badtag'"),
        ([f"{MODEL}.cifar10", MODEL], 2, f"NAME.TAG or the path of a weight set's .json record, not '{MODEL}'"),
        ([f"{MODEL}.cifar10", "attentivenas_a1.in1k"], 2, "no local weights for 'attentivenas_a1.in1k'"),
        ([f"{MODEL}.cifar10", "attentivenas_a0.in1k"], 2,
         "attentivenas_a0.in1k has 1000 classes; a soup is calibrated and measured on CIFAR-10's 10"),
        ([f"{MODEL}.cifar10", "{T}/missing.json"], 1, "cannot read weight metadata {T}/missing.json"),
        ([f"{MODEL}.cifar10", "{T}/binary.json"], 1, "cannot read weight metadata {T}/binary.json"),
        ([f"{MODEL}.cifar10", "{T}/weights/truncated.json", "--out", "{T}/out"], 1, "is not a readable safetensors"),
        ([f"{MODEL}.cifar10", "attentivenas_cifar10_a1.cifar10"], 2,
         f"attentivenas_cifar10_a1.cifar10 is attentivenas_cifar10_a1 with another genome than {MODEL}.cifar10"),
        ([f"{MODEL}.cifar10", f"{MODEL}.cifar10_ft", "--tag", "../x"], 2, "tag '../x' is not allowed"),
        ([f"{MODEL}.cifar10", f"{MODEL}.cifar10_ft", "--out", str(BUNDLED_DIR)], 2, "would overwrite an ingredient"),
        ([f"{MODEL}.cifar10", f"{MODEL}.cifar10_ft", "--out", "{T}/afile"], 1,
         "output folder {T}/afile is a file, not a folder"),
        ([f"{MODEL}.cifar10", f"{MODEL}.cifar10_ft", "--out", "{T}/out", "--data", "{T}/missing"], 1, "{T}/missing"),
        ([f"{MODEL}.cifar10", f"{MODEL}.cifar10_ft", "--dtype", "bogus"], 2, "argument --dtype: invalid choice: 'bogus'"),
    ]],
    # anas-export
    ("anas-export", ["onnx", "--model", MODEL, "--output", "{T}/x.onnx"], 1, "x.json' is a directory"),
    ("anas-export", ["onnx", "--model", MODEL, "--output", "{T}/afile/x.onnx"], 1, "{T}/afile"),
    ("anas-export", ["onnx", "--model", MODEL, "--output", "{T}/adir"], 1, "must end in .onnx"),
    ("anas-export", ["onnx", "--model", MODEL, "--checkpoint", "{T}/weights/lonely.safetensors", "--output",
                     "{T}/y.onnx"], 1, "has no metadata record '{T}/weights/lonely.json' beside it"),
    ("anas-export", ["onnx", "--model", MODEL, "--checkpoint", "{T}/weights/truncated.json", "--output",
                     "{T}/y.onnx", "--no-check"], 1, "is not a readable safetensors file"),
    ("anas-export", ["onnx", "--model", MODEL, "--resolution", "-5", "--output", "{T}/y.onnx"], 1,
     "resolution -5 is not possible"),
    ("anas-export", ["onnx", "--arch", "{T}/binary.json", "--output", "{T}/y.onnx"], 1, "{T}/binary.json"),
    *[("anas-export", ["onnx", "--arch", f"{{T}}/genome_{name}.json", "--output", "{T}/y.onnx"], 1, message)
      for name, message in [("null", "a genome must be a JSON object"), ("abc", "a genome must be a JSON object"),
                            ("width_null", "genome width must be a non-empty list"),
                            ("res_half", "genome resolution must be an integer from 1 to 4096, got 24.5"),
                            ("res_negative", "genome resolution must be an integer"),
                            ("space5", "unknown search space 5"), ("space_nosuch", "unknown search space 'nosuch'"),
                            ("classes_negative", "num_classes must be an integer from 1 to 100000, got -5"),
                            ("classes_text", "num_classes must be an integer from 1 to 100000, got 'ten'"),
                            ("classes_huge", "num_classes must be an integer from 1 to 100000, got 1000000000.0"),
                            ("classes_zero", "num_classes must be an integer from 1 to 100000, got 0")]],
    # anas-search
    ("anas-search", ["--supernet", str(SUPERNET), "--data", "{T}", "--device", "tpu"], 2, "device 'tpu'"),
    ("anas-search", ["--supernet", str(SUPERNET), "--data", "{T}", "--out", "{T}/afile"], 1,
     "--out {T}/afile is a file, not a folder"),
    ("anas-search", ["--supernet", "{T}/image.png", "--data", "{T}", "--out", "{T}/s"], 1, "image.png"),
    # anas-train
    ("anas-train", ["--config", "{T}/broken.yaml"], 2, "config file {T}/broken.yaml is not readable YAML"),
    ("anas-train", ["--config", "{T}/binary.json"], 2, "{T}/binary.json"),
    ("anas-train", ["--config", str(REPO / "configs/tiny.yaml"), "lr=fast"], 2, "lr='fast' is not allowed; expected float"),
    ("anas-train", ["--config", str(REPO / "configs/tiny.yaml"), "epochs=-1"], 2, "epochs must be > 0, got -1"),
    ("anas-train", ["--config", str(REPO / "configs/tiny.yaml"), "num_classes=0"], 2, "num_classes must be an integer"),
    ("anas-train", ["--config", str(REPO / "configs/tiny.yaml"), "out_dir={T}/afile/run"], 1,
     "out_dir {T}/afile/run cannot be created: {T}/afile is a file, not a folder"),
]


def _snapshot() -> set[str]:
    """What lies in the places a stray write would land: the repository, its checkpoints, the working folder."""
    return {f"{d}/{name}" for d in (REPO, REPO / "checkpoints", Path.cwd()) for name in os.listdir(d)}


@pytest.mark.parametrize(("cli", "argv", "code", "message"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_ends_in_one_error_line(bad, cifar, capsys, monkeypatch, cli, argv, code, message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = _snapshot()
    argv = [a.replace("{T}", str(bad)).replace("{D}", str(cifar)) for a in argv]
    try:
        exit_code = CLIS[cli](argv)
    except SystemExit as e:  # argparse's usage errors
        exit_code = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert exit_code == code, err
    if code == 2 and err.startswith("usage:"):  # argparse: usage, then "PROG: error: ..."
        assert err.splitlines()[-1].startswith(cli) and ": error: " in err.splitlines()[-1], err
    else:
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message.replace("{T}", str(bad)) in err
    assert _snapshot() == before


# ----- a full disk ------------------------------------------------------------------------------
#: Runs in a private mount namespace: mounts a tmpfs of SIZE bytes on DISK, runs the command, lists what is left on
#: DISK into LISTING (the mount vanishes with the namespace), and exits with the command's code.
FULL_DISK = '''disk=$1 size=$2 listing=$3; shift 3
mount -t tmpfs -o size="$size" tmpfs "$disk" || exit 97
"$@"; code=$?
(cd "$disk" && find . -mindepth 1) > "$listing"
exit $code'''
PAGE = 4096


def _pages(nbytes: int) -> int:
    """The room tmpfs takes for a file of ``nbytes``: whole pages."""
    return -(-nbytes // PAGE) * PAGE


def _tmpfs_refusal(where: Path) -> str | None:
    """Why no private tmpfs can be mounted here (None when one can): it needs ``unshare`` and user namespaces."""
    if shutil.which("unshare") is None:
        return "no unshare command to mount a private tmpfs"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size={PAGE} tmpfs "{where}"'],
                           capture_output=True, text=True)
    return None if probe.returncode == 0 else f"cannot mount a private tmpfs here: {probe.stderr.strip()}"


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """``run(cli, argv, size)``: the CLI module ``anas_zoo.cli.<cli>`` in a child process whose ``{disk}`` folder is a
    tmpfs of ``size`` bytes, so its writes end in a real ENOSPC. Asserts what a full disk must end in: exit 1, one
    ``error:`` line naming the cause and no traceback, nothing left on the disk (no file under a final name, no
    temp file or folder), nothing new outside. Returns that error line, with ``{disk}`` for the folder. Skipped where
    no tmpfs can be mounted."""
    disk = tmp_path / "disk"
    disk.mkdir()
    refusal = _tmpfs_refusal(disk)
    if refusal:
        pytest.skip(refusal)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    listing = tmp_path / "listing.txt"

    def run(cli: str, argv: list[str], size: int) -> str:
        before, beside = _snapshot(), sorted(tmp_path.iterdir())
        command = [sys.executable, "-m", f"anas_zoo.cli.{cli}", *[a.replace("{disk}", str(disk)) for a in argv]]
        done = subprocess.run(["unshare", "-rm", "sh", "-c", FULL_DISK, "sh", str(disk), str(size), str(listing),
                               *command], capture_output=True, text=True)
        assert "Traceback" not in done.stderr
        assert done.returncode == 1, done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and done.stderr.endswith(errors[0] + "\n"), done.stderr
        assert listing.read_text() == ""
        listing.unlink()
        assert _snapshot() == before and sorted(tmp_path.iterdir()) == beside
        return errors[0].replace(str(disk), "{disk}")

    return run


def test_export_on_a_full_disk_writes_nothing(full_disk):
    """Room for the exported fp32 graph, not for the final file written after it."""
    weights = (BUNDLED_DIR / f"{MODEL}.cifar10.safetensors").stat().st_size
    error = full_disk("export", ["onnx", "--model", MODEL, "--output", "{disk}/x.onnx"], size=_pages(weights * 3 // 2))
    assert error == "error: {disk}/x.onnx: No space left on device"


def test_publish_to_dir_on_a_full_disk_writes_no_repo(full_disk, tmp_path):
    """Room for the weights and config.json, not for the model card written last."""
    probe = tmp_path / "probe"
    write_model_repo(MODEL, probe, "org/repo")
    size = _pages((probe / "model.safetensors").stat().st_size) + _pages((probe / CONFIG_FILE).stat().st_size)
    shutil.rmtree(probe)
    error = full_disk("zoo", ["publish", MODEL, "--repo-id", "org/repo", "--to-dir", "{disk}/repo"], size=size)
    assert error == "error: {disk}/repo: No space left on device"


def test_import_official_on_a_full_disk_leaves_no_weights_without_their_record(full_disk, tmp_path, supernet):
    """Room for the imported weights, not for their JSON record: the weights must not stay behind alone."""
    official = tmp_path / "attentive_nas_pretrained.pth.tar"
    save_official(to_official(supernet), official)
    with pytest.warns(UserWarning):
        written = import_official(official, models=["a0"], store=tmp_path / "probe", progress=False)["weights"]
    size = _pages(Path(written[0]["path"]).with_suffix(".safetensors").stat().st_size)
    shutil.rmtree(tmp_path / "probe")
    error = full_disk("zoo", ["import-official", str(official), "--models", "a0", "--store", "{disk}"], size=size)
    assert error == "error: {disk}/attentivenas_a0.in1k: No space left on device"
