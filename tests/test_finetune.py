"""anas-zoo finetune: a member of a real (tiny) extracted family trained standalone, distilled, resumed exactly."""

import json

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
from anas_zoo.train import checkpoint
from anas_zoo.train.checkpoint import CheckpointError
from anas_zoo.train.finetune import FinetuneConfig, FinetuneError, Finetuner
from anas_zoo.train.losses import label_smoothing_ce
from anas_zoo.train.soup import soup

RECIPE = {"config": {"data": "cifar10", "holdout_fraction": 0.5, "seed": 3}, "step": 42, "train_seconds": 7.5,
          "source": {"commit": "abc123", "dirty": False}, "lineage": []}


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """A tiny two-member family (.cifar10, extracted once) registered as if bundled, and a 60 + 60 image CIFAR-10
    folder; each test writes its fine-tuned weights elsewhere, or under a name no other test reads."""
    root = tmp_path_factory.mktemp("finetune")
    checkpoint, _ = tiny_cifar10_checkpoint(root / "supernet.safetensors", RECIPE)
    data = make_cifar_folder(root / "cifar", per_class=6)
    weights = root / "checkpoints"
    extract_weights(checkpoint, [TINY.min_arch(), TINY.max_arch()], ["ft_tiny_a0", "ft_tiny_a1"], weights,
                    "cifar10", data, batch_size=16)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "BUNDLED_DIR", weights)
        patch.setattr(bundled, "BUNDLED_DIR", weights)
        register(patch)
        yield data, weights


def register(monkeypatch):
    for entry in bundled.entries(bundled.bundled_records()):
        monkeypatch.setitem(zoo._REGISTRY, entry.name, entry)


def config(tmp_path, data, weights, **overrides) -> FinetuneConfig:
    values = dict(model="ft_tiny_a0.cifar10", teacher="ft_tiny_a1.cifar10", epochs=2, tag="cifar10_ft",
                  out=str(weights), state_dir=str(tmp_path / "state"), data_path=str(data), batch_size=8, lr=0.4, threads=1,
                  checkpoint_every=2, eval_every=0, progress=False)
    return FinetuneConfig(**(values | overrides))


def test_finetuned_member_is_a_second_weight_set_with_its_kind_lineage_and_measured_accuracy(family, tmp_path,
                                                                                           monkeypatch):
    data, weights = family
    start = anas_zoo.load("ft_tiny_a0.cifar10", pretrained=True)
    record = Finetuner(config(tmp_path, data, weights)).fit()
    register(monkeypatch)  # the new weight set joins its model's entry, first in the tag order
    assert anas_zoo.list_models("ft_tiny_*", pretrained=True) == ["ft_tiny_a0.cifar10_ft", "ft_tiny_a0.cifar10",
                                                                  "ft_tiny_a1.cifar10"]
    assert (record["kind"], record["tag"], record["genome"]) == ("finetuned", "cifar10_ft", TINY.min_arch().to_dict())
    run = record["finetune"]
    assert run["from"] == "ft_tiny_a0.cifar10" and run["teacher"] == "ft_tiny_a1.cifar10" and run["steps"] == 2 * 3
    assert run["recipe"]["kd_weight"] == 1.0 and record["training"]["recipe"] == RECIPE["config"]
    assert json.loads((weights / "ft_tiny_a0.cifar10.json").read_text())["kind"] == "supernet"
    model = anas_zoo.load("ft_tiny_a0", pretrained=True)  # the preferred tag loads by default
    assert model.pretrained_cfg["tag"] == "cifar10_ft" and not model.training
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), start.state_dict().values()))
    stored = load_file(weights / "ft_tiny_a0.cifar10_ft.safetensors")
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    batches, _ = eval_batches(DataConfig.from_dict(record["preprocessing"]), data, "test", batch_size=7)
    metric = record["metrics"][0]
    assert round(evaluate(model, batches)["top1"], 2) == metric["top1"] and metric["samples"] == 60
    info = anas_zoo.model_info("ft_tiny_a0")
    assert [(w["tag"], w["kind"]) for w in info["weights"]] == [("cifar10_ft", "finetuned"), ("cifar10", "supernet")]


