import stat

import pytest
import torch
from safetensors.torch import load_file

import anas_zoo
from anas_zoo.flops import count
from anas_zoo.space import get_space
from anas_zoo.store import WeightsError, save_weights, store_dir
from anas_zoo.zoo import UnknownModelError, get_entry, list_models


def test_list_models_names_patterns_and_pretrained_tags():
    names = anas_zoo.list_models()
    assert [f"attentivenas_a{i}" for i in range(7)] == [n for n in names if n.startswith("attentivenas_a")]
    assert "alphanet_a5" in names
    assert anas_zoo.list_models("*a5") == ["alphanet_a5", "attentivenas_a5", "attentivenas_cifar10_a5"]
    tagged = anas_zoo.list_models("attentivenas_a0*", pretrained=True)
    assert tagged == ["attentivenas_a0.in1k", "attentivenas_a0.alphanet_in1k"]
    assert "attentivenas_a5.alphanet_in1k" not in anas_zoo.list_models(pretrained=True)


@pytest.mark.parametrize("name", list_models())
def test_recorded_metadata_matches_recomputed(name):
    """Like torchvision's meta test: any drift between the genome and the recorded numbers fails."""
    entry = get_entry(name)
    get_space(entry.space).validate(entry.arch)
    macs, params = count(entry.arch, entry.space, entry.num_classes)
    assert (entry.macs, entry.params) == (macs, params)
    meta = entry.metadata()
    assert meta["resolution"] == entry.arch.resolution == meta["preprocessing"]["resolution"]
    # Paper models carry the papers' figures; the project's own (bundled) weights carry measured ones.
    own = meta["license"] == "apache-2.0"
    assert meta["metrics"] and meta["metrics"][0]["source"] == ("measured" if own else "reported")
    model = anas_zoo.load(name)
    assert sum(p.numel() for p in model.parameters()) == entry.params


def test_load_builds_static_model_and_replaces_classifier():
    model = anas_zoo.load("attentivenas_a0", num_classes=10)
    assert isinstance(model, anas_zoo.StaticNet)
    assert model.classifier.out_features == 10
    assert model.pretrained_cfg["macs"] == 203389568
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_unknown_model_lists_close_matches():
    with pytest.raises(UnknownModelError, match="unknown model 'attentivnas_a0'; did you mean attentivenas_a0"):
        anas_zoo.load("attentivnas_a0")
    with pytest.raises(UnknownModelError, match=r"unknown weight tag 'in22k'.*\['in1k', 'alphanet_in1k'\]"):
        anas_zoo.load("attentivenas_a0.in22k", pretrained=True)


def test_missing_pretrained_weights_explain_how_to_import():
    with pytest.raises(WeightsError) as err:
        anas_zoo.load("attentivenas_a0", pretrained=True)
    message = str(err.value)
    assert "no local weights for 'attentivenas_a0.in1k'" in message
    assert str(store_dir()) in message
    assert "anas-zoo import-official attentive_nas_pretrained.pth.tar --kind attentivenas" in message


def _store_a0():
    model = anas_zoo.load("attentivenas_a0")
    torch.nn.init.normal_(model.classifier.weight)
    record = get_entry("attentivenas_a0").metadata("in1k")
    return model, save_weights(model, record, store_dir(), "attentivenas_a0.in1k")


def test_pretrained_load_is_strict_verified_and_in_eval_mode():
    model, json_path = _store_a0()
    # both files readable by everyone, as every other output (safetensors alone would write the weights 0600)
    assert {stat.S_IMODE(p.stat().st_mode) for p in (json_path, json_path.with_suffix(".safetensors"))} == {0o644}
    loaded = anas_zoo.load("attentivenas_a0", pretrained=True)
    assert not loaded.training
    assert torch.equal(loaded.classifier.weight, model.classifier.weight)
    assert loaded.pretrained_cfg["sha256"]


def test_float16_weights_are_stored_half_size_and_load_as_their_exact_float32_upcast():
    model = anas_zoo.load("attentivenas_a0")
    torch.nn.init.normal_(model.classifier.weight)
    record = get_entry("attentivenas_a0").metadata("in1k")
    full = save_weights(model, record, store_dir(), "attentivenas_a0.in1k")
    full_size = full.with_suffix(".safetensors").stat().st_size
    half = save_weights(model, record, store_dir(), "attentivenas_a0.in1k", dtype="float16")
    stored = load_file(half.with_suffix(".safetensors"))
    assert stored["classifier.weight"].dtype == torch.float16
    assert next(v for k, v in stored.items() if k.endswith("num_batches_tracked")).dtype == torch.int64
    assert half.with_suffix(".safetensors").stat().st_size < 0.51 * full_size

    loaded = anas_zoo.load("attentivenas_a0", pretrained=True)
    assert loaded.pretrained_cfg["dtype"] == "float16" and loaded.classifier.weight.dtype == torch.float32
    rounded = model.classifier.weight.half().float()
    assert torch.equal(loaded.classifier.weight, rounded) and not torch.equal(rounded, model.classifier.weight)


def test_an_unknown_storage_dtype_names_the_allowed_ones():
    with pytest.raises(ValueError, match="storage dtype 'int8' is not one of float32, float16"):
        save_weights(anas_zoo.load("attentivenas_a0"), {}, store_dir(), "x.y", dtype="int8")


def test_tampered_weights_fail_with_a_clear_error():
    _, json_path = _store_a0()
    weights = json_path.with_suffix(".safetensors")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch.*corrupted or was modified"):
        anas_zoo.load("attentivenas_a0", pretrained=True)


def test_weights_for_another_genome_are_refused():
    other = anas_zoo.load("attentivenas_a1")
    record = get_entry("attentivenas_a1").metadata("in1k")
    save_weights(other, record, store_dir(), "attentivenas_a0.in1k")
    with pytest.raises(WeightsError, match="are for genome"):
        anas_zoo.load("attentivenas_a0", pretrained=True)
