"""Typed pretrained configs: DataConfig (the ``preprocessing`` record), its transform, PretrainedCfg and
resolve_data_config, against the registry, the bundled records and the two batch pipelines."""

import json
from dataclasses import replace

import pytest
import torch
from PIL import Image

import anas_zoo
from anas_zoo import store
from anas_zoo.data_config import DataConfig, create_transform
from anas_zoo.pretrained_cfg import PretrainedCfg, resolve_data_config
from anas_zoo.static import StaticNet
from anas_zoo.store import WeightsError, load_into, save_weights, store_dir
from anas_zoo.train import data as datasets
from anas_zoo.zoo import get_entry, list_models


@pytest.mark.parametrize("path", sorted(store.BUNDLED_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_every_bundled_record_reads_back_to_the_same_preprocessing(path):
    recorded = json.loads(path.read_text())["preprocessing"]
    config = DataConfig.from_dict(recorded)
    resolution = recorded["resolution"]
    assert config.to_dict() == recorded and config.crop is None and config.input_size == (3, resolution, resolution)


def test_registered_pipelines_are_the_published_ones():
    imagenet = get_entry("attentivenas_a4").preprocessing
    assert imagenet == DataConfig.imagenet(256) and imagenet.to_dict() == {
        "resize": 256, "crop": 224, "interpolation": "bilinear", "resolution": 256, "resize_interpolation": "bicubic",
        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert DataConfig.cifar10(24).to_dict() == {
        "source_size": 32, "interpolation": "bilinear", "antialias": True, "resolution": 24,
        "mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.2435, 0.2616]}


@pytest.mark.parametrize("record, message", [
    ({"resolution": 32, "mean": [0.5] * 3, "std": [0.2] * 3, "crop_pct": 0.9}, "unknown preprocessing key.*crop_pct"),
    ({"resolution": 32, "mean": [0.5] * 3}, "no std"),
    ({"resolution": 32, "mean": [0.5] * 3, "std": [0.2] * 3, "interpolation": "bicubic"}, "'bicubic' is not one of bilinear"),
    ({"resolution": 32, "mean": [0.5] * 3, "std": [0.2] * 3, "crop": 28}, "give all three"),
    ({"resolution": 0, "mean": [0.5] * 3, "std": [0.2] * 3}, "resolution 0 must be a positive integer"),
])
def test_a_bad_preprocessing_record_is_a_one_line_error(record, message):
    with pytest.raises(ValueError, match=message):
        DataConfig.from_dict(record)


def test_the_cifar_transform_of_one_image_is_the_batch_pipeline_of_its_tensor():
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    config = DataConfig(resolution=24, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), source_size=32, antialias=True)
    (batch, _), = datasets.cifar10_loader((images, torch.zeros(3, dtype=torch.long)), 3, train=False,
                                          resolution=config.resolution, mean=config.mean, std=config.std)
    transform = create_transform(config)
    for image, expected in zip(images, batch):
        one = transform(Image.fromarray(image.permute(1, 2, 0).numpy()))
        assert one.shape == config.input_size and torch.allclose(one, expected, atol=1e-6)


def test_the_imagenet_transform_follows_the_config():
    pixels = torch.randint(0, 256, (300, 340, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    image = Image.fromarray(pixels.numpy())
    published = create_transform(DataConfig.imagenet(192))(image)
    assert torch.equal(published, datasets.to_tensor(datasets.eval_transform(image, 192)))
    other = DataConfig(resolution=192, mean=(0.5,) * 3, std=(0.5,) * 3, resize=200, crop=192,
                       resize_interpolation="bilinear")
    expected = datasets.to_tensor(datasets.eval_transform(image, 192, resize=200, crop=192), (0.5,) * 3, (0.5,) * 3)
    assert torch.equal(create_transform(other)(image), expected)


def test_pretrained_cfg_is_typed_and_reads_like_its_record():
    entry = get_entry("attentivenas_cifar10_a0")
    model = anas_zoo.load("attentivenas_cifar10_a0", pretrained=True)
    cfg = model.pretrained_cfg
    record = json.loads(store.find_local(f"attentivenas_cifar10_a0.{cfg.tag}").read_text())
    assert isinstance(cfg, PretrainedCfg) and cfg.tag == entry.weights[0].tag and cfg.kind == entry.weights[0].kind
    assert (cfg.name, cfg.num_classes, cfg.license, cfg.file, cfg.sha256) == (
        "attentivenas_cifar10_a0", 10, "apache-2.0", record["file"], record["sha256"])
    assert cfg.classes == tuple(record["classes"]) and cfg.metrics == tuple(record["metrics"])
    assert cfg.preprocessing == DataConfig.from_dict(record["preprocessing"])
    assert {k: v for k, v in cfg.items() if k in record} == record  # the stored record, key for key
    assert cfg["macs"] == entry.macs and {**cfg}["training"] == record["training"] and cfg.get("nope") is None


def test_a_config_before_its_weights_are_loaded_and_a_hub_hosted_one():
    entry = get_entry("attentivenas_a0")
    cfg = anas_zoo.load("attentivenas_a0").pretrained_cfg
    assert (cfg.tag, cfg.license, cfg.sha256, cfg.hub_id) == ("in1k", "cc-by-nc-4.0", None, None)
    assert cfg == entry.pretrained_cfg("in1k") and cfg != entry.pretrained_cfg("alphanet_in1k")
    hosted = replace(entry, weights=(replace(entry.weights[0], hub_repo="example/a0@v1"),))
    assert hosted.pretrained_cfg().hub_id == "example/a0@v1"
    with pytest.raises(ValueError, match="metadata record has no preprocessing"):
        PretrainedCfg.from_record({"name": "x", "num_classes": 10})


def test_resolve_data_config_follows_the_model_resolution():
    assert resolve_data_config(anas_zoo.load("attentivenas_cifar10_a0")) == DataConfig.cifar10(24)
    assert resolve_data_config(anas_zoo.load("attentivenas_a0", resolution=64)) == DataConfig.imagenet(64)
    bare = StaticNet(get_entry("attentivenas_a0").arch, resolution=96)
    assert resolve_data_config(bare) == DataConfig.imagenet(96)


def test_weights_whose_record_has_a_broken_preprocessing_are_refused():
    model = anas_zoo.load("attentivenas_a0")
    record = get_entry("attentivenas_a0").metadata("in1k")
    record = {**record, "preprocessing": {k: v for k, v in record["preprocessing"].items() if k != "mean"}}
    path = save_weights(model, record, store_dir(), "attentivenas_a0.in1k")
    with pytest.raises(WeightsError, match="attentivenas_a0.in1k.json: preprocessing record has no mean"):
        store.load_into(StaticNet(model.arch), path)


def test_every_registered_weight_tag_has_a_config():
    for name in list_models(pretrained=True):
        arch, tag = name.split(".")
        cfg = get_entry(arch).pretrained_cfg(tag)
        assert cfg.tag == tag and cfg.preprocessing.resolution == get_entry(arch).arch.resolution


def test_a_minimal_weight_record_takes_its_spaces_preprocessing(tmp_path):
    space = anas_zoo.get_space("cifar10")
    model = StaticNet(space.min_arch(), space)
    record = {"genome": model.arch.to_dict(), "space": "cifar10", "num_classes": 10}
    weights = save_weights(model, record, tmp_path, "bare.test")
    load_into(model, weights)
    assert model.pretrained_cfg.preprocessing == DataConfig.cifar10(model.resolution)
    assert (model.pretrained_cfg.name, model.pretrained_cfg.num_classes) == ("bare.test", 10)
