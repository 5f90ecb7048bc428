"""Import of official checkpoints: safe reading, the key mapping both ways, and the A-models it produces."""

import argparse
import hashlib
import json
import os
import pickle
import warnings

import pytest
import torch
from PIL import Image

import anas_zoo
from anas_zoo.cli.zoo import main
from anas_zoo.official import importer
from anas_zoo.official.errors import OfficialCheckpointError
from anas_zoo.official.importer import MODELS, check_source, imagenet_calibration, import_official, target_name
from anas_zoo.official.keymap import key_map, to_official, to_ours, unused_shortcuts
from anas_zoo.official.reader import official_state_dict, read_official_checkpoint
from anas_zoo.static import StaticNet
from anas_zoo.store import read_record
from anas_zoo.zoo import find_weights, get_entry, load_into


def save_official(state: dict, path, zip_format: bool = False) -> None:
    """A file shaped like the release: state_dict + pickled training args + other entries."""
    checkpoint = {"state_dict": state, "args": argparse.Namespace(lr=0.8, epochs=360), "epoch": 359}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=zip_format)


@pytest.fixture(scope="module")
def official_file(supernet, tmp_path_factory):
    path = tmp_path_factory.mktemp("official") / "attentive_nas_pretrained.pth.tar"
    save_official(to_official(supernet), path)
    return path


def test_official_layout_matches_design_notes(supernet):
    state = to_official(supernet)
    assert all(k.startswith("module.") for k in state)
    weights = {k: v for k, v in state.items() if "running" not in k and "num_batches" not in k}
    assert sum(v.numel() for v in weights.values()) == 23_934_704  # the release's 23.9 M
    assert all(f"module.blocks.{i}.shortcut.conv.conv.weight" in state for i in range(37))
    assert "module.blocks.37.shortcut.conv.conv.weight" not in state
    assert "module.blocks.1.mobile_inverted_conv.inverted_bottleneck.conv.conv.weight" not in state
    expected = {  # DESIGN.md §6 max shapes
        "first_conv.conv.conv.weight": (24, 3, 3, 3),
        "blocks.2.mobile_inverted_conv.inverted_bottleneck.conv.conv.weight": (144, 24, 1, 1),
        "blocks.7.mobile_inverted_conv.depth_conv.se.fc.reduce.weight": (48, 192, 1, 1),
        "blocks.12.mobile_inverted_conv.depth_conv.se.fc.expand.bias": (240,),
        "blocks.19.mobile_inverted_conv.point_linear.conv.conv.weight": (128, 432, 1, 1),
        "blocks.27.shortcut.conv.conv.weight": (216, 128, 1, 1),
        "blocks.34.mobile_inverted_conv.depth_conv.conv.conv.weight": (1296, 1, 5, 5),
        "blocks.35.mobile_inverted_conv.depth_conv.se.fc.reduce.weight": (328, 1296, 1, 1),
        "blocks.36.mobile_inverted_conv.depth_conv.se.fc.reduce.weight": (336, 1344, 1, 1),
        "blocks.36.shortcut.conv.conv.weight": (224, 224, 1, 1),
        "last_conv.final_expand_layer.bn.bn_tracking.1.running_var": (1344,),
        "last_conv.feature_mix_layer.conv.conv.weight": (1984, 1344, 1, 1),
        "classifier.linear.linear.weight": (1000, 1984),
    }
    for key, shape in expected.items():
        assert tuple(state[f"module.{key}"].shape) == shape, key
    assert len(unused_shortcuts(supernet)) == 37 - 7


def test_mapping_round_trip_is_exact(supernet):
    ours = to_ours(to_official(supernet), supernet)
    reference = supernet.state_dict()
    assert set(ours) == set(reference)
    assert all(torch.equal(ours[k], reference[k]) for k in reference)
    assert len(set(key_map(supernet).values())) == len(reference)  # one-to-one


@pytest.mark.parametrize("zip_format", [False, True], ids=["legacy", "zip"])
def test_reader_drops_pickled_objects_and_keeps_tensors(tmp_path, zip_format):
    state = {"module.a": torch.arange(6, dtype=torch.float32).view(2, 3), "module.b": torch.ones(4)[::2]}
    path = tmp_path / "small.pth.tar"
    save_official(state, path, zip_format)
    with pytest.warns(UserWarning, match="argparse.Namespace"):
        obj = read_official_checkpoint(path)
    assert obj["epoch"] == 359 and "argparse.Namespace" in repr(obj["args"])
    loaded = official_state_dict(obj)
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


