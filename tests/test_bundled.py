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
from anas_zoo.evaluate import eval_batches, evaluate
from anas_zoo.fileio import sha256_of
from anas_zoo.flops import count_macs
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.space import get_space
from anas_zoo.store import WeightsError
from anas_zoo.train.data import cifar10_source

FAMILY = [f"attentivenas_cifar10_a{i}" for i in range(7)]
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SUPERNET = store.BUNDLED_DIR / "attentivenas_cifar10_supernet.safetensors"
#: Recipe keys that name where a run reads or writes, or how it reports, not how it trains.
NOT_RECIPE = {"out_dir", "init_from", "data_path", "progress"}


def test_the_family_is_bundled_and_spans_the_paper_like_budget_range():
    assert anas_zoo.list_models("attentivenas_cifar10_*") == FAMILY
    assert anas_zoo.list_models("attentivenas_cifar10_*", pretrained=True) == [f"{n}.cifar10" for n in FAMILY]
    space = get_space("cifar10")
    smallest = count_macs(space.min_arch(), space)
    infos = [anas_zoo.model_info(n) for n in FAMILY]
    macs = [i["macs"] for i in infos]
    assert macs == sorted(macs) and len(set(macs)) == 7
    assert smallest <= macs[0] <= 1.25 * smallest and 2.5 * smallest <= macs[-1] <= 3.5 * smallest * 1.001
    for info in infos:
        (weights,) = info["weights"]
        assert weights["available"] and weights["license"] == "apache-2.0"
        metric = weights["metrics"][0]
        assert (metric["dataset"], metric["split"], metric["samples"], metric["source"]) == ("cifar10", "test", 10000,
                                                                                             "measured")


@pytest.mark.parametrize("name", FAMILY)
def test_bundled_model_reproduces_its_recorded_test_accuracy(name):
    archive = cifar10_source()
    if not archive.exists():
        pytest.skip(f"the CIFAR-10 test split is not at {archive} (ANAS_ZOO_DATA), so the recorded accuracy cannot be re-measured")
    model = anas_zoo.load(name, pretrained=True)
    assert not model.training
    recorded = model.pretrained_cfg["metrics"][0]
    batches, split = eval_batches(resolve_data_config(model), archive, "test", batch_size=500)
    result = evaluate(model, batches)
    assert split == "test" and result["samples"] == recorded["samples"] == 10000
    assert abs(result["top1"] - recorded["top1"]) <= 0.3, (result, recorded)


def test_a_tampered_bundled_file_fails_with_a_clear_error(tmp_path, monkeypatch):
    name = FAMILY[0]
    for path in store.BUNDLED_DIR.glob(f"{name}.cifar10.*"):
        shutil.copy(path, tmp_path / path.name)
    weights = tmp_path / f"{name}.cifar10.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(store, "BUNDLED_DIR", tmp_path)
    with pytest.raises(WeightsError, match=f"sha256 mismatch for .*{name}.cifar10.safetensors"):
        anas_zoo.load(name, pretrained=True)


def test_registry_entries_are_the_bundled_records():
    for record in bundled.bundled_records():
        info = anas_zoo.model_info(record["name"])
        assert info["genome"] == record["genome"] and info["preprocessing"] == record["preprocessing"]
        assert info["classes"] == record["classes"] and info["weights"][0]["metrics"] == record["metrics"]


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