@pytest.mark.parametrize(("cutmix", "trivial"), [(0.0, False), (0.5, False), (0.5, True)])
def test_an_interrupted_run_resumes_to_the_same_weights(family, tmp_path, cutmix, trivial):
    data, weights = family
    options = {"cutmix": cutmix, "trivial_augment": trivial}
    whole = Finetuner(config(tmp_path / "a", data, tmp_path / "out_a", **options)).fit()
    assert Finetuner(config(tmp_path / "b", data, tmp_path / "out_b", **options)).fit(max_steps=3) is None
    assert not (tmp_path / "out_b").exists()
    resumed = Finetuner(config(tmp_path / "b", data, tmp_path / "out_b", **options)).fit()
    a = load_file(tmp_path / "out_a" / "ft_tiny_a0.cifar10_ft.safetensors")
    b = load_file(tmp_path / "out_b" / "ft_tiny_a0.cifar10_ft.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["metrics"] == whole["metrics"] and resumed["finetune"]["steps"] == whole["finetune"]["steps"]
    assert whole["finetune"]["recipe"]["cutmix"] == cutmix and whole["finetune"]["recipe"]["trivial_augment"] == trivial


def test_a_run_stopped_on_one_device_resumes_on_another_to_the_same_weights(family, tmp_path):
    """The device is where a run trains, not what it trains: it is left out of the recipe a resume must match."""
    data, weights = family
    whole = Finetuner(config(tmp_path / "a", data, tmp_path / "out_a")).fit()
    assert Finetuner(config(tmp_path / "b", data, tmp_path / "out_b")).fit(max_steps=3) is None
    resumed = Finetuner(config(tmp_path / "b", data, tmp_path / "out_b", device="cpu:0")).fit()
    a = load_file(tmp_path / "out_a" / "ft_tiny_a0.cifar10_ft.safetensors")
    b = load_file(tmp_path / "out_b" / "ft_tiny_a0.cifar10_ft.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a) and resumed["metrics"] == whole["metrics"]
    assert "device" not in FinetuneConfig(model="x.y").recipe() and resumed["finetune"]["recipe"]["device"] == "cpu:0"


def test_cutmix_mixes_the_label_loss_of_the_steps_it_draws(family, tmp_path):
    data, weights = family
    plain = Finetuner(config(tmp_path / "plain", data, tmp_path / "out", kd_weight=0.0, teacher=None))
    mixing = Finetuner(config(tmp_path / "mix", data, tmp_path / "out", kd_weight=0.0, teacher=None, cutmix=1.0))
    x, y = next(iter(plain.loader))
    mixed, (order, keep) = mixing._cutmix(x)
    assert 0 <= keep < 1 and not torch.equal(mixed, x)
    torch.manual_seed(0)  # the same dropout draws for both forwards
    logits = mixing.model(mixing._input(mixed, mixing.resolution))
    expected = keep * label_smoothing_ce(logits, y, 0.1) + (1 - keep) * label_smoothing_ce(logits, y[order], 0.1)
    torch.manual_seed(0)
    assert mixing.train_step(x, y)["label"] == pytest.approx(expected.item(), rel=1e-5)
    assert plain._cutmix(x) == (x, None)


def test_the_largest_member_trains_on_the_labels_alone(family, tmp_path):
    data, weights = family
    record = Finetuner(config(tmp_path, data, tmp_path / "out", model="ft_tiny_a1.cifar10", teacher=None,
                              kd_weight=0.0)).fit()
    assert record["finetune"]["teacher"] is None and record["finetune"]["recipe"]["kd_weight"] == 0.0


def test_a_second_stage_continues_a_finetuned_set_and_its_record_chains_both(family, tmp_path, monkeypatch):
    data, weights = family
    first = Finetuner(config(tmp_path / "a", data, weights, model="ft_tiny_a1.cifar10", teacher=None, kd_weight=0.0,
                             tag="stage1")).fit()
    register(monkeypatch)
    second = Finetuner(config(tmp_path / "b", data, tmp_path / "out", model="ft_tiny_a1.stage1", teacher=None,
                              kd_weight=0.0, tag="stage1", epochs=1)).fit()
    run = second["finetune"]
    assert run["from"] == "ft_tiny_a1.stage1" and run["from_sha256"] == first["sha256"] and run["steps"] == 3
    assert run["after"] == first["finetune"] and first["finetune"]["after"] is None
    assert second["training"] == first["training"] and second["kind"] == "finetuned"


def test_runs_that_cannot_start_or_resume_say_why(family, tmp_path):
    data, weights = family
    with pytest.raises(FinetuneError, match="would overwrite the starting weights"):
        Finetuner(config(tmp_path, data, weights, tag="cifar10"))
    with pytest.raises(FinetuneError, match="NAME.TAG"):
        Finetuner(config(tmp_path, data, weights, model="ft_tiny_a0"))
    with pytest.raises(FinetuneError, match="would never be used"):
        Finetuner(config(tmp_path, data, weights, kd_weight=0.0))
    with pytest.raises(FinetuneError, match="epochs must be a finite number > 0, got 0"):
        config(tmp_path, data, weights, epochs=0)
    with pytest.raises(FinetuneError, match="cutmix is the share of steps that mix, between 0 and 1, got 1.5"):
        config(tmp_path, data, weights, cutmix=1.5)
    with pytest.raises(FinetuneError, match="device 'meta' is not supported; use cpu or cuda"):
        config(tmp_path, data, weights, device="meta")
    with pytest.raises(FinetuneError, match="unknown torch device 'warp-drive'"):
        config(tmp_path, data, weights, device="warp-drive")
    Finetuner(config(tmp_path, data, weights)).fit(max_steps=1)
    with pytest.raises(FinetuneError, match="another fine-tuning run .*lr: 0.4 there, 0.1 now"):
        Finetuner(config(tmp_path, data, weights, lr=0.1)).fit()


def test_a_state_written_before_an_option_existed_resumes_as_its_default(family, tmp_path):
    data, weights = family
    run = config(tmp_path, data, tmp_path / "out")
    assert Finetuner(run).fit(max_steps=2) is None
    tensors, meta = checkpoint.read_checkpoint(run.state_path, checkpoint.FINETUNE_FORMAT)
    del meta["recipe"]["cutmix"], meta["recipe"]["trivial_augment"]  # as written before --cutmix
    checkpoint._write(run.state_path, tensors, meta)
    resumed = Finetuner(run)
    assert resumed.resume() and resumed.step == 2
    with pytest.raises(FinetuneError, match="cutmix: 0.0 there, 0.5 now"):
        Finetuner(config(tmp_path, data, tmp_path / "out", cutmix=0.5)).resume()
    with pytest.raises(FinetuneError, match="trivial_augment: False there, True now"):
        Finetuner(config(tmp_path, data, tmp_path / "out", trivial_augment=True)).resume()


def test_cli_finetunes_resumes_and_reports(family, tmp_path, capsys):
    data, weights = family
    argv = ["finetune", "ft_tiny_a1.cifar10", "--epochs", "1", "--kd-weight", "0", "--out", str(tmp_path / "out"),
            "--tag", "cifar10_ft", "--state-dir", str(tmp_path / "state"), "--data", str(data), "--batch-size", "8",
            "--threads", "1", "--weight-decay", "5e-4", "--trivial-augment"]
    assert main([*argv, "--max-steps", "1", "--json"]) == 1
    assert "rerun the same command to resume" in capsys.readouterr().err
    assert main([*argv, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["finetune"]["steps"] == 3 and (tmp_path / "out" / "ft_tiny_a1.cifar10_ft.json").is_file()
    assert record["finetune"]["recipe"]["weight_decay"] == 5e-4 and record["finetune"]["recipe"]["trivial_augment"]
    assert main(["finetune", "ft_tiny_a1.cifar10", "--epochs", "1", "--tag", "cifar10", "--out", str(weights)]) == 2
    assert "would overwrite the starting weights" in capsys.readouterr().err


def test_a_damaged_state_resumes_from_the_one_it_replaced(family, tmp_path):
    data, weights = family
    run = config(tmp_path, data, weights)
    assert Finetuner(run).fit(max_steps=3) is None  # states at steps 2 and 3: the step-2 one is kept as previous
    state = run.state_path
    data_bytes = bytearray(state.read_bytes())
    data_bytes[-1] ^= 0x01
    state.write_bytes(bytes(data_bytes))
    resumed = Finetuner(run)
    assert resumed.resume() and resumed.step == 2
    events = [json.loads(line) for line in (state.parent / "metrics.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "fallback" and "is damaged" in events[-1]["reason"]
    assert events[-1]["from"] == str(state.parent / "state.previous.safetensors")
    state.parent.joinpath("state.previous.safetensors").write_bytes(bytes(data_bytes))
    with pytest.raises(CheckpointError, match="is damaged.*previous checkpoint cannot be restored either"):
        Finetuner(run).resume()


@pytest.fixture(scope="module")
def two_runs(family, tmp_path_factory) -> list[str]:
    """Record paths of two short fine-tuning runs of ft_tiny_a0 from the same weights with different recipes."""
    data, _ = family
    root = tmp_path_factory.mktemp("soup_ingredients")
    paths = []
    for label, lr in (("a", 0.4), ("b", 0.1)):
        Finetuner(config(root / label, data, root / f"out_{label}", lr=lr, epochs=1)).fit()
        paths.append(str(root / f"out_{label}" / "ft_tiny_a0.cifar10_ft.json"))
    return paths


def test_a_soup_averages_its_ingredients_recalibrates_and_records_them(family, two_runs, tmp_path):
    data, weights = family
    ingredients = two_runs
    record = soup(ingredients, tmp_path / "soup", tag="soup", data_path=str(data), progress=False)
    stored = load_file(tmp_path / "soup" / "ft_tiny_a0.soup.safetensors")
    parts = [load_file(path.replace(".json", ".safetensors")) for path in ingredients]
    recalibrated = ("running_mean", "running_var", "num_batches_tracked")
    averaged = [k for k in stored if not k.endswith(recalibrated)]
    assert averaged and all(torch.equal(stored[k], ((parts[0][k].float() + parts[1][k].float()) / 2).half())
                            for k in averaged)
    assert any(not torch.equal(stored[k], parts[0][k]) for k in stored if k.endswith("running_mean"))
    assert (record["kind"], record["tag"], record["genome"]) == ("finetuned", "soup", TINY.min_arch().to_dict())
    run = record["finetune"]
    sources = [json.loads(open(path).read()) for path in ingredients]
    assert [i["weights"] for i in run["ingredients"]] == ingredients
    assert [(i["sha256"], i["finetune"]) for i in run["ingredients"]] == [(r["sha256"], r["finetune"]) for r in sources]
    assert record["training"] == sources[0]["training"] and record["calibration"]["images"] == 30  # the held-out half of 60
    model = zoo.load_record(tmp_path / "soup" / "ft_tiny_a0.soup.json")
    batches, _ = eval_batches(DataConfig.from_dict(record["preprocessing"]), data, "test", batch_size=7)
    assert round(evaluate(model, batches)["top1"], 2) == record["metrics"][0]["top1"]


def test_soups_that_cannot_be_made_say_why(family, two_runs, tmp_path, capsys):
    data, weights = family
    one = two_runs[0]
    with pytest.raises(FinetuneError, match="at least two different weight sets; .* hold one"):
        soup([one, one], tmp_path / "soup", data_path=str(data))
    with pytest.raises(FinetuneError, match="ft_tiny_a1.cifar10 is ft_tiny_a1 with another genome"):
        soup([one, "ft_tiny_a1.cifar10"], tmp_path / "soup", data_path=str(data))
    with pytest.raises(FinetuneError, match="would overwrite an ingredient"):
        soup(["ft_tiny_a0.cifar10", one], weights, tag="cifar10", data_path=str(data))
    assert main(["soup", "ft_tiny_a0", one, "--out", str(tmp_path / "soup")]) == 2
    assert "NAME.TAG or the path" in capsys.readouterr().err
    assert main(["soup", "ft_tiny_a0.cifar10", one, "--out", str(tmp_path / "soup"), "--data", str(data), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [i["weights"] for i in record["finetune"]["ingredients"]] == ["ft_tiny_a0.cifar10", one]
    assert not list((tmp_path / "soup").glob("*.tmp*")) and (tmp_path / "soup" / "ft_tiny_a0.cifar10_ft.json").is_file()
