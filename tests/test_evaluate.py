"""Top-1/top-5 evaluation and the `anas-zoo eval` command on ImageNet-style folders and CIFAR-10 data."""

import json
from dataclasses import replace

import pytest
import torch
from PIL import Image
from torch import nn

from anas_zoo import zoo
from anas_zoo.cli.zoo import main
from anas_zoo.data_config import DataConfig
from anas_zoo.evaluate import accuracy, as_fractions, eval_batches, evaluate
from anas_zoo.space import get_space
from anas_zoo.static import StaticNet
from anas_zoo.store import save_weights, store_dir
from anas_zoo.train import data as datasets


def test_topk_counts():
    """Inputs are the logits themselves (identity model), so the right answer is known by construction."""
    logits = torch.tensor([
        [0.0, 9, 1, 2, 3, 4, 5],  # label 1: best → top-1 and top-5
        [9.0, 8, 7, 6, 5, 4, 3],  # label 2: third best → top-5 only
        [9.0, 8, 7, 6, 5, 4, 3],  # label 6: worst → miss
        [1.0, 0, 0, 0, 0, 0, 2],  # label 6: best
    ])
    labels = torch.tensor([1, 2, 6, 6])
    batches = [(logits[:3], labels[:3]), (logits[3:], labels[3:])]
    assert evaluate(nn.Identity(), batches) == {"top1": 50.0, "top5": 75.0, "samples": 4}
    limited = evaluate(nn.Identity(), batches, limit=2)
    assert limited == {"top1": 50.0, "top5": 100.0, "samples": 2}
    three_classes = evaluate(nn.Identity(), [(logits[:, :3], torch.tensor([0, 1, 2, 2]))])
    assert three_classes == {"top1": 0.0, "top5": 100.0, "samples": 4}


def test_any_runtime_is_scored_in_percent_and_stored_scores_as_fractions():
    """``accuracy`` takes any batch -> logits function (an ONNX or OpenVINO runner as well as a model)."""
    logits, labels = torch.eye(4)[[0, 1, 3, 3]], torch.tensor([0, 1, 2, 3])
    result = accuracy(lambda x: x * 2, [(logits, labels)])
    assert result == {"top1": 75.0, "top5": 100.0, "samples": 4}
    assert as_fractions(result) == {"top1": 0.75, "top5": 1.0, "samples": 4}


def test_no_samples_is_an_error():
    with pytest.raises(ValueError, match="no samples"):
        evaluate(nn.Identity(), [])


def _image_folder(root, classes=3, per_class=2):
    generator = torch.Generator().manual_seed(0)
    for c in range(classes):
        folder = root / f"n{c:08d}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.randint(0, 256, (300, 340, 3), dtype=torch.uint8, generator=generator)
            Image.fromarray(pixels.numpy()).save(folder / f"ILSVRC_{c}_{i}.JPEG")
    return root


def _store_biased(name: str, tag: str, ranking: list[int]) -> None:
    """Save weights for ``name.tag`` whose prediction is ``ranking`` (best first) whatever the input."""
    entry = zoo.get_entry(name)
    model = StaticNet(entry.arch, entry.space, entry.num_classes)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        for rank, cls in enumerate(ranking):
            model.classifier.bias[cls] = 100.0 - rank
    save_weights(model, entry.metadata(tag), store_dir(), f"{entry.name}.{tag}")