class _Payload:
    """Pickles as a call that would create a marker file if it were ever executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("zip_format", [False, True], ids=["legacy", "zip"])
def test_malicious_payload_is_not_executed(tmp_path, zip_format):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {"w": torch.ones(2)}, "x": _Payload(marker)}, path,
               _use_new_zipfile_serialization=zip_format)
    with pytest.warns(UserWarning, match=r"(posix|nt)\.system"):
        obj = read_official_checkpoint(path)
    assert not marker.exists()
    assert torch.equal(obj["state_dict"]["w"], torch.ones(2))


def test_plain_malicious_pickle_is_rejected_unexecuted(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    with pytest.raises(OfficialCheckpointError, match="not a readable torch checkpoint"):
        read_official_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"hello, not a checkpoint\n", b"PK\x03\x04garbage", b""])
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "file.pth.tar"
    path.write_bytes(content)
    with pytest.raises(OfficialCheckpointError, match="not a readable torch checkpoint"):
        read_official_checkpoint(path)


def test_truncated_legacy_file_is_rejected(official_file, tmp_path):
    path = tmp_path / "truncated.pth.tar"
    path.write_bytes(official_file.read_bytes()[:-1000])
    with pytest.raises(OfficialCheckpointError, match="truncated"):
        read_official_checkpoint(path)


def test_missing_key_is_named(supernet):
    state = to_official(supernet)
    del state["module.blocks.20.mobile_inverted_conv.depth_conv.se.fc.expand.weight"]
    with pytest.raises(OfficialCheckpointError, match=r"blocks\.20\.mobile_inverted_conv\.depth_conv\.se\.fc\.expand\.weight"):
        to_ours(state, supernet)


def test_wrong_shape_names_key_and_both_shapes(supernet):
    state = to_official(supernet)
    state["module.blocks.5.mobile_inverted_conv.point_linear.conv.conv.weight"] = torch.zeros(32, 190, 1, 1)
    with pytest.raises(OfficialCheckpointError) as error:
        to_ours(state, supernet)
    message = str(error.value)
    assert "blocks.5.mobile_inverted_conv.point_linear.conv.conv.weight" in message
    assert "(32, 190, 1, 1)" in message and "(32, 192, 1, 1)" in message


def test_unconsumed_key_is_an_error(supernet):
    state = to_official(supernet)
    state["module.blocks.3.mobile_inverted_conv.extra.weight"] = torch.zeros(1)
    with pytest.raises(OfficialCheckpointError, match="map to nothing.*extra.weight"):
        to_ours(state, supernet)


def test_import_without_calibration_matches_supernet(supernet, official_file, tmp_path, monkeypatch):
    """Every imported A0–A6 computes what the source supernet computes for its genome."""
    monkeypatch.setenv("ANAS_ZOO_HOME", str(tmp_path))
    with pytest.warns(UserWarning) as caught:
        report = import_official(official_file, "attentivenas", progress=False)
    written = report["weights"]
    messages = " ".join(str(w.message) for w in caught)
    assert "NO BN RECALIBRATION" in messages and "not the released" in messages and "argparse.Namespace" in messages
    assert [w["model"] for w in written] == list(MODELS)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    md5 = hashlib.md5(official_file.read_bytes()).hexdigest()
    for model in MODELS:
        name, tag = target_name("attentivenas", model)
        entry = get_entry(name)
        json_path = find_weights(name, tag)
        assert json_path is not None and json_path.parent == tmp_path / "weights"
        record = read_record(json_path)
        assert record["license"] == "cc-by-nc-4.0"
        assert record["calibration"]["status"] == "uncalibrated"
        assert record["source"] == {"file": official_file.name, "kind": "attentivenas", "md5": md5,
                                    "md5_matches_release": False}
        assert (record["macs"], record["params"]) == (entry.macs, entry.params)
        assert record["genome"] == entry.arch.to_dict() and record["preprocessing"]["crop"] == 224
        small = StaticNet(entry.arch, resolution=64).eval()
        load_into(small, json_path)
        supernet.set_active(entry.arch)
        with torch.no_grad():
            diff = (small(x) - supernet(x)).abs().max().item()
        assert diff <= 1e-5, (model, diff)
    model = anas_zoo.load("attentivenas_a0", pretrained=True)  # at its own resolution, through the registry
    assert not model.training and model.pretrained_cfg["calibration"]["status"] == "uncalibrated"
    x = torch.randn(1, 3, 192, 192, generator=torch.Generator().manual_seed(1))
    supernet.set_active(model.arch)
    with torch.no_grad():
        assert (model(x) - supernet(x)).abs().max().item() <= 1e-5


def _image_folder(root, classes=2, per_class=3, size=(80, 60)):
    generator = torch.Generator().manual_seed(0)
    for c in range(classes):
        (root / f"n{c:08d}").mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.randint(0, 256, (size[1], size[0], 3), dtype=torch.uint8, generator=generator)
            Image.fromarray(pixels.numpy()).save(root / f"n{c:08d}" / f"img{i}.JPEG")
    return root


def test_cli_import_alphanet_with_calibration(supernet, official_file, tmp_path, monkeypatch, capsys):
    """AlphaNet's own A5 goes to alphanet_a5; BN statistics are recomputed from the calibration folder."""
    monkeypatch.setenv("ANAS_ZOO_HOME", str(tmp_path / "home"))
    train = _image_folder(tmp_path / "train")
    code = main(["import-official", str(official_file), "--kind", "alphanet", "--models", "a5,a0",
                 "--calib-data", str(train), "--calib-batches", "1", "--calib-batch-size", "2",
                 "--workers", "0", "--json"])
    assert code == 0
    out, err = capsys.readouterr()
    warned = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 2 and "argparse.Namespace" in warned[0] and "no release MD5" in warned[1]
    report = json.loads(out)
    assert report["md5_matches_release"] is None and report["kind"] == "alphanet"
    written = report["weights"]
    assert [w["name"] for w in written] == ["alphanet_a5.alphanet_in1k", "attentivenas_a0.alphanet_in1k"]
    assert all(w["calibration"] == "calibrated" for w in written)
    record = read_record(find_weights("alphanet_a5", "alphanet_in1k"))
    assert record["calibration"]["batches"] == 1 and record["calibration"]["data"] == str(train)
    model = anas_zoo.load("alphanet_a5.alphanet_in1k", pretrained=True)
    supernet.set_active(model.arch)
    uncalibrated = supernet.extract(model.arch)
    changed = [k for k, v in model.state_dict().items() if "running" in k and not torch.equal(v, uncalibrated.state_dict()[k])]
    assert changed and all("running" in k for k in changed)
    same = [k for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(model.state_dict()[k], uncalibrated.state_dict()[k]) for k in same)
    stored = sorted(p.name for p in (tmp_path / "home" / "weights").glob("*.json"))
    assert stored == ["alphanet_a5.alphanet_in1k.json", "attentivenas_a0.alphanet_in1k.json"]


