"""The wheel is the library: built from the checkout and installed alone, it loads, demos and exports the bundled
family from a folder outside the checkout.

The wheel is built from a copy of the files it is made of (no ``build/`` left in the checkout) with the
environment's setuptools, and installed with ``--no-deps`` into a target folder, so torch and the other
dependencies are the ones already installed. Its commands run with that folder as the only addition to
``sys.path``, from an empty working directory, with no ``ANAS_ZOO_DATA``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WHEEL_SOURCES = ("pyproject.toml", "README.md", "anas_zoo", "checkpoints")


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True)


def _source_packages() -> set[str]:
    return {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "anas_zoo").rglob("__init__.py")}


def _bundled_tags() -> set[str]:
    records = (json.loads(p.read_text()) for p in (ROOT / "checkpoints").glob("*.json"))
    return {f"{r['name']}.{r['tag']}" for r in records}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """The wheel and the folder it is installed in, and how to run a command against that install alone."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in WHEEL_SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(root / "dist"), str(source))
    (wheel,) = (root / "dist").glob("anas_zoo-*.whl")
    target = root / "site"
    _pip("install", "--no-deps", "--target", str(target), str(wheel))
    workdir = root / "work"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ANAS_ZOO_DATA")}
    env.update(PYTHONPATH=str(target), ANAS_ZOO_HOME=str(root / "home"))

    def run(*command: str) -> str:
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return {"wheel": wheel, "target": target, "workdir": workdir, "run": run}


def test_the_wheel_holds_every_package_and_the_bundled_checkpoints(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    packages = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert packages == _source_packages()
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "anas_zoo").rglob("*.py")}
    assert modules <= names
    bundled = {f"anas_zoo/checkpoints/{p.name}" for p in (ROOT / "checkpoints").iterdir()}
    assert bundled and bundled <= names


def test_the_installed_wheel_loads_every_bundled_weight_tag(installed):
    script = (
        "import json, sys, anas_zoo, torch\n"
        "from anas_zoo.store import find_local\n"
        "for tag in sys.argv[1:]:\n"
        "    model = anas_zoo.load(tag, pretrained=True)\n"
        "    model(torch.zeros(1, 3, model.resolution, model.resolution))\n"
        "print(json.dumps({'package': anas_zoo.__file__, 'records': [str(find_local(t)) for t in sys.argv[1:]]}))\n"
    )
    tags = sorted(_bundled_tags())
    result = json.loads(installed["run"](sys.executable, "-c", script, *tags))
    assert Path(result["package"]).is_relative_to(installed["target"])
    assert all(Path(r).is_relative_to(installed["target"] / "anas_zoo" / "checkpoints") for r in result["records"])


def test_the_installed_wheel_runs_the_demo(installed):
    bin_dir = installed["target"] / "bin"
    result = json.loads(installed["run"](str(bin_dir / "anas-zoo"), "demo", "--threads", "1", "--json"))
    assert {f"{r['name']}.{tag}" for r in result["models"] for tag in r["test_top1_by_tag"]} == _bundled_tags()
    assert {r["tag"] for r in result["models"]} == {"cifar10_ft"}
    assert result["data"].startswith("synthetic") and result["onnx"]["passed"]


def test_the_installed_wheel_exports_a_bundled_model(installed):
    output = installed["workdir"] / "a0.onnx"
    report = json.loads(installed["run"](str(installed["target"] / "bin" / "anas-export"), "onnx", "--model",
                                         "attentivenas_cifar10_a0", "--pretrained", "--output", str(output), "--json"))
    assert report["passed"] and output.is_file() and report["metadata"]["weights"] != "random-init"
