"""anas-zoo extract: searched genomes of a real (tiny) supernet checkpoint → verified weight sets and records."""

import json
import random
import re

import pytest
import torch
from safetensors.torch import load_file
from test_train_data import make_cifar_folder
from train_helpers import TINY, tiny_cifar10_checkpoint

import anas_zoo
from anas_zoo import bundled, store, zoo
from anas_zoo.cli.zoo import main
from anas_zoo.data_config import DataConfig
from anas_zoo.evaluate import eval_batches, evaluate
from anas_zoo.extract import extract_weights
from anas_zoo.fileio import sha256_of
from anas_zoo.flops import count
from anas_zoo.static import StaticNet
from anas_zoo.train.calibrate import calibrate_bn
from anas_zoo.train.checkpoint import read_checkpoint
from anas_zoo.train.data import calibration_loader, cifar10_split, load_cifar10

RECIPE = {"config": {"data": "cifar10", "holdout_fraction": 0.5, "seed": 3, "sampler": "bestup"}, "step": 42,
          "source": {"commit": "abc123", "dirty": False}, "train_seconds": 7.5,
          "lineage": [{"path": "runs/a/last.safetensors", "sha256": "0" * 64, "step": 9, "train_seconds": 3.0,
                       "source": {"commit": "abc000", "dirty": False}, "recipe": {"epochs": 1}}]}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny 10-class supernet checkpoint with non-trivial weights, and a 60 + 60 image CIFAR-10 folder."""
    root = tmp_path_factory.mktemp("extract")
    checkpoint, net = tiny_cifar10_checkpoint(root / "supernet.safetensors", RECIPE)
    data = make_cifar_folder(root / "cifar", per_class=6)
    genomes = [TINY.min_arch(), TINY.sample(random.Random(1))]
    return checkpoint, data, genomes, net


def test_extracted_weights_carry_a_complete_record_and_reproduce_it(setup, tmp_path):
    checkpoint, data, genomes, net = setup
    out = tmp_path / "weights"
    records = extract_weights(checkpoint, genomes, ["tiny_a0", "tiny_a1"], out, "c10", data, batch_size=16,
                              extra=[{"search": {"held_out_top1": 0.5}}, {"search": {"held_out_top1": 0.6}}])
    splits = cifar10_split(load_cifar10(data), 0.5, seed=3)
    for arch, record in zip(genomes, records):
        stem = f"{record['name']}.c10"
        assert (out / f"{stem}.safetensors").is_file() and (out / f"{stem}.json").is_file()
        assert (record["macs"], record["params"]) == count(arch, TINY, 10)
        assert record["genome"] == arch.to_dict() and record["preprocessing"]["resolution"] == arch.resolution
        assert record["classes"][0] == "airplane" and record["license"] == "apache-2.0"
        assert record["calibration"]["images"] == 30 and record["calibration"]["seed"] == 3
        assert record["training"] == {"supernet_sha256": sha256_of(checkpoint), "steps": 42, "train_seconds": 7.5,
                                      "recipe": RECIPE["config"], "source": RECIPE["source"],
                                      "lineage": RECIPE["lineage"]}
        assert "held_out_top1" in record["search"]
        metric = record["metrics"][0]
        assert (metric["dataset"], metric["split"], metric["samples"], metric["source"]) == ("cifar10", "test", 60,
                                                                                             "measured")

        # The stored BN statistics are those of a calibration on the whole held-out split, augmented as in training ...
        assert record["calibration"]["augmented"] is True
        model = StaticNet(arch, TINY, 10)
        loaded = zoo.load_into(model, out / f"{stem}.json")
        expected = net.extract(arch)
        calibrate_bn(expected, calibration_loader(splits["val"], 16, arch.resolution), 2)
        for key, value in expected.state_dict().items():
            assert torch.equal(model.state_dict()[key], value), key
        # ... and the recorded accuracy is what the public evaluation path measures with the record's preprocessing.
        batches, split = eval_batches(DataConfig.from_dict(loaded["preprocessing"]), data, "test", batch_size=7)
        result = evaluate(model, batches)
        assert split == "test" and round(result["top1"], 2) == metric["top1"] and result["samples"] == 60


def test_bundled_records_register_loadable_models(setup, tmp_path, monkeypatch):
    checkpoint, data, genomes, _ = setup
    extract_weights(checkpoint, genomes[:1], ["tiny_bundled_a0"], tmp_path, "c10", data, batch_size=16)
    (tmp_path / "notes.json").write_text('{"not": "a weight record"}')
    monkeypatch.setattr(store, "BUNDLED_DIR", tmp_path)
    monkeypatch.setattr(bundled, "BUNDLED_DIR", tmp_path)
    records = bundled.bundled_records()
    assert [r["name"] for r in records] == ["tiny_bundled_a0"]
    (entry,) = bundled.entries(records)
    monkeypatch.setitem(zoo._REGISTRY, entry.name, entry)
    assert anas_zoo.list_models("tiny_bundled_*", pretrained=True) == ["tiny_bundled_a0.c10"]
    model = anas_zoo.load("tiny_bundled_a0", pretrained=True)
    assert not model.training and model.pretrained_cfg["metrics"] == records[0]["metrics"]
    assert entry.weights[0].license == "apache-2.0" and "%" in entry.description


def test_cli_extracts_a_family_file(setup, tmp_path, capsys):
    checkpoint, data, genomes, _ = setup
    family = tmp_path / "family.json"
    members = [{"genome": g.to_dict(), "accuracy": 0.4, "budget_macs": 1e6} for g in genomes]
    members[0] |= {"held_out_top1": 0.45, "held_out_samples": 5000}  # re-scored on the whole held-out split
    family.write_text(json.dumps(members))
    argv = ["extract", "--supernet", str(checkpoint), "--family", str(family), "--prefix", "tiny", "--tag", "t",
            "--out", str(tmp_path / "out"), "--data", str(data), "--json"]
    assert main(argv) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records] == ["tiny_a0", "tiny_a1"]
    assert records[0]["search"] == {"held_out_top1": 0.45, "held_out_samples": 5000, "budget_macs": 1e6}
    assert records[1]["search"] == {"held_out_top1": 0.4, "held_out_samples": None, "budget_macs": 1e6}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "tiny_a0.t.json", "tiny_a0.t.safetensors", "tiny_a1.t.json", "tiny_a1.t.safetensors"]

    family.write_text('{"genome": 1}')
    assert main(["extract", "--supernet", str(checkpoint), "--family", str(family), "--prefix", "x"]) == 2
    assert "not a family.json" in capsys.readouterr().err


def test_cli_float16_family_is_extracted_from_the_slimmed_supernet_it_ships_with(setup, tmp_path, capsys):
    checkpoint, data, genomes, _ = setup
    family = tmp_path / "family.json"
    family.write_text(json.dumps([{"genome": g.to_dict(), "accuracy": 0.4, "budget_macs": 1e6} for g in genomes]))
    out, slim = tmp_path / "out", tmp_path / "out" / "supernet.safetensors"
    argv = ["extract", "--supernet", str(checkpoint), "--family", str(family), "--prefix", "tiny", "--tag", "t",
            "--out", str(out), "--data", str(data), "--supernet-out", str(slim), "--dtype", "float16", "--json"]
    assert main(argv) == 0
    records = json.loads(capsys.readouterr().out)
    assert {r["training"]["supernet_sha256"] for r in records} == {sha256_of(slim)} != {sha256_of(checkpoint)}
    assert read_checkpoint(slim)[1]["dtype"] == "float16"
    for arch, record in zip(genomes, records):
        assert record["dtype"] == "float16"
        assert {v.dtype for v in load_file(out / record["file"]).values() if v.is_floating_point()} == {torch.float16}
        # The recorded accuracy is that of the float16 weights as loaded, not of the float32 model before rounding.
        model = StaticNet(arch, TINY, 10)
        loaded = zoo.load_into(model, out / f"{record['name']}.t.json")
        batches, _ = eval_batches(DataConfig.from_dict(loaded["preprocessing"]), data, "test", batch_size=7)
        assert round(evaluate(model, batches)["top1"], 2) == record["metrics"][0]["top1"]

    with pytest.raises(SystemExit) as usage:
        main(argv[:-3] + ["--dtype", "bfloat16"])
    assert usage.value.code == 2
    assert re.search(r"--dtype: invalid choice: 'bfloat16' \(choose from '?float32'?, '?float16'?\)",
                     capsys.readouterr().err)


@pytest.mark.parametrize("option, value", [("--prefix", "../../x"), ("--prefix", "/tmp/x"), ("--prefix", "a/b"),
                                           ("--prefix", ".."), ("--prefix", ""), ("--prefix", "a.b"),
                                           ("--tag", "../t"), ("--tag", ".hidden")])
def test_cli_refuses_a_prefix_or_tag_that_is_not_a_plain_name(setup, tmp_path, capsys, option, value):
    checkpoint, data, genomes, _ = setup
    family = tmp_path / "work" / "family.json"
    family.parent.mkdir()
    family.write_text(json.dumps([{"genome": genomes[0].to_dict()}]))
    argv = ["extract", "--supernet", str(checkpoint), "--family", str(family), "--prefix", "tiny",
            "--out", str(tmp_path / "work" / "out" / "deep"), "--data", str(data), option, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {option} {value!r} is not allowed") and err.count("\n") == 1
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")] == ["work", "work/family.json"]


def test_extract_weights_refuses_names_that_leave_the_output_folder(setup, tmp_path):
    checkpoint, data, genomes, _ = setup
    with pytest.raises(ValueError, match="model name '../../x_a0' is not allowed"):
        extract_weights(checkpoint, genomes[:1], ["../../x_a0"], tmp_path / "out", "c10", data)
    with pytest.raises(ValueError, match="would be written outside"):
        store.save_weights(StaticNet(genomes[0], TINY, 10), {}, tmp_path / "out", "../escape")
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_an_empty_family_and_an_output_that_is_a_file(setup, tmp_path, capsys):
    checkpoint, data, genomes, _ = setup
    family = tmp_path / "family.json"
    family.write_text("[]")
    base = ["extract", "--supernet", str(checkpoint), "--family", str(family), "--prefix", "tiny", "--data", str(data)]
    assert main([*base, "--out", str(tmp_path / "out")]) == 2
    assert "holds no genomes; nothing to extract" in capsys.readouterr().err
    family.write_text(json.dumps([{"genome": genomes[0].to_dict()}]))
    (tmp_path / "occupied").write_text("mine")
    assert main([*base, "--out", str(tmp_path / "occupied" / "sub")]) == 1
    err = capsys.readouterr().err
    assert err == f"error: --out {tmp_path / 'occupied' / 'sub'} cannot be created: {tmp_path / 'occupied'} is a file, not a folder\n"
    assert (tmp_path / "occupied").read_text() == "mine" and not (tmp_path / "out").exists()