def test_cli_eval_imagenet_folder(tmp_path, capsys):
    val = _image_folder(tmp_path / "imagenet" / "val")
    _store_biased("attentivenas_a0", "in1k", [1, 7, 0, 8, 2])  # class 1 always; classes 0..2 in top-5
    assert main(["eval", "attentivenas_a0", "--data", str(val), "--batch-size", "4", "--workers", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == 6 and result["split"] == "val"
    assert result["top1"] == pytest.approx(100 / 3) and result["top5"] == 100.0
    # the parent folder with --split, and --limit (an evenly spread subset: one image per class here)
    assert main(["eval", "attentivenas_a0.in1k", "--data", str(tmp_path / "imagenet"), "--split", "val",
                 "--limit", "3", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "top-1 33.33 %" in out and "top-5 100.00 %" in out and "(3 images)" in out


def test_imagenet_batches_use_the_published_pipeline(tmp_path):
    val = _image_folder(tmp_path / "val", classes=2, per_class=1)
    preprocessing = zoo.get_entry("attentivenas_a4").preprocessing
    batches, split = eval_batches(preprocessing, val, batch_size=2, num_workers=0)
    (x, labels), = list(batches)
    assert split == "val" and x.shape == (2, 3, 256, 256) and labels.tolist() == [0, 1]
    image = Image.open(min((val / "n00000000").iterdir())).convert("RGB")
    expected = datasets.to_tensor(datasets.eval_transform(image, 256))
    assert torch.allclose(x[0], expected)


@pytest.fixture()
def tiny_cifar(monkeypatch):
    """A 120-image stand-in for load_cifar10's result (the real one needs all 60 000 images)."""
    generator = torch.Generator().manual_seed(0)
    data = {split: (torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator),
                    torch.arange(n) % 10) for split, n in (("train", 100), ("test", 20))}
    monkeypatch.setattr(datasets, "load_cifar10", lambda source=None: data)
    return data


@pytest.fixture()
def cifar_model(monkeypatch):
    """A CIFAR-10-space model registered for this test only."""
    space = get_space("cifar10")
    preprocessing = DataConfig(resolution=24, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    reference = zoo.get_entry("attentivenas_a0")
    spec = replace(reference.weights[0], tag="test", license="apache-2.0")
    entry = zoo.ModelEntry(name="eval_test_cifar", arch=space.min_arch(), space="cifar10", num_classes=10,
                           macs=0, params=0, preprocessing=preprocessing, weights=(spec,))
    monkeypatch.setitem(zoo._REGISTRY, entry.name, entry)
    return entry


def test_cifar_batches_use_the_recorded_preprocessing(tiny_cifar, cifar_model):
    batches, split = eval_batches(cifar_model.preprocessing, "unused", batch_size=8, limit=10)
    xs, labels = zip(*batches)
    x, labels = torch.cat(xs), torch.cat(labels)
    images, all_labels = tiny_cifar["test"]
    spread = torch.arange(0, 20, 2)
    assert split == "test" and x.shape == (10, 3, 24, 24) and torch.equal(labels, all_labels[spread])
    expected = datasets.resize_to(datasets.normalize(images[spread], (0.5,) * 3, (0.25,) * 3), 24)
    assert torch.allclose(x, expected)


def test_cli_eval_cifar(tiny_cifar, cifar_model, capsys):
    _store_biased(cifar_model.name, "test", [3, 4, 5, 6, 7])
    assert main(["eval", cifar_model.name, "--data", "cifar.tar.xz", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["top1"], result["top5"], result["samples"], result["split"]) == (10.0, 50.0, 20, "test")
    assert main(["eval", cifar_model.name, "--data", "cifar.tar.xz", "--split", "val", "--json"]) == 0
    held_out = json.loads(capsys.readouterr().out)
    assert held_out["samples"] == 10 and held_out["split"] == "val"


def test_cli_eval_takes_cifar10_from_the_data_setting(tiny_cifar, cifar_model, capsys, monkeypatch):
    _store_biased(cifar_model.name, "test", [3, 4, 5, 6, 7])
    monkeypatch.setenv("ANAS_ZOO_DATA", "from-setting.tar.xz")
    assert main(["eval", cifar_model.name, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["data"], result["top1"], result["samples"]) == ("from-setting.tar.xz", 10.0, 20)
    monkeypatch.delenv("ANAS_ZOO_DATA")
    assert main(["eval", cifar_model.name]) == 1
    assert "pass --data PATH or set ANAS_ZOO_DATA" in capsys.readouterr().err
    _store_biased("attentivenas_a1", "in1k", [0])
    assert main(["eval", "attentivenas_a1"]) == 2  # ImageNet models have no default folder
    assert "pass --data DIR" in capsys.readouterr().err


def test_cli_eval_errors(tmp_path, capsys):
    assert main(["eval", "attentivenas_a1", "--data", str(tmp_path)]) == 1
    assert "import-official" in capsys.readouterr().err
    _store_biased("attentivenas_a1", "in1k", [0])
    assert main(["eval", "attentivenas_a1", "--data", str(tmp_path / "missing"), "--workers", "0"]) == 1
    assert "missing" in capsys.readouterr().err
    assert main(["eval", "no_such_model", "--data", str(tmp_path)]) == 1
    with pytest.raises(SystemExit) as usage:
        main(["eval", "attentivenas_a1", "--data", str(tmp_path), "--split", "train"])
    assert usage.value.code == 2
