"""The bundled CIFAR-10 family: complete, loadable offline, tamper-evident, and as accurate as recorded."""

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import anas_zoo
from anas_zoo import bundled, store
from anas_zoo.cli.train import load_config
from anas_zoo.export import to_onnx
from anas_zoo.export.onnx_validation import ort_runner
from anas_zoo.export.validation import runtime_accuracy
from anas_zoo.fileio import sha256_of
from anas_zoo.flops import count_macs
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.space import get_space
from anas_zoo.store import WeightsError
from anas_zoo.train.data import cifar10_source

FAMILY = [f"attentivenas_cifar10_a{i}" for i in range(7)]
#: Every bundled weight set, in the registry's order: the default tag (fine-tuned) first, then the supernet's own.
WEIGHT_SETS = [f"{n}.{tag}" for n in FAMILY for tag in bundled.TAG_PREFERENCE]
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SUPERNET = store.BUNDLED_DIR / "attentivenas_cifar10_supernet.safetensors"
#: Recipe keys that name where a run reads or writes, or how it reports, not how it trains.
NOT_RECIPE = {"out_dir", "init_from", "data_path", "progress"}


def _test_top1(tag: str) -> list[float]:
    """The recorded CIFAR-10 test top-1 of every member's ``tag`` weights, in MACs order."""
    return [next(w for w in anas_zoo.model_info(n)["weights"] if w["tag"] == tag)["metrics"][0]["top1"] for n in FAMILY]


def test_the_family_is_bundled_and_runs_from_the_smallest_subnet_to_the_largest():
    assert anas_zoo.list_models("attentivenas_cifar10_*") == FAMILY
    assert anas_zoo.list_models("attentivenas_cifar10_*", pretrained=True) == WEIGHT_SETS
    space = get_space("cifar10")
    macs = [anas_zoo.model_info(n)["macs"] for n in FAMILY]
    assert macs == sorted(macs) and len(set(macs)) == 7
    assert macs[0] == count_macs(space.min_arch(), space)
    assert macs[-1] >= 0.9 * count_macs(space.max_arch(), space)
    for name in FAMILY:
        weights = anas_zoo.model_info(name)["weights"]
        assert [(w["tag"], w["kind"]) for w in weights] == [("cifar10_ft", "finetuned"), ("cifar10", "supernet")]
        for w in weights:
            assert w["available"] and w["license"] == "apache-2.0"
            metric = w["metrics"][0]
            assert (metric["dataset"], metric["split"], metric["samples"], metric["source"]) == (
                "cifar10", "test", 10000, "measured")


def test_the_default_weights_get_better_with_every_step_up_in_macs():
    """The issue's floors: each member beats the previous by >= 0.3 points; smallest >= 78 %, largest >= 85 %."""
    top1 = _test_top1(bundled.TAG_PREFERENCE[0])
    hundredths = [round(t * 100) for t in top1]  # the records' precision: 82.24 - 81.94 is 0.30, not 0.2999...
    assert all(b - a >= 30 for a, b in zip(hundredths, hundredths[1:])), top1
    assert top1[0] >= 78 and top1[-1] >= 85, top1


def test_the_default_tag_is_the_one_with_the_better_front():
    default, other = (_test_top1(tag) for tag in bundled.TAG_PREFERENCE)
    assert all(d > o for d, o in zip(default, other)), (default, other)


@pytest.mark.parametrize("name", WEIGHT_SETS)
def test_bundled_model_reproduces_its_recorded_test_accuracy(name, tmp_path):
    archive = cifar10_source()
    if not archive.exists():
        pytest.skip(f"the CIFAR-10 test split is not at {archive} (ANAS_ZOO_DATA), so the recorded accuracy cannot be re-measured")
    model = anas_zoo.load(name, pretrained=True)
    assert not model.training
    recorded = model.pretrained_cfg["metrics"][0]
    # Re-measured on ONNX Runtime, through the fp32 export of the loaded weights (the artefact users deploy, its
    # parity with PyTorch checked in test_export): the same top-1 as PyTorch in 0.65-0.7x the time
    # (benchmarks/eval_speed.py: a6 6.1 s against 8.7 s per 2,000 images on one core, BN folded).
    report = to_onnx(model, tmp_path / "model.onnx", name=name, exporter="torchscript", check=False)
    run = ort_runner(report.path, threads=torch.get_num_threads())
    result = runtime_accuracy(run, archive, resolve_data_config(model), samples=10000)
    assert result["samples"] == recorded["samples"] == 10000
    assert abs(result["top1"] - recorded["top1"]) <= 0.3, (result, recorded)


def test_a_tampered_bundled_file_fails_with_a_clear_error(tmp_path, monkeypatch):
    name = FAMILY[0]
    for path in store.BUNDLED_DIR.glob(f"{name}.*"):
        shutil.copy(path, tmp_path / path.name)
    weights = tmp_path / f"{name}.cifar10_ft.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(store, "BUNDLED_DIR", tmp_path)
    with pytest.raises(WeightsError, match=f"sha256 mismatch for .*{name}.cifar10_ft.safetensors"):
        anas_zoo.load(name, pretrained=True)


def test_registry_entries_are_the_bundled_records():
    for record in bundled.bundled_records():
        info = anas_zoo.model_info(record["name"])
        assert info["genome"] == record["genome"] and info["preprocessing"] == record["preprocessing"]
        (weights,) = [w for w in info["weights"] if w["tag"] == record["tag"]]
        assert info["classes"] == record["classes"] and weights["metrics"] == record["metrics"]
        assert weights["kind"] == record["kind"]


def test_the_family_is_float16_and_was_extracted_from_the_bundled_supernet():
    records = bundled.bundled_records()
    assert {r["training"]["supernet_sha256"] for r in records} == {sha256_of(SUPERNET)}
    assert {r["dtype"] for r in records} == {"float16"}
    for record in records:
        stored = load_file(store.BUNDLED_DIR / record["file"])
        assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}, record["name"]


def _recipe(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in NOT_RECIPE}


def test_the_bundled_recipe_config_is_what_trained_the_family():
    """configs/cifar10.yaml is the records' recipe, run once from scratch (no warm-restart lineage)."""
    training = bundled.bundled_records()[0]["training"]
    assert training["lineage"] == []
    config = load_config(str(CONFIGS / "cifar10.yaml"), [])
    assert _recipe(dataclasses.asdict(config)) == _recipe(training["recipe"])
    assert config.init_from is None


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_config_is_a_valid_recipe(config):
    load_config(str(CONFIGS / config), [])