def test_cli_errors(tmp_path, capsys):
    bad = tmp_path / "bad.pth.tar"
    bad.write_text("not a checkpoint")
    assert main(["import-official", str(bad), "--models", "a0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "not a readable torch checkpoint" in err
    with pytest.raises(SystemExit) as usage:
        main(["import-official", str(bad), "--kind", "bignas"])
    assert usage.value.code == 2
    assert main(["import-official", str(bad), "--models", "a0,a9"]) == 2
    assert "a9" in capsys.readouterr().err
    assert main(["import-official", str(bad), "--calib-data", str(tmp_path / "nowhere")]) == 1
    assert "nowhere" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["import-official", str(bad), "--device", "warp-drive"])
    assert usage.value.code == 2 and "warp-drive" in capsys.readouterr().err


def test_source_check_reports_md5(tmp_path, monkeypatch):
    path = tmp_path / "attentive_nas_pretrained.pth.tar"
    path.write_bytes(b"stand-in for the released file")
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    monkeypatch.setitem(importer.RELEASE_MD5, "attentivenas", md5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_source(path, "attentivenas") == {
            "file": path.name, "kind": "attentivenas", "md5": md5, "md5_matches_release": True}
    monkeypatch.setitem(importer.RELEASE_MD5, "attentivenas", "0" * 32)
    with pytest.warns(UserWarning, match=f"has MD5 {md5}, not the released"):
        assert check_source(path, "attentivenas")["md5_matches_release"] is False


def test_calibration_folder_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        imagenet_calibration(tmp_path / "missing")


def test_load_before_import_explains_how(tmp_path, monkeypatch):
    monkeypatch.setenv("ANAS_ZOO_HOME", str(tmp_path))
    with pytest.raises(anas_zoo.WeightsError, match="import-official"):
        anas_zoo.load("attentivenas_a3", pretrained=True)
